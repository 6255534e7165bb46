//go:build !unix

package tcp

import "time"

// cpuTime is unknown here: the benchmark reports wall-clock throughput only.
func cpuTime() time.Duration { return 0 }
