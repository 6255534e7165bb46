// Package icmpprobe is the icmp probe: it sends a few ICMP echo requests
// ("pings") to one host and reports how many came back, the round-trip
// times and their jitter. IPv4 and IPv6.
//
// One Prober serves every icmp check of an appliance with one socket per
// address family, opened on first use: an unprivileged datagram ("ping")
// socket where net.ipv4.ping_group_range admits the process's group (the
// sysctl governs IPv6 too), else a raw socket, which needs CAP_NET_RAW. A
// reader goroutine per socket hands each reply to the run waiting for it,
// so thousands of checks share two sockets.
//
// Configuration (collector and check key "icmp"):
//
//	address   string  host name or IP address; empty means the asset's name
//	count     int     echo requests per run, 1–100 (default 5)
//	intervalMs int    milliseconds between two requests, 1–60000
//	                  (default 200)
//	timeoutMs  int    milliseconds a request waits for its reply, 1–60000
//	                  (default 1000)
//	size      int     payload bytes of a request, 0–65507 (default 56,
//	                  as ping's: 64-byte ICMP messages)
//
// A run takes at most (count − 1) × interval + timeout, which must be at
// most 300 s; the defaults take 1.8 s at most and less when every reply
// is in. Keep it well inside the check's timeout (0.8 × its interval): a
// run the deadline cuts short reports what it has, with an error.
//
// Result: one type, "icmp", with one item named by the configured address:
//
//	metric       kind   meaning
//	count        int    requests counted: sent and either answered or
//	                    given their full timeout
//	received     int    replies received within the timeout
//	lossPercent  float  100 × (count − received) / count
//	min          float  shortest round-trip time, seconds
//	avg          float  mean round-trip time, seconds
//	max          float  longest round-trip time, seconds
//	jitter       float  mean absolute difference between the round-trip
//	                    times of consecutive replies, seconds (the simple
//	                    form of RFC 3550's interarrival jitter, without
//	                    its 1/16 smoothing; lost requests are skipped)
//
// min, avg and max need one reply, jitter two; without them the metrics
// are left out. A round-trip time runs from just before the request is
// sent to when the kernel received the reply (its receive timestamp,
// SO_TIMESTAMPNS, on Linux), so the appliance's own load barely shows in
// it. A reply that comes after its request's timeout counts as lost. On
// an appliance so busy that the reader falls more than a timeout behind,
// replies still queued when a run ends count as lost too.
//
// Errors and their severities:
//
//	HIGH  the configuration is invalid; the address does not resolve; the
//	      run's address policy refuses the address (see
//	      probe.WithAddrPolicy; nothing is sent); no ICMP socket can be
//	      opened; no request got a reply (the result, with lossPercent
//	      100, is sent with the error, which says why
//	      requests were lost: no reply or a late one, an ICMP error such
//	      as "host unreachable (from 192.0.2.254)", a send error such as
//	      "network is unreachable"; Linux hands ICMP errors to raw
//	      sockets only, so on a datagram socket such a request is just
//	      not answered)
//	LOW   the run's deadline cut it short: fewer requests were counted
//	      than configured (the result is sent with the error)
//
// Partial loss is not an error: lossPercent is a metric, and conditions
// on it decide what loss matters for which asset.
package icmpprobe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

// Configuration limits and defaults.
const (
	defaultCount    = 5
	maxCount        = 100
	defaultInterval = 200  // ms
	defaultTimeout  = 1000 // ms
	maxMillis       = 60_000
	defaultSize     = 56
	// maxSize fills an IPv4 packet: 65535 − 20 (IPv4 header) − 8 (ICMP).
	maxSize = 65_507
	// maxRun is the longest run a configuration may ask for: the longest
	// check timeout.
	maxRun = 300 * time.Second
	// resolveBudget is added to the run's length for the name lookup when
	// the caller's context has no deadline.
	resolveBudget = 10 * time.Second
)

var _ probe.Func = (*Prober)(nil).Probe

// ErrClosed is the error of a run on a Prober that was closed.
var ErrClosed = errors.New("the icmp prober is closed")

// Mode says which kind of ICMP socket a Prober opens.
type Mode string

// The modes.
const (
	// ModeAuto tries an unprivileged datagram socket first and falls back
	// to a raw socket. The zero Mode means ModeAuto.
	ModeAuto Mode = "auto"
	// ModeUnprivileged opens only datagram sockets: the process's group
	// must be in net.ipv4.ping_group_range.
	ModeUnprivileged Mode = "unprivileged"
	// ModeRaw opens only raw sockets: the process needs CAP_NET_RAW.
	ModeRaw Mode = "raw"
)

// Options configure a Prober.
type Options struct {
	// Mode selects the kind of socket; empty means ModeAuto.
	Mode Mode
	// Logger receives which sockets were opened and socket errors; nil
	// discards them.
	Logger *slog.Logger
	// Resolver looks up host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Prober runs icmp checks. It holds up to two sockets, IPv4 and IPv6,
// shared by all its runs; it is safe for concurrent use, and Close
// releases the sockets.
type Prober struct {
	mode     Mode
	log      *slog.Logger
	resolver *net.Resolver

	mu     sync.Mutex
	socks  [2]*socket // IPv4, IPv6
	closed bool
}

// New returns a Prober. It opens no socket: each is opened by the first
// run that needs it, so an appliance with no icmp check, or no IPv6
// target, holds none.
func New(opts Options) (*Prober, error) {
	switch opts.Mode {
	case "":
		opts.Mode = ModeAuto
	case ModeAuto, ModeUnprivileged, ModeRaw:
	default:
		return nil, fmt.Errorf("icmp mode %q is not one of auto, unprivileged, raw", opts.Mode)
	}
	p := &Prober{mode: opts.Mode, log: opts.Logger, resolver: opts.Resolver}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	return p, nil
}

// Close closes the sockets. Runs still waiting for replies end at once,
// their outstanding requests lost; later runs fail with ErrClosed.
func (p *Prober) Close() error {
	p.mu.Lock()
	p.closed = true
	socks := p.socks
	p.socks = [2]*socket{}
	p.mu.Unlock()
	var errs []error
	for _, s := range socks {
		if s != nil {
			if err := s.close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("closing the %s ICMP socket: %w", s.kind(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// socket returns the socket of a family, opening it on first use. A
// socket that cannot be opened is tried again by the next run.
func (p *Prober) socket(v6 bool) (*socket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	i := 0
	if v6 {
		i = 1
	}
	if s := p.socks[i]; s != nil {
		return s, nil
	}
	s, err := p.open(v6)
	if err != nil {
		return nil, err
	}
	p.log.Info("icmp: socket opened", "socket", s.kind(), "receive_buffer", s.buffer)
	p.socks[i] = s
	return s, nil
}

// open opens a socket of the Prober's mode.
func (p *Prober) open(v6 bool) (*socket, error) {
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	switch p.mode {
	case ModeRaw:
		s, err := openSocket(v6, true, p.log)
		if err != nil {
			return nil, fmt.Errorf("opening a raw %s ICMP socket: %w; the appliance needs CAP_NET_RAW (or use mode auto)", fam, err)
		}
		return s, nil
	case ModeUnprivileged:
		s, err := openSocket(v6, false, p.log)
		if err != nil {
			return nil, fmt.Errorf("opening a datagram %s ICMP socket: %w; add the appliance's group to sysctl net.ipv4.ping_group_range", fam, err)
		}
		return s, nil
	}
	s, errDgram := openSocket(v6, false, p.log)
	if errDgram == nil {
		return s, nil
	}
	p.log.Debug("icmp: no datagram socket, trying a raw one", "family", fam, "err", errDgram)
	s, errRaw := openSocket(v6, true, p.log)
	if errRaw == nil {
		return s, nil
	}
	return nil, fmt.Errorf("opening an %s ICMP socket: datagram: %v; raw: %v; add the appliance's group to sysctl net.ipv4.ping_group_range or give it CAP_NET_RAW",
		fam, errDgram, errRaw)
}

// Config is the icmp check's configuration. Zero values mean the
// defaults.
type Config struct {
	// Address is the host name or IP address to ping. Empty means the
	// asset's name.
	Address string `json:"address"`
	// Count is how many echo requests a run sends: 1–100, default 5.
	Count int `json:"count"`
	// Interval is the time between two requests in milliseconds: 1–60000,
	// default 200.
	Interval int `json:"intervalMs"`
	// Timeout is how long a request waits for its reply in milliseconds:
	// 1–60000, default 1000.
	Timeout int `json:"timeoutMs"`
	// Size is the payload of a request in bytes: 0–65507; nil means 56.
	Size *int `json:"size"`
}

// settings is a validated Config with the defaults filled in.
type settings struct {
	address  string
	count    int
	interval time.Duration
	timeout  time.Duration
	size     int
}

// runLength is the longest a run of s takes.
func (s *settings) runLength() time.Duration {
	return time.Duration(s.count-1)*s.interval + s.timeout
}

// Validate checks the configuration and names the field that is wrong. An
// empty address is valid here: Probe falls back to the asset's name.
func (c *Config) Validate() error {
	_, err := c.settings("localhost")
	return err
}

func (c *Config) settings(assetName string) (*settings, error) {
	s := &settings{address: c.Address, count: defaultCount, size: defaultSize,
		interval: defaultInterval * time.Millisecond, timeout: defaultTimeout * time.Millisecond}
	switch {
	case s.address == "" && !probe.ValidHost(assetName):
		return nil, errors.New("config.address: missing, and the asset's name is not a host name; set config.address")
	case s.address == "":
		s.address = assetName
	case !probe.ValidHost(s.address):
		return nil, errors.New("config.address: must be a host name or an IP address")
	}
	if c.Count != 0 {
		if c.Count < 1 || c.Count > maxCount {
			return nil, fmt.Errorf("config.count: must be between 1 and %d", maxCount)
		}
		s.count = c.Count
	}
	if c.Interval != 0 {
		if c.Interval < 1 || c.Interval > maxMillis {
			return nil, fmt.Errorf("config.intervalMs: must be between 1 and %d milliseconds", maxMillis)
		}
		s.interval = time.Duration(c.Interval) * time.Millisecond
	}
	if c.Timeout != 0 {
		if c.Timeout < 1 || c.Timeout > maxMillis {
			return nil, fmt.Errorf("config.timeoutMs: must be between 1 and %d milliseconds", maxMillis)
		}
		s.timeout = time.Duration(c.Timeout) * time.Millisecond
	}
	if c.Size != nil {
		if *c.Size < 0 || *c.Size > maxSize {
			return nil, fmt.Errorf("config.size: must be between 0 and %d bytes", maxSize)
		}
		s.size = *c.Size
	}
	if l := s.runLength(); l > maxRun {
		return nil, fmt.Errorf("config: a run would take up to %v ((count − 1) × interval + timeout); it may take %v at most",
			l, maxRun)
	}
	return s, nil
}

// Probe pings the target's address and reports the replies. It needs no
// credentials. Concurrent runs share the Prober's sockets.
func (p *Prober) Probe(ctx context.Context, t probe.Target, _ probe.Credentials) probe.Result {
	var c Config
	if err := probe.DecodeConfig(t.Config, &c); err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	cfg, err := c.settings(t.AssetName)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.runLength()+resolveBudget)
		defer cancel()
	}
	ip, err := p.resolve(ctx, cfg.address)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "resolving %s: %v", cfg.address, err)
	}
	// The run's address policy (see probe.WithAddrPolicy): nothing is
	// dialled, so the resolved address is checked here, before any echo
	// request is sent (or a socket opened).
	if err := probe.CheckAddr(ctx, ip); err != nil {
		host := cfg.address
		if host != ip.String() {
			host += " (" + ip.String() + ")"
		}
		return probe.Fail(model.SeverityHigh, "pinging %s: %v", host, err)
	}
	s, err := p.socket(ip.Is6())
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	return buildResult(cfg, ip, s.ping(ctx, ip, cfg))
}

// The states of one echo request at the end of a run.
const (
	// notSent: the deadline came first.
	notSent = iota
	// waiting: sent, not answered yet. At the end of a run: cut short by
	// the deadline before its timeout was over, so not counted.
	waiting
	replied
	lost
)

// outcome is what became of one echo request.
type outcome struct {
	state  int
	rtt    time.Duration
	reason string // why it was lost
}

// ping sends cfg.count echo requests to dst, cfg.interval apart, and waits
// for their replies until each has had cfg.timeout or ctx is done.
func (s *socket) ping(ctx context.Context, dst netip.Addr, cfg *settings) []outcome {
	out := make([]outcome, cfg.count)
	sentAt := make([]time.Time, cfg.count)
	seqs := make([]uint16, 0, cfg.count)
	r := &run{size: cfg.size, replies: make(chan answer, cfg.count)}
	pkt := newEcho(s.v6, cfg.size)
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if s.raw {
		to = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	noReply := "no reply within " + strconv.FormatInt(cfg.timeout.Milliseconds(), 10) + " ms"
	late := "reply later than " + strconv.FormatInt(cfg.timeout.Milliseconds(), 10) + " ms"

	settle := func(a answer) bool {
		o := &out[a.index]
		if o.state != waiting {
			return false
		}
		switch {
		case a.reason != "":
			*o = outcome{state: lost, reason: a.reason}
		case a.rtt > cfg.timeout:
			*o = outcome{state: lost, reason: late}
		default:
			*o = outcome{state: replied, rtt: a.rtt}
		}
		return true
	}

	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	sent, settled := 0, 0
loop:
	for sent < cfg.count || settled < sent {
		select {
		case <-ctx.Done():
			break loop
		case a := <-r.replies:
			if settle(a) {
				settled++
			}
		case <-timer.C:
			if sent == cfg.count || ctx.Err() != nil {
				break loop // the last request's timeout is over, or the deadline came
			}
			i := sent
			sent++
			out[i].state = waiting
			sentAt[i] = time.Now()
			seq, err := s.send(r, i, dst, to, pkt)
			if err != nil {
				out[i] = outcome{state: lost, reason: "sending: " + sendError(err)}
				settled++
				if errors.Is(err, ErrClosed) {
					break loop
				}
			} else {
				seqs = append(seqs, seq)
			}
			if sent < cfg.count {
				timer.Reset(time.Until(start.Add(time.Duration(sent) * cfg.interval)))
			} else {
				timer.Reset(time.Until(sentAt[i].Add(cfg.timeout)))
			}
		}
	}
	s.forgetRun(r, seqs)
	// Answers that came in while the run was ending.
	for drained := false; !drained; {
		select {
		case a := <-r.replies:
			settle(a)
		default:
			drained = true
		}
	}
	now := time.Now()
	for i := range out[:sent] {
		if out[i].state == waiting && now.Sub(sentAt[i]) >= cfg.timeout {
			out[i] = outcome{state: lost, reason: noReply}
		}
	}
	return out
}

// sendError shortens a send error to its cause ("network is unreachable").
func sendError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return err.Error()
}

// buildResult turns the outcomes of a run into the "icmp" type and, when
// nothing came back or the run was cut short, an error.
func buildResult(cfg *settings, ip netip.Addr, out []outcome) probe.Result {
	host := cfg.address
	if strings.Trim(host, "[]") != ip.String() {
		host += " (" + ip.String() + ")"
	}
	var rtts []time.Duration
	var reasons []string
	reasonCount := map[string]int{}
	count := 0
	for _, o := range out {
		switch o.state {
		case replied:
			rtts = append(rtts, o.rtt)
			count++
		case lost:
			if reasonCount[o.reason] == 0 {
				reasons = append(reasons, o.reason)
			}
			reasonCount[o.reason]++
			count++
		}
	}
	if count == 0 {
		return probe.Fail(model.SeverityHigh, "pinging %s: the run's deadline came before any echo request could be answered; lower count, interval or timeout, or lengthen the check's interval", host)
	}
	received := len(rtts)
	metrics := []model.Metric{
		{Name: "count", Value: model.IntValue(int64(count))},
		{Name: "received", Value: model.IntValue(int64(received))},
		{Name: "lossPercent", Value: model.FloatValue(100 * float64(count-received) / float64(count))},
	}
	st := summarize(rtts)
	if received > 0 {
		metrics = append(metrics,
			model.Metric{Name: "min", Value: model.FloatValue(st.min.Seconds())},
			model.Metric{Name: "avg", Value: model.FloatValue(st.avg.Seconds())},
			model.Metric{Name: "max", Value: model.FloatValue(st.max.Seconds())},
		)
	}
	if received > 1 {
		metrics = append(metrics, model.Metric{Name: "jitter", Value: model.FloatValue(st.jitter.Seconds())})
	}
	res := probe.Result{Types: []model.Type{{Name: "icmp", Items: []model.Item{{Name: cfg.address, Metrics: metrics}}}}}

	var msgs []string
	sev := model.SeverityLow
	if received == 0 {
		sev = model.SeverityHigh
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = strconv.Itoa(reasonCount[r]) + "× " + r
		}
		msgs = append(msgs, fmt.Sprintf("no reply from %s: %d of %d echo requests lost (%s)", host, count, count, strings.Join(parts, ", ")))
	}
	if count < cfg.count {
		msgs = append(msgs, fmt.Sprintf("the run's deadline cut the ping of %s short: %d of %d echo requests counted; lower count, interval or timeout, or lengthen the check's interval",
			host, count, cfg.count))
	}
	if len(msgs) > 0 {
		res.Error = &model.CheckError{Severity: sev, Message: strings.Join(msgs, "; ")}
	}
	return res
}

// rttStats summarizes the round-trip times of a run.
type rttStats struct {
	min, avg, max, jitter time.Duration
}

// summarize computes the statistics of rtts, in the order the requests
// were sent. jitter is the mean absolute difference between consecutive
// values (0 with fewer than two).
func summarize(rtts []time.Duration) rttStats {
	var st rttStats
	if len(rtts) == 0 {
		return st
	}
	st.min, st.max = rtts[0], rtts[0]
	var sum, diffs time.Duration
	for i, r := range rtts {
		st.min = min(st.min, r)
		st.max = max(st.max, r)
		sum += r
		if i > 0 {
			d := r - rtts[i-1]
			if d < 0 {
				d = -d
			}
			diffs += d
		}
	}
	st.avg = sum / time.Duration(len(rtts))
	if len(rtts) > 1 {
		st.jitter = diffs / time.Duration(len(rtts)-1)
	}
	return st
}

// resolve returns the address to ping: host itself when it is an address,
// else the first address the resolver prefers.
func (p *Prober) resolve(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return ip.Unmap(), nil
	}
	ips, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, errors.New("no address found")
	}
	return ips[0].Unmap(), nil
}
