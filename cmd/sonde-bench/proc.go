package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. Linux fixes it
// at 100 for user space whatever the kernel's tick rate.
const userHZ = 100

// procSample is what /proc says about a process at one moment.
type procSample struct {
	CPUSeconds float64 // user + system time
	RSSBytes   int64   // VmRSS
	HWMBytes   int64   // VmHWM: peak RSS so far
	AnonBytes  int64   // RssAnon: the part of VmRSS not backed by files (heap, stacks)
}

// readProc reads the CPU time and memory of process pid ("self" for this
// process when pid is 0).
func readProc(pid int) (procSample, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	var s procSample
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("reading CPU time: %w", err)
	}
	if s.CPUSeconds, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("reading memory use: %w", err)
	}
	s.RSSBytes, s.HWMBytes, s.AnonBytes = parseStatusMem(status)
	return s, nil
}

// readProcs reads the CPU time and memory of every process of pids and
// sums them; it fails when one cannot be read, since a partial sum would
// pass for the whole. The sum of the peaks is an upper bound of the peak
// of the sum.
func readProcs(pids []int) (procSample, error) {
	var sum procSample
	for _, pid := range pids {
		if pid <= 0 {
			return procSample{}, fmt.Errorf("no process ID to read")
		}
		s, err := readProc(pid)
		if err != nil {
			return procSample{}, fmt.Errorf("process %d: %w", pid, err)
		}
		sum.CPUSeconds += s.CPUSeconds
		sum.RSSBytes += s.RSSBytes
		sum.HWMBytes += s.HWMBytes
		sum.AnonBytes += s.AnonBytes
	}
	return sum, nil
}

// parseStatCPU returns utime+stime, in seconds, of a /proc/<pid>/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing /proc stat: no command name in %q", stat)
	}
	// After ") ": field 3 (state) is index 0, so utime (14) is 11 and
	// stime (15) is 12.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parsing /proc stat: %d fields after the command name", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc stat: utime %q stime %q", f[11], f[12])
	}
	return float64(ut+st) / userHZ, nil
}

// parseStatusMem returns VmRSS, VmHWM and RssAnon, in bytes, of
// /proc/<pid>/status. The rest of VmRSS is mostly files mapped into memory:
// the TSDB maps its head chunks and blocks.
func parseStatusMem(status []byte) (rss, hwm, anon int64) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM" && name != "RssAnon") {
			continue
		}
		f := strings.Fields(rest) // "123456 kB"
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		default:
			anon = kb << 10
		}
	}
	return rss, hwm, anon
}

// machineBusySeconds returns the CPU time all CPUs have spent busy (not
// idle, not waiting for I/O) since boot, from /proc/stat.
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/stat: %w", err)
	}
	return parseMachineBusy(b)
}

// parseMachineBusy reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal…; busy is all but idle and iowait.
// guest time is already part of user time and is not added again.
func parseMachineBusy(stat []byte) (float64, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("parsing /proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing /proc/stat: %w", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return float64(busy) / userHZ, nil
}
