//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package vault

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on the data dir's lock file, so
// two processes changing the vault (the appliance and the CLI, or two CLI
// runs) take turns and neither loses the other's change. Readers do not
// lock: a rename replaces the vault file whole.
func lockDir(dir string) (unlock func(), err error) {
	path := dir + string(os.PathSeparator) + lockFileName
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the operator's data dir
	if err != nil {
		return nil, fmt.Errorf("locking the vault: %w", err)
	}
	if err := matchDirOwner(f, dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the vault: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the vault: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// matchDirOwner gives a file created by root the owner of the data dir, so
// "sudo sonde-appliance vault set …" does not leave a vault the appliance's
// own user can no longer read.
func matchDirOwner(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}
