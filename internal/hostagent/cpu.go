package hostagent

import (
	"context"
	"strconv"
	"sync"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// cpuMetricNames name the percentages of the cpu check, by cpuTimes
// column.
var cpuMetricNames = [cpuColumns]string{
	cpuUser:    "percentUser",
	cpuNice:    "percentNice",
	cpuSystem:  "percentSystem",
	cpuIdle:    "percentIdle",
	cpuIowait:  "percentIowait",
	cpuIRQ:     "percentIrq",
	cpuSoftIRQ: "percentSoftirq",
	cpuSteal:   "percentSteal",
}

// cpuCollector is the cpu check: the share of time each CPU, and all of
// them together, spent in each state since the previous run. The shares
// come from tick counts alone, so they need no clock.
type cpuCollector struct {
	mu   sync.Mutex
	r    reader
	stat procStat
	// prev is the previous sample by CPU number, -1 for the total.
	prev, cur map[int]cpuTimes
	names     []string // "cpu0", "cpu1"… made once
}

func newCPUCollector(opts Options) *cpuCollector {
	return &cpuCollector{r: newReader(opts), prev: map[int]cpuTimes{}, cur: map[int]cpuTimes{}}
}

// Key implements Check.
func (c *cpuCollector) Key() string { return "cpu" }

// Collect implements Check.
func (c *cpuCollector) Collect(_ context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p problems
	b, err := c.r.read("proc/stat")
	if err != nil {
		p.add(model.SeverityHigh, err)
		return nil, p.checkError()
	}
	if err := parseStat(b, &c.stat); err != nil {
		sev := model.SeverityLow
		if !c.stat.hasTotal {
			sev = model.SeverityHigh
		}
		p.addf(sev, "%s: %w", c.r.name("proc/stat"), err)
		if !c.stat.hasTotal {
			clear(c.prev)
			return nil, p.checkError()
		}
	}

	items := make([]model.Item, 0, len(c.stat.cpus)+1)
	all := make(metrics, 0, cpuColumns+1)
	all.int("cpus", int64(len(c.stat.cpus)))
	if prev, ok := c.prev[-1]; ok {
		all.cpuPercents(c.stat.total, prev)
	}
	items = append(items, model.Item{Name: "all", Metrics: all})
	for _, l := range c.stat.cpus {
		prev, ok := c.prev[l.cpu]
		if !ok {
			continue // a CPU just brought online: no rate yet
		}
		m := make(metrics, 0, cpuColumns)
		if m.cpuPercents(l.times, prev) {
			items = append(items, model.Item{Name: c.name(l.cpu), Metrics: m})
		}
	}

	clear(c.cur)
	c.cur[-1] = c.stat.total
	for _, l := range c.stat.cpus {
		c.cur[l.cpu] = l.times
	}
	c.prev, c.cur = c.cur, c.prev
	return []model.Type{{Name: "cpu", Items: items}}, p.checkError()
}

func (c *cpuCollector) name(cpu int) string {
	if cpu >= 4096 {
		return "cpu" + strconv.Itoa(cpu)
	}
	for len(c.names) <= cpu {
		c.names = append(c.names, "cpu"+strconv.Itoa(len(c.names)))
	}
	return c.names[cpu]
}

// cpuPercents adds the share of each state between two samples, in
// percent. It adds nothing and returns false when no tick passed or a
// counter went backwards (iowait does on some kernels; a CPU replaced by
// hotplug restarts at zero).
func (m *metrics) cpuPercents(cur, prev cpuTimes) bool {
	var d cpuTimes
	var total uint64
	for i := range cur {
		if cur[i] < prev[i] {
			return false
		}
		d[i] = cur[i] - prev[i]
		if total+d[i] < total {
			return false
		}
		total += d[i]
	}
	if total == 0 {
		return false
	}
	for i, name := range cpuMetricNames {
		m.float(name, float64(d[i])/float64(total)*100)
	}
	return true
}
