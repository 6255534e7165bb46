package hostagent

import (
	"fmt"
	"math"
)

// loadavg is /proc/loadavg: "0.15 0.89 1.83 1/90 32585".
type loadavg struct {
	load1, load5, load15 float64
	running              int64 // runnable tasks
	tasks                int64 // all tasks (threads) on the host
}

// parseLoadavg reads /proc/loadavg. On error the loadavg is zero.
func parseLoadavg(b []byte) (loadavg, error) {
	var l loadavg
	var f [5][]byte
	line, _ := nextLine(b)
	if n := fields(line, f[:]); n < 4 {
		return l, fmt.Errorf("loadavg has %d fields, want at least 4: %s", n, quote(line))
	}
	var ok1, ok5, ok15 bool
	l.load1, ok1 = parseFloat(f[0])
	l.load5, ok5 = parseFloat(f[1])
	l.load15, ok15 = parseFloat(f[2])
	if !ok1 || !ok5 || !ok15 {
		return loadavg{}, fmt.Errorf("bad load average: %s", quote(line))
	}
	tasks := f[3]
	slash := -1
	for i, c := range tasks {
		if c == '/' {
			slash = i
			break
		}
	}
	if slash < 0 {
		return loadavg{}, fmt.Errorf("bad task counts in loadavg: %s", quote(line))
	}
	r, okR := parseUint(tasks[:slash])
	t, okT := parseUint(tasks[slash+1:])
	if !okR || !okT || r > math.MaxInt64 || t > math.MaxInt64 {
		return loadavg{}, fmt.Errorf("bad task counts in loadavg: %s", quote(line))
	}
	l.running, l.tasks = int64(r), int64(t)
	return l, nil
}

// parseUptime reads /proc/uptime ("12345.67 2345.67") and returns the
// seconds since boot.
func parseUptime(b []byte) (float64, error) {
	var f [2][]byte
	line, _ := nextLine(b)
	if n := fields(line, f[:]); n < 1 {
		return 0, fmt.Errorf("empty uptime")
	}
	up, ok := parseFloat(f[0])
	if !ok {
		return 0, fmt.Errorf("bad uptime: %s", quote(line))
	}
	return up, nil
}
