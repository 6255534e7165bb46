// Package tcp is the tcp probe: it opens a TCP connection to each configured
// port of one host, all ports at once, and reports whether it opened, how
// long that took and, when asked, the first bytes the server sent (its
// banner). It sends nothing: the connection is closed as soon as it is open
// (or the banner has been read).
//
// Configuration (collector and check key "tcp"):
//
//	address  string  host name or IP address; empty means the asset's name
//	ports    []int   1–64 distinct ports between 1 and 65535 (required)
//	banner   bool    read up to 256 bytes the server sends within 1 s of connecting
//	timeout  float   seconds the run may take at most (0: the run's deadline;
//	                 at most 300); without a deadline on the run, 10 s
//
// Result: one type, "tcp", with one item per configured port, named by the
// port number ("22", "443"), in the configured order:
//
//	metric       kind    meaning
//	open         bool    the connection opened
//	state        string  "open", "closed" (refused), "timeout" (no answer
//	                     before the deadline, e.g. filtered), "unreachable"
//	                     (no route to the host or network) or "error"
//	connectTime  float   seconds until the connection opened (open ports only)
//	banner       string  what the server sent first, printable ASCII only
//	                     (line breaks and tabs become spaces, other bytes
//	                     "."), trimmed, at most 256 bytes; empty
//	                     when it sent nothing within 1 s (open ports, banner
//	                     true only)
//
// Errors and their severities (a configuration error is HIGH: the check
// collects nothing until it is fixed):
//
//	HIGH    the configuration is invalid; the address does not resolve; the
//	        run's address policy refuses the address (see
//	        probe.WithAddrPolicy; nothing is sent); no port is open (the
//	        host or service is down or unreachable)
//	MEDIUM  some ports are open and some are not (the message lists which
//	        and why); the result is sent with the error
//
// The probe is cheap enough to run thousands of times a second per core
// against a loopback listener (BenchmarkProbe).
package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

const (
	maxPorts       = 64
	maxTimeout     = 300 // seconds
	defaultTimeout = 10 * time.Second
	bannerMax      = 256
	bannerWait     = time.Second
)

// The states a port can be in, as the "state" metric reports them.
const (
	StateOpen        = "open"
	StateClosed      = "closed"
	StateTimeout     = "timeout"
	StateUnreachable = "unreachable"
	StateError       = "error"
)

var _ probe.Func = Probe

// Config is the tcp check's configuration.
type Config struct {
	// Address is the host name or IP address to connect to. Empty means
	// the asset's name.
	Address string `json:"address"`
	// Ports are the TCP ports to try: 1–64 distinct ports.
	Ports []int `json:"ports"`
	// Banner asks for the first bytes the server sends after the
	// connection opens (SSH, SMTP, FTP and the like send one unasked).
	Banner bool `json:"banner"`
	// Timeout is how long the run may take at most, in seconds. Zero means
	// the run's own deadline.
	Timeout float64 `json:"timeout"`
}

// Validate checks the configuration and names the field that is wrong. An
// empty address is valid here: Probe falls back to the asset's name.
func (c *Config) Validate() error {
	if c.Address != "" && !probe.ValidHost(c.Address) {
		return fmt.Errorf("config.address: must be a host name or an IP address")
	}
	if len(c.Ports) == 0 || len(c.Ports) > maxPorts {
		return errPorts
	}
	seen := make(map[int]bool, len(c.Ports))
	for _, p := range c.Ports {
		if p < 1 || p > 65535 {
			return errPorts
		}
		if seen[p] {
			return fmt.Errorf("config.ports: port %d is listed twice", p)
		}
		seen[p] = true
	}
	if c.Timeout < 0 || c.Timeout > maxTimeout {
		return fmt.Errorf("config.timeout: must be between 0 and %d seconds", maxTimeout)
	}
	return nil
}

var errPorts = errors.New("config.ports: must hold 1–64 ports between 1 and 65535")

// parseConfig decodes and validates t's configuration, filling in the
// asset's name as the address when none is configured.
func parseConfig(t probe.Target) (*Config, error) {
	var c Config
	if err := probe.DecodeConfig(t.Config, &c); err != nil {
		return nil, err
	}
	if c.Address == "" {
		if !probe.ValidHost(t.AssetName) {
			return nil, errors.New("config.address: missing, and the asset's name is not a host name; set config.address")
		}
		c.Address = t.AssetName
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// portResult is what probing one port found.
type portResult struct {
	state   string
	connect time.Duration
	banner  string
	err     error
}

// Probe connects to every configured port of the target at once and reports
// each one. It needs no credentials.
func Probe(ctx context.Context, t probe.Target, _ probe.Credentials) probe.Result {
	cfg, err := parseConfig(t)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	ctx, cancel := runContext(ctx, cfg.Timeout)
	defer cancel()

	ip, err := resolve(ctx, cfg.Address)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "resolving %s: %v", cfg.Address, err)
	}
	// The run's address policy (see probe.WithAddrPolicy): refused here
	// with one clear error, before any port is tried. The dialer checks
	// again, on the address it actually connects to.
	if err := probe.CheckAddr(ctx, ip); err != nil {
		return probe.Fail(model.SeverityHigh, "%s: %v", hostLabel(cfg.Address, ip), err)
	}
	d := &net.Dialer{KeepAlive: -1, Control: probe.DialControl(ctx, nil)}

	results := make([]portResult, len(cfg.Ports))
	if len(cfg.Ports) == 1 {
		// The common case: no goroutine needed.
		results[0] = probePort(ctx, d, net.JoinHostPort(ip.String(), strconv.Itoa(cfg.Ports[0])), cfg.Banner)
	} else {
		var wg sync.WaitGroup
		for i, p := range cfg.Ports {
			wg.Go(func() {
				results[i] = probePort(ctx, d, net.JoinHostPort(ip.String(), strconv.Itoa(p)), cfg.Banner)
			})
		}
		wg.Wait()
	}
	return buildResult(cfg, ip, results)
}

// buildResult turns the port results into the "tcp" type and, when ports
// are not open, an error.
func buildResult(cfg *Config, ip netip.Addr, results []portResult) probe.Result {
	items := make([]model.Item, len(results))
	var failed []string
	for i, r := range results {
		port := strconv.Itoa(cfg.Ports[i])
		metrics := make([]model.Metric, 0, 4)
		metrics = append(metrics,
			model.Metric{Name: "open", Value: model.BoolValue(r.state == StateOpen)},
			model.Metric{Name: "state", Value: model.StringValue(r.state)},
		)
		if r.state == StateOpen {
			metrics = append(metrics, model.Metric{Name: "connectTime", Value: model.FloatValue(r.connect.Seconds())})
			if cfg.Banner {
				metrics = append(metrics, model.Metric{Name: "banner", Value: model.StringValue(r.banner)})
			}
		} else {
			msg := port + " " + r.state
			if r.state == StateError || r.state == StateUnreachable {
				msg += fmt.Sprintf(" (%v)", r.err)
			}
			failed = append(failed, msg)
		}
		items[i] = model.Item{Name: port, Metrics: metrics}
	}
	res := probe.Result{Types: []model.Type{{Name: "tcp", Items: items}}}
	host := hostLabel(cfg.Address, ip)
	switch {
	case len(failed) == len(results):
		res.Error = &model.CheckError{
			Severity: model.SeverityHigh,
			Message:  fmt.Sprintf("%s: no port is open: %s", host, strings.Join(failed, "; ")),
		}
	case len(failed) > 0:
		res.Error = &model.CheckError{
			Severity: model.SeverityMedium,
			Message:  fmt.Sprintf("%s: %d of %d ports not open: %s", host, len(failed), len(results), strings.Join(failed, "; ")),
		}
	}
	return res
}

// hostLabel names the host in messages: the configured address, and the
// address it resolved to when that differs.
func hostLabel(address string, ip netip.Addr) string {
	if address != ip.String() {
		return address + " (" + ip.String() + ")"
	}
	return address
}

// probePort connects to addr (IP:port) with d and, when banner is set,
// reads what the server sends first. d is the run's: no keep-alive probes
// (pointless on a connection that is closed at once), and the run's
// address policy in its Control.
func probePort(ctx context.Context, d *net.Dialer, addr string, banner bool) portResult {
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return portResult{state: classify(ctx, err), err: err}
	}
	defer conn.Close()
	r := portResult{state: StateOpen, connect: time.Since(start)}
	if banner {
		r.banner = readBanner(ctx, conn)
	}
	return r
}

// readBanner waits up to bannerWait (or the run's deadline) for the server
// to send something and returns it, sanitized.
func readBanner(ctx context.Context, conn net.Conn) string {
	deadline := time.Now().Add(bannerWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return ""
	}
	buf := make([]byte, bannerMax)
	n, _ := conn.Read(buf)
	return sanitize(buf[:n])
}

// sanitize keeps printable ASCII, turns line breaks and tabs into spaces and
// every other byte into ".", and trims surrounding spaces: a banner is shown
// in the UI and must not carry control sequences.
func sanitize(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		switch {
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		case c == '\r' || c == '\n' || c == '\t':
			sb.WriteByte(' ')
		default:
			sb.WriteByte('.')
		}
	}
	return strings.TrimSpace(sb.String())
}

// classify names the state a failed connection attempt leaves a port in.
func classify(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, probe.ErrAddrRefused):
		return StateError
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return StateClosed
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(),
		errors.Is(ctx.Err(), context.DeadlineExceeded):
		return StateTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN):
		return StateUnreachable
	}
	return StateError
}

// resolve returns the IP address to connect to: host itself when it is an
// address, else the first address the resolver prefers. Resolving once, not
// once per port, keeps a 64-port check to one lookup.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, errors.New("no address found")
	}
	return ips[0].Unmap(), nil
}

// runContext bounds the run by the configured timeout, and by a default
// when the caller's context has no deadline, so a run never hangs.
func runContext(ctx context.Context, timeout float64) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(ctx, time.Duration(timeout*float64(time.Second)))
	}
	if _, ok := ctx.Deadline(); !ok {
		return context.WithTimeout(ctx, defaultTimeout)
	}
	return context.WithCancel(ctx)
}
