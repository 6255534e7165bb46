//go:build unix

package hardening

import (
	"io/fs"
	"syscall"
)

// fileOwner returns the uid owning a file, when the platform says.
func fileOwner(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}
