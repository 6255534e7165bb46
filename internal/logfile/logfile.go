// Package logfile is a log file with size and age limits: an io.WriteCloser
// that appends to a file, renames it to PATH.1 (PATH.1 to PATH.2, …) when
// it would grow past a size, keeps a bounded number of those rotated files
// and removes the ones older than a maximum age.
//
// Rotation failures never drop a line: the line goes to the file in hand
// (which then grows past the limit) and the failure is reported, see
// [File.Write] and [RotateError].
package logfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The defaults of Options' zero fields.
const (
	DefaultMaxBytes = 10 << 20
	DefaultMaxFiles = 5
	DefaultMaxAge   = 30 * 24 * time.Hour
)

// Options configures a log file. The zero value of every field but Path
// means its default; negative values are refused.
type Options struct {
	// Path is the log file. Its directory must exist; Path itself must be
	// a regular file (not a symbolic link) if it exists, and is created
	// with mode 0600 otherwise. An existing file keeps its mode.
	Path string
	// MaxBytes is the size a write may not take the file past: the file is
	// rotated first (DefaultMaxBytes when 0).
	MaxBytes int64
	// MaxFiles is the number of rotated files kept, PATH.1 (the newest)
	// to PATH.MaxFiles (DefaultMaxFiles when 0).
	MaxFiles int
	// MaxAge removes the rotated files last written longer ago than this,
	// at Open and at each rotation (DefaultMaxAge when 0). The live file
	// is never removed.
	MaxAge time.Duration
	// Now is the clock for MaxAge (time.Now when nil).
	Now func() time.Time
}

// RotateError is a failed rotation (renaming the files, opening the new
// one or removing the old ones). When Write returns it, the line was
// written whole to the file in hand (n == len(p)).
type RotateError struct {
	Path string
	Err  error
}

func (e *RotateError) Error() string {
	return "logfile: rotating " + e.Path + ": " + e.Err.Error()
}

func (e *RotateError) Unwrap() error { return e.Err }

// File is a size- and age-limited log file. Its methods are safe for
// concurrent use.
type File struct {
	o Options

	mu       sync.Mutex
	f        *os.File // nil once closed
	size     int64
	failing  bool  // the last rotation attempt failed
	failures int   // failed rotation attempts since Open
	lastErr  error // the last rotation failure
}

var _ io.WriteCloser = (*File)(nil)

// Open opens (or creates) the log file for appending and removes the
// rotated files beyond MaxFiles or older than MaxAge; it fails when it
// cannot (a log directory it cannot list or clean is an error to fix, not
// to discover when the disk is full).
func Open(o Options) (*File, error) {
	if o.Path == "" {
		return nil, errors.New("logfile: no path")
	}
	if o.MaxBytes < 0 || o.MaxFiles < 0 || o.MaxAge < 0 {
		return nil, fmt.Errorf("logfile: negative limit (max bytes %d, max files %d, max age %s)", o.MaxBytes, o.MaxFiles, o.MaxAge)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Path = filepath.Clean(o.Path)
	f, size, err := openPath(o.Path)
	if err != nil {
		return nil, err
	}
	l := &File{o: o, f: f, size: size}
	if err := l.prune(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// openPath opens path for appending: an existing regular file as it is, or
// a new file with mode 0600. It refuses a symbolic link or any other kind
// of file, also when one replaces the file between the checks and the open.
func openPath(path string) (*os.File, int64, error) {
	for attempt := 0; ; attempt++ {
		fi, err := os.Lstat(path)
		var f *os.File
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// O_EXCL fails on any existing name, a dangling symbolic link
			// included: nothing is created anywhere but at path.
			f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator's log file, write-only
			if errors.Is(err, fs.ErrExist) && attempt == 0 {
				continue // created meanwhile: look at it again
			}
		case err != nil:
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, 0, fmt.Errorf("logfile: %s is a symbolic link", path)
		case !fi.Mode().IsRegular():
			return nil, 0, fmt.Errorf("logfile: %s is not a regular file (%s)", path, fi.Mode().Type())
		default:
			f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0) // #nosec G304 -- the operator's log file, checked a regular file, write-only
		}
		if err != nil {
			return nil, 0, fmt.Errorf("logfile: %w", err)
		}
		// What was opened must be the regular file now at path.
		st, err := f.Stat()
		if err == nil {
			var now fs.FileInfo
			if now, err = os.Lstat(path); err == nil && (!st.Mode().IsRegular() || !os.SameFile(st, now)) {
				err = fmt.Errorf("logfile: %s was replaced while being opened", path)
			}
		}
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, st.Size(), nil
	}
}

// Write appends p to the file, rotating it first when p would take it past
// MaxBytes (unless the file is empty: a p larger than MaxBytes is written
// whole, alone in its file).
//
// When the rotation fails, p is written to the file in hand anyway and the
// failure is counted (see RotationFailures). Write returns it, as a
// *RotateError with n == len(p), once: for the first failed attempt after
// Open or after a successful rotation, so a writer that stays broken does
// not turn every line into an error. Each following write that needs a
// rotation tries again. An error writing p itself is returned as is.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	var rotErr error
	if l.size > 0 && l.size+int64(len(p)) > l.o.MaxBytes {
		if err := l.rotate(); err != nil {
			l.failures++
			l.lastErr = err
			if !l.failing {
				rotErr = err
			}
			l.failing = true
		} else {
			l.failing = false
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		return n, err
	}
	return n, rotErr
}

// RotationFailures returns the number of failed rotation attempts since
// Open and the last failure (nil when there was none).
func (l *File) RotationFailures() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures, l.lastErr
}

// Close closes the file. Writes after Close fail with os.ErrClosed; a
// second Close does nothing.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// rotated is the name of the i-th rotated file.
func (l *File) rotated(i int) string { return l.o.Path + "." + strconv.Itoa(i) }

// rotate moves the live file to PATH.1 and opens a new one. The file in
// hand is kept until the new one is open, so a failure at any step leaves
// something to write to.
func (l *File) rotate() error {
	_, err := os.Lstat(l.o.Path)
	switch {
	case err == nil:
		if err := l.makeRoom(); err != nil {
			return &RotateError{Path: l.o.Path, Err: err}
		}
		if err := os.Rename(l.o.Path, l.rotated(1)); err != nil {
			return &RotateError{Path: l.o.Path, Err: err}
		}
	case errors.Is(err, fs.ErrNotExist):
		// Already moved away: by an earlier attempt whose open failed (the
		// file in hand is PATH.1 then, and must not be shifted again), or
		// by someone else. Only a new file is needed.
	default:
		return &RotateError{Path: l.o.Path, Err: err}
	}
	f, size, err := openPath(l.o.Path)
	if err != nil {
		return &RotateError{Path: l.o.Path, Err: err}
	}
	l.f.Close()
	l.f, l.size = f, size
	if err := l.prune(); err != nil {
		return &RotateError{Path: l.o.Path, Err: err}
	}
	return nil
}

// makeRoom frees PATH.1 by shifting PATH.1 … PATH.k-1 up by one, where
// PATH.k is the first free name; when none of PATH.1 … PATH.MaxFiles is
// free, PATH.MaxFiles is removed first. Shifting only up to the first gap
// means a retried rotation loses nothing.
func (l *File) makeRoom() error {
	k := l.o.MaxFiles
	free := false
	for i := 1; i <= l.o.MaxFiles; i++ {
		_, err := os.Lstat(l.rotated(i))
		if errors.Is(err, fs.ErrNotExist) {
			k, free = i, true
			break
		}
		if err != nil {
			return err
		}
	}
	if !free {
		if err := os.Remove(l.rotated(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for i := k; i > 1; i-- {
		if err := os.Rename(l.rotated(i-1), l.rotated(i)); err != nil {
			return err
		}
	}
	return nil
}

// prune removes the rotated files (PATH.N, N a positive decimal number)
// numbered beyond MaxFiles or last written longer than MaxAge ago. It
// removes what it can and returns the first error.
func (l *File) prune() error {
	dir, base := filepath.Split(l.o.Path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	cutoff := l.o.Now().Add(-l.o.MaxAge)
	var first error
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		n, ok := rotationNumber(suffix)
		if !ok {
			continue
		}
		remove := n > l.o.MaxFiles
		if !remove {
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				first = firstErr(first, err)
				continue
			}
			remove = fi.ModTime().Before(cutoff)
		}
		if remove {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				first = firstErr(first, err)
			}
		}
	}
	if first != nil {
		return fmt.Errorf("logfile: removing old files: %w", first)
	}
	return nil
}

// rotationNumber parses the N of PATH.N: decimal digits only, no sign or
// leading zero, at least 1.
func rotationNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 || s[0] == '0' {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// firstErr returns first, or err when first is nil.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
