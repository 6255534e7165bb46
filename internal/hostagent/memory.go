package hostagent

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/bits"
	"sync"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// meminfo is what the memory check reads of /proc/meminfo, in bytes.
type meminfo struct {
	total, free, available, buffers, cached, swapTotal, swapFree uint64
	has                                                          meminfoFields
}

// meminfoFields says which of the fields were in the file.
type meminfoFields uint8

const (
	hasMemTotal meminfoFields = 1 << iota
	hasMemFree
	hasMemAvailable
	hasBuffers
	hasCached
	hasSwapTotal
	hasSwapFree
)

// errNoMemTotal is returned by parseMeminfo when MemTotal is missing: the
// memory check has nothing to report then.
var errNoMemTotal = errors.New("no MemTotal line")

// parseMeminfo reads /proc/meminfo ("MemTotal:       24683656 kB"). Lines
// of fields the check does not use are only checked for their shape;
// malformed lines are skipped and returned as an error.
func parseMeminfo(b []byte) (meminfo, error) {
	var mi meminfo
	var errs lineErrors
	var f [3][]byte
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(trimSpace(line)) == 0 {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			errs.addf("no colon: %s", quote(line))
			continue
		}
		key := line[:colon]
		n := fields(line[colon+1:], f[:])
		if n < 1 || n > 2 || (n == 2 && !bytes.Equal(f[1], []byte("kB"))) {
			errs.addf("want a number and kB: %s", quote(line))
			continue
		}
		v, ok := parseUint(f[0])
		if !ok {
			errs.addf("bad number: %s", quote(line))
			continue
		}
		var dst *uint64
		var bit meminfoFields
		switch string(key) {
		case "MemTotal":
			dst, bit = &mi.total, hasMemTotal
		case "MemFree":
			dst, bit = &mi.free, hasMemFree
		case "MemAvailable":
			dst, bit = &mi.available, hasMemAvailable
		case "Buffers":
			dst, bit = &mi.buffers, hasBuffers
		case "Cached":
			dst, bit = &mi.cached, hasCached
		case "SwapTotal":
			dst, bit = &mi.swapTotal, hasSwapTotal
		case "SwapFree":
			dst, bit = &mi.swapFree, hasSwapFree
		default:
			continue
		}
		if n != 2 || v > math.MaxInt64/1024 {
			errs.addf("want a size in kB below 8 EiB: %s", quote(line))
			continue
		}
		if mi.has&bit != 0 {
			errs.addf("repeated line: %s", quote(line))
			continue
		}
		*dst = v * 1024
		mi.has |= bit
	}
	if mi.has&hasMemTotal == 0 {
		errs.add(errNoMemTotal)
	}
	return mi, errs.err()
}

// memoryCollector is the memory check. It has no rates.
type memoryCollector struct {
	mu sync.Mutex
	r  reader
}

func newMemoryCollector(opts Options) *memoryCollector {
	return &memoryCollector{r: newReader(opts)}
}

// Key implements Check.
func (c *memoryCollector) Key() string { return "memory" }

// Collect implements Check.
func (c *memoryCollector) Collect(_ context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p problems
	b, err := c.r.read("proc/meminfo")
	if err != nil {
		p.add(model.SeverityHigh, err)
		return nil, p.checkError()
	}
	mi, err := parseMeminfo(b)
	if err != nil {
		sev := model.SeverityLow
		if mi.has&hasMemTotal == 0 {
			sev = model.SeverityHigh
		}
		p.addf(sev, "%s: %w", c.r.name("proc/meminfo"), err)
		if mi.has&hasMemTotal == 0 {
			return nil, p.checkError()
		}
	}
	m := make(metrics, 0, 12)
	m.uint("total", mi.total)
	if mi.has&hasMemFree != 0 {
		m.uint("free", mi.free)
	}
	// Before Linux 3.14 there is no MemAvailable: estimate it as free(1)
	// did then, from free memory, buffers and page cache.
	avail, hasAvail := mi.available, mi.has&hasMemAvailable != 0
	if !hasAvail && mi.has&(hasMemFree|hasBuffers|hasCached) == hasMemFree|hasBuffers|hasCached {
		s1, c1 := bits.Add64(mi.free, mi.buffers, 0)
		s2, c2 := bits.Add64(s1, mi.cached, 0)
		avail, hasAvail = s2, c1|c2 == 0
	}
	if hasAvail {
		m.uint("available", avail)
		if avail <= mi.total {
			m.uint("used", mi.total-avail)
			if mi.total > 0 {
				m.float("percentUsed", float64(mi.total-avail)/float64(mi.total)*100)
			}
		} else {
			p.addf(model.SeverityLow, "%s: more memory available than in total", c.r.name("proc/meminfo"))
		}
	}
	if mi.has&hasBuffers != 0 {
		m.uint("buffers", mi.buffers)
	}
	if mi.has&hasCached != 0 {
		m.uint("cached", mi.cached)
	}
	if mi.has&(hasSwapTotal|hasSwapFree) == hasSwapTotal|hasSwapFree {
		m.uint("swapTotal", mi.swapTotal)
		m.uint("swapFree", mi.swapFree)
		if mi.swapFree <= mi.swapTotal {
			m.uint("swapUsed", mi.swapTotal-mi.swapFree)
			// Without swap there is no share of it in use.
			if mi.swapTotal > 0 {
				m.float("percentSwapUsed", float64(mi.swapTotal-mi.swapFree)/float64(mi.swapTotal)*100)
			}
		} else {
			p.addf(model.SeverityLow, "%s: more swap free than in total", c.r.name("proc/meminfo"))
		}
	}
	return []model.Type{{Name: "memory", Items: []model.Item{{Name: "memory", Metrics: m}}}}, p.checkError()
}
