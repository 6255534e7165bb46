//go:build unix

package tcp

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) the test process has used,
// so a benchmark can report throughput per core however busy the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
