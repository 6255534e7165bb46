// Package dnsprobe is the dns probe: it sends one query to one DNS server
// and reports the answer's code, records, flags and timing, and whether the
// expected values are among the records. A truncated answer over UDP is
// asked again over TCP, as a resolver would.
//
// Configuration (collector and check key "dns"):
//
//	server   string    DNS server, host[:port] or [IPv6]:port; empty means
//	                   the asset's name
//	port     int       server port when server has none (default 53)
//	name     string    name to look up (required); for type PTR an IP
//	                   address is turned into its reverse name
//	type     string    A (default), AAAA, CNAME, MX, NS, TXT, SOA, SRV, PTR
//	                   or CAA, in any case
//	expect   []string  values that must all be among the answers (order
//	                   and case do not matter, nor a final "." on names;
//	                   TXT values compare exactly, strings joined)
//	tcp      bool      query over TCP from the start
//	recurse  bool      ask for recursion (default true; false to query an
//	                   authoritative server about its own zones)
//	timeout  float     seconds the run may take at most (0: the run's
//	                   deadline; at most 300); without a deadline on the
//	                   run, 5 s
//
// Result: one type, "dns", with one item named by the configured name:
//
//	metric         kind      meaning
//	rcode          string    response code ("NOERROR", "NXDOMAIN",
//	                         "SERVFAIL", "REFUSED", …)
//	answerCount    int       records of the asked type in the answer
//	answers        []string  their data, sorted, without name, TTL and
//	                         class ("192.0.2.1", "10 mx.example.com.");
//	                         at most 100 of at most 1024 bytes each
//	responseTime   float     seconds from sending the query until the
//	                         answer (the TCP retry included)
//	authoritative  bool      the AA flag
//	truncated      bool      the UDP answer had the TC flag (then the
//	                         other metrics come from the TCP answer)
//	expectMatch    bool      every expected value is among the answers
//	                         (only when expect is set)
//
// Errors and their severities (a configuration error is HIGH: the check
// collects nothing until it is fixed):
//
//	HIGH    the configuration is invalid; no answer before the deadline;
//	        the server cannot be reached; the run's address policy refuses
//	        the server's address (see probe.WithAddrPolicy); the answer
//	        cannot be parsed or answers another question; the response
//	        code is SERVFAIL,
//	        REFUSED or any other failure but NXDOMAIN (sent with the result)
//	MEDIUM  NXDOMAIN, or no record of the asked type (NODATA); an expected
//	        value is missing. The result is sent with these.
package dnsprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

const (
	defaultPort    = 53
	maxTimeout     = 300 // seconds
	defaultTimeout = 5 * time.Second
	maxExpect      = 64
	maxAnswers     = 100
	maxAnswerLen   = 1024
	maxMessageLen  = 2048
	// ednsSize is the UDP payload size advertised, as agreed on DNS Flag
	// Day 2020: large enough for most answers, small enough not to fragment.
	ednsSize = 1232
	// defaultDialTimeout is the dns client's own dial timeout, for a
	// context without a deadline (Probe always gives it one).
	defaultDialTimeout = 2 * time.Second
)

var _ probe.Func = Probe

// types are the record types the probe asks for.
var types = map[string]uint16{
	"A": dns.TypeA, "AAAA": dns.TypeAAAA, "CNAME": dns.TypeCNAME, "MX": dns.TypeMX, "NS": dns.TypeNS,
	"TXT": dns.TypeTXT, "SOA": dns.TypeSOA, "SRV": dns.TypeSRV, "PTR": dns.TypePTR, "CAA": dns.TypeCAA,
}

// Config is the dns check's configuration.
type Config struct {
	// Server is the DNS server to ask, host[:port]. Empty means the
	// asset's name.
	Server string `json:"server"`
	// Port is the server's port when Server has none; zero means 53.
	Port int `json:"port"`
	// Name is the name to look up.
	Name string `json:"name"`
	// Type is the record type to ask for; empty means A.
	Type string `json:"type"`
	// Expect lists values that must all be among the answers.
	Expect []string `json:"expect"`
	// TCP queries over TCP from the start.
	TCP bool `json:"tcp"`
	// Recurse sets the RD flag; nil means true.
	Recurse *bool `json:"recurse"`
	// Timeout is how long the run may take at most, in seconds. Zero means
	// the run's own deadline.
	Timeout float64 `json:"timeout"`
}

// settings is a validated Config with defaults filled in.
type settings struct {
	addr      string // host:port
	itemName  string
	qname     string
	qtype     uint16
	typeName  string
	expect    []string // normalized
	expectRaw []string // as configured, for messages
	tcp       bool
	recurse   bool
	timeout   time.Duration
}

// Validate checks the configuration and names the field that is wrong. An
// empty server is valid here: Probe falls back to the asset's name.
func (c *Config) Validate() error {
	_, err := c.settings("localhost")
	return err
}

func (c *Config) settings(assetName string) (*settings, error) {
	s := &settings{tcp: c.TCP, recurse: c.Recurse == nil || *c.Recurse}

	server := c.Server
	if server == "" {
		if !probe.ValidHost(assetName) {
			return nil, errors.New("config.server: missing, and the asset's name is not a host name; set config.server")
		}
		server = assetName
	}
	host, port, err := splitServer(server)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Port < 0 || c.Port > 65535:
		return nil, errors.New("config.port: must be between 1 and 65535")
	case c.Port != 0 && port != 0 && c.Port != port:
		return nil, errors.New("config.port: differs from the port in config.server; give it once")
	case port == 0 && c.Port != 0:
		port = c.Port
	case port == 0:
		port = defaultPort
	}
	s.addr = net.JoinHostPort(host, strconv.Itoa(port))

	s.typeName = strings.ToUpper(c.Type)
	if s.typeName == "" {
		s.typeName = "A"
	}
	qtype, ok := types[s.typeName]
	if !ok {
		return nil, errors.New("config.type: must be one of A, AAAA, CNAME, MX, NS, TXT, SOA, SRV, PTR, CAA")
	}
	s.qtype = qtype

	if c.Name == "" {
		return nil, errors.New("config.name: missing")
	}
	s.itemName = c.Name
	name := c.Name
	if ip, err := netip.ParseAddr(name); err == nil && qtype == dns.TypePTR {
		name, _ = dns.ReverseAddr(ip.String())
	}
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 || strings.ContainsAny(name, " \t\r\n") {
		return nil, errors.New("config.name: must be a domain name")
	}
	s.qname = dns.Fqdn(name)

	if len(c.Expect) > maxExpect {
		return nil, fmt.Errorf("config.expect: must hold at most %d values", maxExpect)
	}
	for _, e := range c.Expect {
		if strings.TrimSpace(e) == "" || len(e) > maxAnswerLen {
			return nil, fmt.Errorf("config.expect: values must be 1–%d bytes and not blank", maxAnswerLen)
		}
		s.expect = append(s.expect, normalize(qtype, e))
		s.expectRaw = append(s.expectRaw, e)
	}

	if c.Timeout < 0 || c.Timeout > maxTimeout {
		return nil, fmt.Errorf("config.timeout: must be between 0 and %d seconds", maxTimeout)
	}
	s.timeout = time.Duration(c.Timeout * float64(time.Second))
	return s, nil
}

// splitServer splits host[:port]; port is 0 when absent.
func splitServer(server string) (host string, port int, err error) {
	host = server
	if _, err := netip.ParseAddr(strings.Trim(server, "[]")); err == nil {
		host = strings.Trim(server, "[]")
	} else if h, p, err := net.SplitHostPort(server); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", 0, errSyntax
		}
		if n < 1 || n > 65535 {
			return "", 0, errors.New("config.server: the port must be between 1 and 65535")
		}
		host, port = h, n
	}
	if !probe.ValidHost(host) {
		return "", 0, errSyntax
	}
	return host, port, nil
}

var errSyntax = errors.New("config.server: must be a host name or an IP address, with an optional :port")

// Probe sends the configured query and reports on the answer. It needs no
// credentials.
func Probe(ctx context.Context, t probe.Target, _ probe.Credentials) probe.Result {
	var c Config
	if err := probe.DecodeConfig(t.Config, &c); err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	s, err := c.settings(t.AssetName)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	switch {
	case s.timeout > 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	default:
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
			defer cancel()
		}
	}

	q := new(dns.Msg)
	q.SetQuestion(s.qname, s.qtype)
	q.RecursionDesired = s.recurse
	q.SetEdns0(ednsSize, false)
	what := fmt.Sprintf("%s %s at %s", s.typeName, s.qname, s.addr)

	start := time.Now()
	network := "udp"
	if s.tcp {
		network = "tcp"
	}
	r, err := exchange(ctx, network, q, s.addr)
	truncated := false
	if network == "udp" && r != nil && r.Truncated {
		// The answer did not fit: ask again over TCP, as a resolver does.
		// A truncated answer may not even parse, so err is not looked at.
		truncated = true
		r, err = exchange(ctx, "tcp", q, s.addr)
	}
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return probe.Fail(model.SeverityHigh, "asking %s: no answer before the deadline", what)
		}
		if refused, ok := errors.AsType[*probe.AddrRefusedError](err); ok {
			return probe.Fail(model.SeverityHigh, "asking %s: %s", what, shorten(refused.Error()))
		}
		return probe.Fail(model.SeverityHigh, "asking %s: %s", what, shorten(err.Error()))
	}
	return report(s, what, r, truncated || r.Truncated, elapsed)
}

// report turns an answer into the result: r is the answer to s's query,
// truncated whether the UDP answer was, elapsed the time taken.
func report(s *settings, what string, r *dns.Msg, truncated bool, elapsed time.Duration) probe.Result {
	if len(r.Question) > 0 && (!strings.EqualFold(r.Question[0].Name, s.qname) || r.Question[0].Qtype != s.qtype) {
		return probe.Fail(model.SeverityHigh, "asking %s: the answer is for another question (%s %s)",
			what, dns.TypeToString[r.Question[0].Qtype], shorten(r.Question[0].Name))
	}
	var answers []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == s.qtype {
			answers = append(answers, rdata(rr))
		}
	}
	slices.Sort(answers)
	count := len(answers)
	list := make([]model.Value, 0, min(count, maxAnswers))
	for _, a := range answers[:min(count, maxAnswers)] {
		list = append(list, model.StringValue(bound(a)))
	}
	rcode, ok := dns.RcodeToString[r.Rcode]
	if !ok {
		rcode = "RCODE" + strconv.Itoa(r.Rcode)
	}

	metrics := []model.Metric{
		{Name: "rcode", Value: model.StringValue(rcode)},
		{Name: "answerCount", Value: model.IntValue(int64(count))},
		{Name: "answers", Value: model.Value{Kind: model.KindList, List: list}},
		{Name: "responseTime", Value: model.FloatValue(elapsed.Seconds())},
		{Name: "authoritative", Value: model.BoolValue(r.Authoritative)},
		{Name: "truncated", Value: model.BoolValue(truncated)},
	}

	sev := model.SeverityLow
	var problems []string
	switch {
	case r.Rcode == dns.RcodeNameError:
		sev = model.SeverityMedium
		problems = append(problems, "the name does not exist (NXDOMAIN)")
	case r.Rcode != dns.RcodeSuccess:
		sev = model.SeverityHigh
		problems = append(problems, "the server answered "+rcode)
	case count == 0:
		sev = model.SeverityMedium
		problems = append(problems, "no "+s.typeName+" record (NODATA)")
	}
	if len(s.expect) > 0 {
		have := make(map[string]bool, len(answers))
		for _, a := range answers {
			have[normalize(s.qtype, a)] = true
		}
		var missing []string
		for i, e := range s.expect {
			if !have[e] {
				missing = append(missing, strconv.Quote(s.expectRaw[i]))
			}
		}
		metrics = append(metrics, model.Metric{Name: "expectMatch", Value: model.BoolValue(len(missing) == 0)})
		if len(missing) > 0 {
			sev = min(sev, model.SeverityMedium)
			problems = append(problems, "expected but not answered: "+shorten(strings.Join(missing, ", ")))
		}
	}

	res := probe.Result{Types: []model.Type{{Name: "dns", Items: []model.Item{{Name: s.itemName, Metrics: metrics}}}}}
	if len(problems) > 0 {
		res.Error = &model.CheckError{Severity: sev, Message: what + ": " + strings.Join(problems, "; ")}
	}
	return res
}

// exchange sends q over network and waits for the answer until ctx's
// deadline.
func exchange(ctx context.Context, network string, q *dns.Msg, addr string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, UDPSize: ednsSize}
	if d, ok := ctx.Deadline(); ok {
		// Without a Timeout the client caps every step at 2 s.
		c.Timeout = max(time.Until(d), time.Millisecond)
	}
	if control := probe.DialControl(ctx, nil); control != nil {
		// The run's address policy (see probe.WithAddrPolicy), checked on
		// the server's address actually dialled, after resolution. The
		// dialer's Timeout is what the client uses without a Dialer.
		timeout := c.Timeout
		if timeout == 0 {
			timeout = defaultDialTimeout
		}
		c.Dialer = &net.Dialer{Timeout: timeout, Control: control}
	}
	r, _, err := c.ExchangeContext(ctx, q, addr)
	return r, err
}

// rdata returns a record's data as text, without the name, TTL and class
// (the TTL changes from one query to the next). TXT strings are joined
// unquoted, as SPF and DKIM read them.
func rdata(rr dns.RR) string {
	if txt, ok := rr.(*dns.TXT); ok {
		return strings.Join(txt.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// normalize puts an answer or an expected value in the form they are
// compared in.
func normalize(qtype uint16, v string) string {
	if qtype == dns.TypeTXT {
		return v
	}
	v = strings.ToLower(strings.Join(strings.Fields(v), " "))
	if ip, err := netip.ParseAddr(v); err == nil {
		return ip.String()
	}
	return strings.TrimSuffix(v, ".")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// bound keeps a record's text a reasonable size.
func bound(s string) string {
	if len(s) <= maxAnswerLen {
		return s
	}
	return s[:maxAnswerLen] + "…"
}

func shorten(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	return s[:maxMessageLen] + "…"
}
