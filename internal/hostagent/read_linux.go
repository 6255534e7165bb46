package hostagent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// On Linux the collectors read with plain system calls: os.Open registers
// every file with the network poller and makes it non-blocking, which
// costs more system calls than reading a /proc file does. The process
// check reads a file per process every interval.

// openRead opens p for reading, retrying when a signal interrupts the
// call (the Go runtime preempts goroutines with signals).
func openRead(p string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|flags, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// readFileInto reads the file at p into buf, growing it up to limit bytes.
// With single, a read shorter than the buffer is taken as the end of the
// file: true of /proc files made by one show() call (/proc/[pid]/stat),
// and it saves a system call per file.
func readFileInto(p string, buf []byte, limit int, single bool) ([]byte, int, error) {
	fd, err := openRead(p, 0)
	if err != nil {
		return buf, 0, err
	}
	defer func() { _ = syscall.Close(fd) }()
	n := 0
	for {
		if n == len(buf) {
			if len(buf) >= limit {
				return buf, 0, fmt.Errorf("larger than %d bytes", limit)
			}
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf, 0, &os.PathError{Op: "read", Path: p, Err: err}
		}
		n += m
		if m == 0 || (single && n < len(buf)) {
			return buf, n, nil
		}
	}
}

// eachDirName calls fn with the name of each entry of the directory p
// (including "." and ".."), in directory order, until fn returns false.
// The name is only valid during the call. buf is reused for the entries.
func eachDirName(p string, buf []byte, fn func(name []byte) bool) ([]byte, error) {
	fd, err := openRead(p, syscall.O_DIRECTORY)
	if err != nil {
		return buf, err
	}
	defer func() { _ = syscall.Close(fd) }()
	if len(buf) < 8192 {
		buf = make([]byte, 8192)
	}
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf, &os.PathError{Op: "readdirent", Path: p, Err: err}
		}
		if n <= 0 {
			return buf, nil
		}
		// Each record is struct linux_dirent64: d_ino (8 bytes), d_off
		// (8), d_reclen (2), d_type (1), then the name, NUL-terminated.
		for b := buf[:n]; len(b) > 0; {
			if len(b) < 19 {
				return buf, errBadDirent
			}
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return buf, errBadDirent
			}
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if !fn(name) {
				return buf, nil
			}
			b = b[reclen:]
		}
	}
}

var errBadDirent = errors.New("malformed directory entry")
