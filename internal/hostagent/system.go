package hostagent

import (
	"context"
	"errors"
	"io/fs"
	"sync"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// systemCollector is the system check: host name, kernel, uptime, load,
// task counts and logged-in users. It has no rates.
type systemCollector struct {
	mu   sync.Mutex
	r    reader
	stat procStat
}

func newSystemCollector(opts Options) *systemCollector {
	return &systemCollector{r: newReader(opts)}
}

// Key implements Check.
func (c *systemCollector) Key() string { return "system" }

// Collect implements Check.
func (c *systemCollector) Collect(_ context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p problems
	m := make(metrics, 0, 16)

	if s, err := c.r.readString("proc/sys/kernel/hostname"); err != nil {
		p.add(model.SeverityLow, err)
	} else if s != "" {
		m.str("hostname", s)
	}
	if s, err := c.r.readString("proc/sys/kernel/osrelease"); err != nil {
		p.add(model.SeverityLow, err)
	} else if s != "" {
		m.str("kernel", s)
	}
	if b, err := c.r.read("proc/uptime"); err != nil {
		p.add(model.SeverityLow, err)
	} else if up, err := parseUptime(b); err != nil {
		p.addf(model.SeverityLow, "%s: %w", c.r.name("proc/uptime"), err)
	} else {
		m.float("uptime", up)
	}
	if b, err := c.r.read("proc/stat"); err != nil {
		p.add(model.SeverityLow, err)
	} else {
		// A missing cpu line is the cpu check's problem, not this one's.
		if err := parseStat(b, &c.stat); err != nil && !(errors.Is(err, errNoCPULine) && c.stat.hasBootTime) {
			p.addf(model.SeverityLow, "%s: %w", c.r.name("proc/stat"), err)
		}
		if c.stat.hasBootTime {
			m.int("bootTime", c.stat.bootTime)
		}
		if c.stat.hasRunning {
			m.int("tasksRunning", c.stat.procsRunning)
		}
		if c.stat.hasBlocked {
			m.int("tasksBlocked", c.stat.procsBlocked)
		}
	}
	if b, err := c.r.read("proc/loadavg"); err != nil {
		p.add(model.SeverityLow, err)
	} else if l, err := parseLoadavg(b); err != nil {
		p.addf(model.SeverityLow, "%s: %w", c.r.name("proc/loadavg"), err)
	} else {
		m.float("load1", l.load1)
		m.float("load5", l.load5)
		m.float("load15", l.load15)
		m.int("threads", l.tasks)
	}
	var procs int64
	if err := c.r.eachName("proc", func(name []byte) bool {
		if _, ok := parsePID(name); ok {
			procs++
		}
		return true
	}); err != nil {
		p.add(model.SeverityLow, err)
	} else {
		m.int("processes", procs)
	}
	// Hosts without utmp (containers, systemd ≥ 256 with utmp disabled)
	// have no user count; that is not an error.
	if b, err := c.r.read("run/utmp"); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			p.add(model.SeverityLow, err)
		}
	} else {
		users, err := parseUtmp(b)
		if err != nil {
			p.addf(model.SeverityLow, "%s: %w", c.r.name("run/utmp"), err)
		}
		m.int("users", users)
	}

	if len(m) == 0 {
		p.addf(model.SeverityHigh, "no system information could be read")
		return nil, p.checkError()
	}
	return []model.Type{{Name: "system", Items: []model.Item{{Name: "system", Metrics: m}}}}, p.checkError()
}
