//go:build !linux

package hostagent

import (
	"errors"
	"os"
)

// statfs is only implemented on Linux, the agent's platform.
func statfs(path string) (fsStats, error) {
	return fsStats{}, &os.PathError{Op: "statfs", Path: path, Err: errors.New("not supported on this system")}
}
