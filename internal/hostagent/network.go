package hostagent

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// netDevLine is one interface of /proc/net/dev: its counters since the
// interface was created.
type netDevLine struct {
	name                                  []byte // points into the parsed buffer
	rxBytes, rxPackets, rxErrors, rxDrops uint64
	txBytes, txPackets, txErrors, txDrops uint64
}

// parseNetDev reads /proc/net/dev into dst, reusing it. The two header
// lines are recognised by their '|'; malformed lines are skipped and
// returned as an error.
func parseNetDev(b []byte, dst []netDevLine) ([]netDevLine, error) {
	dst = dst[:0]
	var errs lineErrors
	var f [16][]byte
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			if len(trimSpace(line)) > 0 && bytes.IndexByte(line, '|') < 0 {
				errs.addf("no colon: %s", quote(line))
			}
			continue
		}
		name := trimSpace(line[:colon])
		if !validInterfaceName(name) {
			errs.addf("bad interface name: %s", quote(line))
			continue
		}
		if n := fields(line[colon+1:], f[:]); n < 16 {
			errs.addf("%d counters, want 16: %s", n, quote(line))
			continue
		}
		d := netDevLine{name: name}
		ok := true
		for i, to := range [...]*uint64{
			&d.rxBytes, &d.rxPackets, &d.rxErrors, &d.rxDrops, nil, nil, nil, nil,
			&d.txBytes, &d.txPackets, &d.txErrors, &d.txDrops, nil, nil, nil, nil,
		} {
			v, good := parseUint(f[i])
			if !good {
				ok = false
				break
			}
			if to != nil {
				*to = v
			}
		}
		if !ok {
			errs.addf("bad number: %s", quote(line))
			continue
		}
		dst = append(dst, d)
	}
	return dst, errs.err()
}

// validInterfaceName accepts what Linux accepts (dev_valid_name): at most
// 15 bytes, no '/', ':' or white space, not "." or "..", and, stricter,
// only printable ASCII. The name becomes a path under /sys/class/net.
func validInterfaceName(name []byte) bool {
	if len(name) == 0 || len(name) > 15 || string(name) == "." || string(name) == ".." {
		return false
	}
	for _, c := range name {
		if c == '/' || c == ':' || isSpace(c) || c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// netSample is an interface's previous sample, with its name kept so the
// next sample reuses the string.
type netSample struct {
	name string
	netDevLine
}

// networkCollector is the network check: traffic rates, link state and
// speed of every interface but the loopback, whose traffic never leaves
// the host.
type networkCollector struct {
	mu        sync.Mutex
	r, sys    reader
	now       func() time.Time
	lines     []netDevLine
	prev, cur map[string]netSample
	prevTime  time.Time
}

func newNetworkCollector(opts Options) *networkCollector {
	return &networkCollector{
		r: newReader(opts), sys: newReader(opts), now: opts.Now,
		prev: map[string]netSample{}, cur: map[string]netSample{},
	}
}

// Key implements Check.
func (c *networkCollector) Key() string { return "network" }

// Collect implements Check.
func (c *networkCollector) Collect(_ context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p problems
	b, err := c.r.read("proc/net/dev")
	now := c.now()
	if err != nil {
		p.add(model.SeverityHigh, err)
		return nil, p.checkError()
	}
	c.lines, err = parseNetDev(b, c.lines)
	if err != nil {
		p.addf(model.SeverityLow, "%s: %w", c.r.name("proc/net/dev"), err)
	}
	secs := interval(now, c.prevTime)
	clear(c.cur)
	items := make([]model.Item, 0, len(c.lines))
	for i := range c.lines {
		d := &c.lines[i]
		if string(d.name) == "lo" {
			continue
		}
		if _, dup := c.cur[string(d.name)]; dup {
			p.addf(model.SeverityLow, "%s: interface %s appears twice", c.r.name("proc/net/dev"), quote(d.name))
			continue
		}
		prev, hasPrev := c.prev[string(d.name)]
		name := prev.name
		if !hasPrev {
			name = string(d.name)
		}
		c.cur[name] = netSample{name: name, netDevLine: *d}

		m := make(metrics, 0, 10)
		// Virtual interfaces have no speed (reading it fails or gives
		// -1) and sysfs may not be there at all: both are left out.
		if s, err := c.sys.readString("sys/class/net/" + name + "/operstate"); err == nil && s != "" {
			m.str("operState", s)
		}
		if b, err := c.sys.read("sys/class/net/" + name + "/speed"); err == nil {
			if v, ok := parseInt(trimSpace(b)); ok && v >= 0 {
				m.int("speed", v)
			}
		}
		if hasPrev && secs > 0 {
			m.netRates(d, &prev.netDevLine, secs)
		}
		items = append(items, model.Item{Name: name, Metrics: m})
	}
	c.prev, c.cur = c.cur, c.prev
	c.prevTime = now
	return []model.Type{{Name: "network", Items: items}}, p.checkError()
}

// netRates adds the rates of an interface between two samples. A counter
// that went backwards (the interface was re-created) leaves its metric
// out.
func (m *metrics) netRates(d, prev *netDevLine, secs float64) {
	for _, r := range [...]struct {
		name      string
		cur, prev uint64
	}{
		{"rxBytesPerSecond", d.rxBytes, prev.rxBytes},
		{"txBytesPerSecond", d.txBytes, prev.txBytes},
		{"rxPacketsPerSecond", d.rxPackets, prev.rxPackets},
		{"txPacketsPerSecond", d.txPackets, prev.txPackets},
		{"rxErrorsPerSecond", d.rxErrors, prev.rxErrors},
		{"txErrorsPerSecond", d.txErrors, prev.txErrors},
		{"rxDropsPerSecond", d.rxDrops, prev.rxDrops},
		{"txDropsPerSecond", d.txDrops, prev.txDrops},
	} {
		if v, ok := perSecond(r.cur, r.prev, secs); ok {
			m.float(r.name, v)
		}
	}
}
