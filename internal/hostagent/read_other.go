//go:build !linux

package hostagent

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// readFileInto reads the file at p into buf, growing it up to limit bytes.
// single is a Linux optimisation, ignored here.
func readFileInto(p string, buf []byte, limit int, _ bool) ([]byte, int, error) {
	f, err := os.Open(p) // #nosec G304 -- the collectors read fixed /proc, /sys, /etc and /run paths under the configured root
	if err != nil {
		return buf, 0, err
	}
	defer func() { _ = f.Close() }()
	n := 0
	for {
		if n == len(buf) {
			if len(buf) >= limit {
				return buf, 0, fmt.Errorf("larger than %d bytes", limit)
			}
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := f.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) || (m == 0 && err == nil) {
			return buf, n, nil
		}
		if err != nil {
			return buf, 0, err
		}
	}
}

// eachDirName calls fn with the name of each entry of the directory p, in
// directory order, until fn returns false.
func eachDirName(p string, buf []byte, fn func(name []byte) bool) ([]byte, error) {
	d, err := os.Open(p) // #nosec G304 -- a fixed directory (/proc) under the configured root
	if err != nil {
		return buf, err
	}
	defer func() { _ = d.Close() }()
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			if !fn([]byte(name)) {
				return buf, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
