package hostagent

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/[pid]/stat: 100
// on every Linux architecture the agent is built for (reading it would
// take sysconf, i.e. cgo).
const clockTicks = 100

// pidStat is what the process check reads of /proc/[pid]/stat.
type pidStat struct {
	comm         []byte // points into the parsed buffer
	utime, stime uint64 // ticks
	threads      uint64
	start        uint64 // ticks after boot
	rss          uint64 // pages
}

// parsePidStat reads /proc/[pid]/stat: "1 (name) S 0 …". The name may hold
// spaces and parentheses, so it ends at the last ')'.
func parsePidStat(b []byte) (pidStat, error) {
	var s pidStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return s, fmt.Errorf("no (name): %s", quote(b))
	}
	s.comm = b[open+1 : end]
	// The fields after the name start with the state, field 3 of proc(5).
	var f [22][]byte
	if n := fields(b[end+1:], f[:]); n < len(f) {
		return s, fmt.Errorf("%d fields after the name, want at least %d: %s", n, len(f), quote(b))
	}
	var ok [5]bool
	s.utime, ok[0] = parseUint(f[14-3])
	s.stime, ok[1] = parseUint(f[15-3])
	s.threads, ok[2] = parseUint(f[20-3])
	s.start, ok[3] = parseUint(f[22-3])
	s.rss, ok[4] = parseUint(f[24-3])
	if ok != [5]bool{true, true, true, true, true} {
		return s, fmt.Errorf("bad number: %s", quote(b))
	}
	return s, nil
}

// parsePID reads a /proc entry name that is a process id.
func parsePID(name []byte) (int, bool) {
	if len(name) == 0 || len(name) > 10 || name[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > math.MaxInt32 {
		return 0, false
	}
	return n, true
}

// parseStatusUID returns the effective user id of /proc/[pid]/status
// ("Uid:\t1000\t1000\t1000\t1000": real, effective, saved, filesystem), as
// ps and top show it.
func parseStatusUID(b []byte) (int64, bool) {
	var f [3][]byte
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if !bytes.HasPrefix(line, []byte("Uid:")) {
			continue
		}
		if fields(line, f[:]) < 3 {
			return 0, false
		}
		u, ok := parseUint(f[2])
		if !ok || u > math.MaxUint32 {
			return 0, false
		}
		return int64(u), true
	}
	return 0, false
}

// lookupUsers fills names with the user names of the uids it holds, from
// /etc/passwd ("name:x:uid:gid:…"). The first line of a uid wins, as for
// getpwuid. Users of other sources (LDAP, systemd's dynamic users) are not
// in the file and keep no name.
func lookupUsers(b []byte, names map[int64]string) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			continue
		}
		_, rest, ok = bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		uidField, _, _ := bytes.Cut(rest, []byte(":"))
		uid, ok := parseUint(uidField)
		if !ok || uid > math.MaxUint32 {
			continue
		}
		if n, want := names[int64(uid)]; want && n == "" {
			names[int64(uid)] = string(name)
		}
	}
}

// procSample is one process of a scan.
type procSample struct {
	pid              int
	start, ticks     uint64
	rss, threads     uint64
	commOff, commEnd int // the name, in the collector's arena
	delta            uint64
	hasRate          bool
}

// procPrev is a process' previous sample. The start time tells a process
// from a later one that got the same pid.
type procPrev struct{ start, ticks uint64 }

// processCollector is the process check: the processes using most CPU and
// most memory. It reads /proc/[pid]/stat of every process and the status
// of the few it reports; never cmdline, which can hold passwords.
type processCollector struct {
	mu       sync.Mutex
	r, aux   reader
	now      func() time.Time
	top      int
	pageSize uint64
	procDir  string // the root's /proc, with a trailing separator

	samples   []procSample
	arena     []byte // the names of the samples
	order     []int
	prev, cur map[int]procPrev
	prevTime  time.Time
	// prevUptime is the uptime in ticks when the previous scan began: a
	// process started after it used all its CPU time within the interval.
	prevUptime    uint64
	hasPrevUptime bool
}

func newProcessCollector(opts Options) *processCollector {
	c := &processCollector{
		r: newReader(opts), aux: newReader(opts), now: opts.Now, top: opts.TopProcesses,
		pageSize: opts.pageSize, prev: map[int]procPrev{}, cur: map[int]procPrev{},
	}
	c.procDir = c.r.path("proc") + "/"
	c.r.buf = make([]byte, 2048) // a stat line is a few hundred bytes
	return c
}

// Key implements Check.
func (c *processCollector) Key() string { return "process" }

// processGone reports an error of a process that exited during the scan.
func processGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// Collect implements Check.
func (c *processCollector) Collect(ctx context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p problems
	now := c.now()
	var upTicks uint64
	hasUptime := false
	if b, err := c.aux.read("proc/uptime"); err == nil {
		if up, err := parseUptime(b); err == nil && up*clockTicks < math.MaxInt64 {
			upTicks, hasUptime = uint64(up*clockTicks), true
		}
	}
	secs := interval(now, c.prevTime)

	c.samples, c.arena = c.samples[:0], c.arena[:0]
	clear(c.cur)
	var readErrs, parseErrs int
	var firstErr error
	n := 0
	stopped := false
	err := c.r.eachName("proc", func(name []byte) bool {
		pid, ok := parsePID(name)
		if !ok {
			return true
		}
		if n++; n%256 == 0 && ctx.Err() != nil {
			stopped = true
			return false
		}
		b, err := c.r.readPathOnce(c.procDir+string(name)+"/stat", true)
		if err != nil {
			if !processGone(err) {
				readErrs++
				if firstErr == nil {
					firstErr = err
				}
			}
			return true
		}
		st, err := parsePidStat(b)
		if err != nil {
			parseErrs++
			if firstErr == nil {
				firstErr = fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			return true
		}
		s := procSample{
			pid: pid, start: st.start, ticks: st.utime + st.stime, rss: st.rss, threads: st.threads,
			commOff: len(c.arena),
		}
		if s.ticks < st.utime {
			return true // overflow: a corrupt line
		}
		c.arena = append(c.arena, st.comm...)
		s.commEnd = len(c.arena)
		if secs > 0 {
			if prev, ok := c.prev[pid]; ok && prev.start == s.start {
				if s.ticks >= prev.ticks {
					s.delta, s.hasRate = s.ticks-prev.ticks, true
				}
			} else if c.hasPrevUptime && s.start >= c.prevUptime {
				s.delta, s.hasRate = s.ticks, true
			}
		}
		c.samples = append(c.samples, s)
		c.cur[pid] = procPrev{start: s.start, ticks: s.ticks}
		return true
	})
	if err != nil {
		p.add(model.SeverityHigh, err)
		return nil, p.checkError()
	}
	if stopped {
		p.addf(model.SeverityMedium, "collection stopped: %v", ctx.Err())
		return nil, p.checkError()
	}
	if readErrs+parseErrs > 0 {
		p.addf(model.SeverityLow, "%d processes could not be read: %v", readErrs+parseErrs, firstErr)
	}
	c.prev, c.cur = c.cur, c.prev
	c.prevTime = now
	c.prevUptime, c.hasPrevUptime = upTicks, hasUptime

	byMem := c.topBy(func(s *procSample) bool { return s.rss > 0 }, func(a, b *procSample) int {
		return cmp.Compare(b.rss, a.rss)
	})
	var byCPU []int
	if secs > 0 {
		byCPU = c.topBy(func(s *procSample) bool { return s.hasRate && s.delta > 0 }, func(a, b *procSample) int {
			return cmp.Compare(b.delta, a.delta)
		})
	}
	users := c.users(byMem, byCPU)
	types := make([]model.Type, 0, 2)
	// Without a previous sample there is no CPU use to rank by.
	if secs > 0 {
		types = append(types, model.Type{Name: "topCpu", Items: c.items(byCPU, users, secs)})
	}
	types = append(types, model.Type{Name: "topMemory", Items: c.items(byMem, users, secs)})
	return types, p.checkError()
}

// topBy returns the indices of the first c.top samples that keep accepts,
// in the order of less (then by pid).
func (c *processCollector) topBy(keep func(*procSample) bool, less func(a, b *procSample) int) []int {
	c.order = c.order[:0]
	for i := range c.samples {
		if keep(&c.samples[i]) {
			c.order = append(c.order, i)
		}
	}
	slices.SortFunc(c.order, func(i, j int) int {
		a, b := &c.samples[i], &c.samples[j]
		if r := less(a, b); r != 0 {
			return r
		}
		return cmp.Compare(a.pid, b.pid)
	})
	return slices.Clone(c.order[:min(len(c.order), c.top)])
}

// users returns the user name (or uid) of the processes, by pid.
func (c *processCollector) users(lists ...[]int) map[int]string {
	uids := make(map[int]int64, 2*c.top)
	names := make(map[int64]string, 2*c.top)
	for _, idx := range lists {
		for _, i := range idx {
			pid := c.samples[i].pid
			if _, done := uids[pid]; done {
				continue
			}
			b, err := c.aux.readPath(c.procDir + strconv.Itoa(pid) + "/status")
			if err != nil {
				continue // exited since the scan
			}
			if uid, ok := parseStatusUID(b); ok {
				uids[pid] = uid
				names[uid] = ""
			}
		}
	}
	out := make(map[int]string, len(uids))
	if len(names) > 0 {
		if b, err := c.aux.read("etc/passwd"); err == nil {
			lookupUsers(b, names)
		}
	}
	for pid, uid := range uids {
		if n := names[uid]; n != "" {
			out[pid] = n
		} else {
			out[pid] = strconv.FormatInt(uid, 10)
		}
	}
	return out
}

// items makes the items of a top list, named by rank ("1" uses most):
// the series of a rank stay the same while processes come and go.
func (c *processCollector) items(idx []int, users map[int]string, secs float64) []model.Item {
	items := make([]model.Item, 0, len(idx))
	for rank, i := range idx {
		s := &c.samples[i]
		m := make(metrics, 0, 6)
		m.str("processName", string(c.arena[s.commOff:s.commEnd]))
		m.int("pid", int64(s.pid))
		if u, ok := users[s.pid]; ok {
			m.str("user", u)
		}
		if s.hasRate && secs > 0 {
			m.float("percentCpu", float64(s.delta)/clockTicks/secs*100)
		}
		if rss, ok := mulBytes(s.rss, c.pageSize); ok {
			m.uint("rss", rss)
		}
		m.uint("threads", s.threads)
		items = append(items, model.Item{Name: strconv.Itoa(rank + 1), Metrics: m})
	}
	return items
}
