package hostagent

import (
	"bytes"
	"context"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// diskLine is one line of /proc/diskstats: a device's counters since boot.
type diskLine struct {
	name []byte // points into the parsed buffer
	// reads and writes completed, sectors (512 bytes, whatever the
	// device's sector size) read and written, milliseconds spent reading
	// and writing, and milliseconds the device was busy (io_ticks).
	reads, readSectors, readTicks    uint64
	writes, writeSectors, writeTicks uint64
	inProgress, ioTicks              uint64
}

// parseDiskstats reads /proc/diskstats into dst, reusing it. Lines need the
// 14 columns of Linux 2.6.25 and later; the discard and flush columns of
// newer kernels are ignored. Malformed lines are skipped and returned as an
// error.
func parseDiskstats(b []byte, dst []diskLine) ([]diskLine, error) {
	dst = dst[:0]
	var errs lineErrors
	var f [14][]byte
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		n := fields(line, f[:])
		if n == 0 {
			continue
		}
		if n < 14 {
			errs.addf("%d columns, want at least 14: %s", n, quote(line))
			continue
		}
		if len(f[2]) > maxItemName || !utf8.Valid(f[2]) {
			errs.addf("bad device name: %s", quote(line))
			continue
		}
		d := diskLine{name: f[2]}
		ok := true
		for i, to := range [...]*uint64{
			&d.reads, nil, &d.readSectors, &d.readTicks,
			&d.writes, nil, &d.writeSectors, &d.writeTicks,
			&d.inProgress, &d.ioTicks, nil,
		} {
			v, good := parseUint(f[3+i])
			if !good {
				ok = false
				break
			}
			if to != nil {
				*to = v
			}
		}
		if _, good := parseUint(f[0]); !good {
			ok = false
		}
		if _, good := parseUint(f[1]); !good {
			ok = false
		}
		if !ok {
			errs.addf("bad number: %s", quote(line))
			continue
		}
		dst = append(dst, d)
	}
	return dst, errs.err()
}

// maxItemName is the longest item name the hub accepts.
const maxItemName = 1024

// diskSample is a device's previous sample, with its name kept so the
// next sample reuses the string.
type diskSample struct {
	name string
	diskLine
}

// diskCollector is the disk check: I/O rates of every block device, whole
// disks and partitions alike. Loop, RAM and floppy devices that never did
// any I/O are left out: every host has a few unused ones.
type diskCollector struct {
	mu        sync.Mutex
	r         reader
	now       func() time.Time
	lines     []diskLine
	prev, cur map[string]diskSample
	prevTime  time.Time
}

func newDiskCollector(opts Options) *diskCollector {
	return &diskCollector{r: newReader(opts), now: opts.Now, prev: map[string]diskSample{}, cur: map[string]diskSample{}}
}

// Key implements Check.
func (c *diskCollector) Key() string { return "disk" }

// unusedVirtualDisk reports a loop, RAM or floppy device without I/O.
func unusedVirtualDisk(d *diskLine) bool {
	if d.reads != 0 || d.writes != 0 {
		return false
	}
	for _, p := range [...]string{"loop", "ram", "zram", "fd"} {
		if bytes.HasPrefix(d.name, []byte(p)) {
			return true
		}
	}
	return false
}

// Collect implements Check.
func (c *diskCollector) Collect(_ context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p problems
	b, err := c.r.read("proc/diskstats")
	now := c.now()
	if err != nil {
		p.add(model.SeverityHigh, err)
		return nil, p.checkError()
	}
	c.lines, err = parseDiskstats(b, c.lines)
	if err != nil {
		p.addf(model.SeverityLow, "%s: %w", c.r.name("proc/diskstats"), err)
	}
	secs := interval(now, c.prevTime)
	clear(c.cur)
	items := make([]model.Item, 0, len(c.lines))
	for i := range c.lines {
		d := &c.lines[i]
		if unusedVirtualDisk(d) {
			continue
		}
		if _, dup := c.cur[string(d.name)]; dup {
			p.addf(model.SeverityLow, "%s: device %s appears twice", c.r.name("proc/diskstats"), quote(d.name))
			continue
		}
		prev, hasPrev := c.prev[string(d.name)]
		name := prev.name
		if !hasPrev {
			name = string(d.name)
		}
		c.cur[name] = diskSample{name: name, diskLine: *d}

		m := make(metrics, 0, 8)
		m.uint("ioInProgress", d.inProgress)
		if hasPrev && secs > 0 {
			m.diskRates(d, &prev.diskLine, secs)
		}
		items = append(items, model.Item{Name: name, Metrics: m})
	}
	c.prev, c.cur = c.cur, c.prev
	c.prevTime = now
	return []model.Type{{Name: "disk", Items: items}}, p.checkError()
}

// diskRates adds the rates of a device between two samples. A counter that
// went backwards leaves its metric out.
func (m *metrics) diskRates(d, prev *diskLine, secs float64) {
	if r, ok := perSecond(d.reads, prev.reads, secs); ok {
		m.float("readsPerSecond", r)
	}
	if r, ok := perSecond(d.writes, prev.writes, secs); ok {
		m.float("writesPerSecond", r)
	}
	if r, ok := perSecond(d.readSectors, prev.readSectors, secs); ok {
		m.float("readBytesPerSecond", r*512)
	}
	if r, ok := perSecond(d.writeSectors, prev.writeSectors, secs); ok {
		m.float("writeBytesPerSecond", r*512)
	}
	if r, ok := perSecond(d.ioTicks, prev.ioTicks, secs); ok {
		// io_ticks is in milliseconds; the kernel's accounting can run a
		// little past the interval.
		m.float("percentBusy", min(r/1000*100, 100))
	}
	// The average time of one read and of one write, as iostat's
	// r_await and w_await, when there were any.
	if d.reads > prev.reads && d.readTicks >= prev.readTicks {
		m.float("msPerRead", float64(d.readTicks-prev.readTicks)/float64(d.reads-prev.reads))
	}
	if d.writes > prev.writes && d.writeTicks >= prev.writeTicks {
		m.float("msPerWrite", float64(d.writeTicks-prev.writeTicks)/float64(d.writes-prev.writes))
	}
}
