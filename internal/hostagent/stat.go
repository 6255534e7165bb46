package hostagent

import (
	"bytes"
	"errors"
	"math"
)

// The columns of a cpu line of /proc/stat that the cpu check reports, in
// the kernel's order. guest and guest_nice follow them in the file but are
// already counted in user and nice, so they are left out of the total.
const (
	cpuUser = iota
	cpuNice
	cpuSystem
	cpuIdle
	cpuIowait
	cpuIRQ
	cpuSoftIRQ
	cpuSteal
	cpuColumns
)

// cpuTimes is one cpu line: time spent in each state since boot, in ticks.
type cpuTimes [cpuColumns]uint64

// cpuLine is a cpu line with its CPU number, -1 for the total line "cpu".
type cpuLine struct {
	cpu   int
	times cpuTimes
}

// procStat is what the checks read of /proc/stat.
type procStat struct {
	total    cpuTimes
	hasTotal bool
	// cpus are the per-CPU lines in the file's order (online CPUs only).
	cpus []cpuLine

	bootTime                            int64 // btime, Unix seconds
	procsRunning                        int64 // procs_running: runnable tasks
	procsBlocked                        int64 // procs_blocked: tasks waiting for I/O
	hasBootTime, hasRunning, hasBlocked bool
}

// errNoCPULine is returned by parseStat when /proc/stat has no total cpu
// line: the cpu check has nothing to report then.
var errNoCPULine = errors.New(`no "cpu" line`)

// maxCPU bounds the CPU numbers accepted (Linux' NR_CPUS is at most 8192).
const maxCPU = 1 << 16

// parseStat reads /proc/stat into s, reusing its slice. Malformed lines
// are skipped and returned as an error; the lines the checks do not use
// (intr, ctxt, softirq…) are not parsed.
func parseStat(b []byte, s *procStat) error {
	cpus := s.cpus[:0]
	*s = procStat{}
	var errs lineErrors
	var f [cpuColumns + 1][]byte
	// CPUs come in increasing order: a CPU above all the ones before is
	// new without searching them.
	maxSeen := -1
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		switch {
		case bytes.HasPrefix(line, []byte("cpu")):
			n := fields(line, f[:])
			if n < cpuColumns+1 {
				errs.addf("cpu line with %d columns, want at least %d: %s", n, cpuColumns+1, quote(line))
				continue
			}
			cpu := -1
			if name := f[0][3:]; len(name) > 0 {
				u, ok := parseUint(name)
				if !ok || u >= maxCPU {
					errs.addf("bad cpu name: %s", quote(line))
					continue
				}
				cpu = int(u)
			}
			var t cpuTimes
			ok := true
			for i := range t {
				if t[i], ok = parseUint(f[i+1]); !ok {
					break
				}
			}
			if !ok {
				errs.addf("bad number in cpu line: %s", quote(line))
				continue
			}
			if cpu < 0 {
				if s.hasTotal {
					errs.addf("repeated cpu line: %s", quote(line))
					continue
				}
				s.total, s.hasTotal = t, true
				continue
			}
			if cpu <= maxSeen && seenCPU(cpus, cpu) {
				errs.addf("repeated cpu line: %s", quote(line))
				continue
			}
			maxSeen = max(maxSeen, cpu)
			cpus = append(cpus, cpuLine{cpu: cpu, times: t})
		case bytes.HasPrefix(line, []byte("btime")):
			v, ok := statValue(line, "btime", f[:2])
			if !ok {
				errs.addf("bad btime line: %s", quote(line))
				continue
			}
			s.bootTime, s.hasBootTime = v, true
		case bytes.HasPrefix(line, []byte("procs_running")):
			v, ok := statValue(line, "procs_running", f[:2])
			if !ok {
				errs.addf("bad procs_running line: %s", quote(line))
				continue
			}
			s.procsRunning, s.hasRunning = v, true
		case bytes.HasPrefix(line, []byte("procs_blocked")):
			v, ok := statValue(line, "procs_blocked", f[:2])
			if !ok {
				errs.addf("bad procs_blocked line: %s", quote(line))
				continue
			}
			s.procsBlocked, s.hasBlocked = v, true
		}
	}
	s.cpus = cpus
	if !s.hasTotal {
		errs.add(errNoCPULine)
	}
	return errs.err()
}

// seenCPU reports whether cpu is already in cpus.
func seenCPU(cpus []cpuLine, cpu int) bool {
	for _, c := range cpus {
		if c.cpu == cpu {
			return true
		}
	}
	return false
}

// statValue reads a "name value" line of /proc/stat.
func statValue(line []byte, key string, f [][]byte) (int64, bool) {
	if fields(line, f) != 2 || string(f[0]) != key {
		return 0, false
	}
	u, ok := parseUint(f[1])
	if !ok || u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
