//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package remote

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockQueueDir takes an exclusive lock on the queue directory's lock file,
// without waiting: two processes on one queue (two hubs given the same
// --data, or a hub started while the old one still runs) would delete
// each other's segments and lose samples.
func lockQueueDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the queue's own directory
	if err != nil {
		return nil, fmt.Errorf("locking the remote-write queue: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another process uses the remote-write queue in %s: is another hub running with the same --data directory? Each hub needs its own", dir)
		}
		return nil, fmt.Errorf("locking the remote-write queue: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
