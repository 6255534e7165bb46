package hostagent

import (
	"os"
	"syscall"
)

// statfs asks the kernel for the size and use of the filesystem mounted
// at path.
func statfs(path string) (fsStats, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return fsStats{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	// f_frsize is the unit of the block counts; old kernels leave it 0
	// and count in f_bsize.
	size := int64(st.Frsize)
	if size <= 0 {
		size = int64(st.Bsize)
	}
	if size <= 0 {
		size = 0
	}
	return fsStats{
		blocks: st.Blocks, bfree: st.Bfree, bavail: st.Bavail,
		files: st.Files, ffree: st.Ffree,
		frsize: uint64(size),
	}, nil
}
