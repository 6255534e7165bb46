package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseLogFlags(t *testing.T, args ...string) *logFlags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	lf := addLogFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return lf
}

func TestLogFlagDefaults(t *testing.T) {
	lf := parseLogFlags(t)
	want := logFlags{maxBytes: 10 << 20, maxFiles: 5, maxAge: 720 * time.Hour}
	if *lf != want {
		t.Errorf("defaults %+v, want %+v", *lf, want)
	}
	var stderr bytes.Buffer
	w, closeLog, err := openLog(lf, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if w != io.Writer(&stderr) {
		t.Errorf("without --log-file the log goes to %T, want stderr", w)
	}
	if err := closeLog(); err != nil {
		t.Error(err)
	}
}

func TestLogFileFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "appliance.log")
	lf := parseLogFlags(t, "--log-file", path, "--log-max-bytes", "200", "--log-max-files", "2", "--log-max-age", "1h")
	var stderr bytes.Buffer
	w, closeLog, err := openLog(lf, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(w, nil))
	for i := range 20 {
		logger.Info("probe done", "i", i, "pad", strings.Repeat("p", 40))
	}
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %q", stderr.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > 200 {
			t.Errorf("%s has %d bytes, more than --log-max-bytes", e.Name(), info.Size())
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", e.Name(), info.Mode().Perm())
		}
	}
	if got := strings.Join(names, " "); got != "appliance.log appliance.log.1 appliance.log.2" {
		t.Errorf("files %s, want the log and 2 rotated files", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "i=19 ") {
		t.Errorf("the last line is not in the log: %q", b)
	}
}

// A rotation failure is told on stderr, and the line still reaches the log
// file.
func TestLogRotationFailureOnStderr(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "appliance.log")
	lf := parseLogFlags(t, "--log-file", path, "--log-max-bytes", "10", "--log-max-files", "1")
	var stderr bytes.Buffer
	w, closeLog, err := openLog(lf, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	// PATH.1 cannot be removed to make room.
	if err := os.MkdirAll(filepath.Join(path+".1", "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"first line\n", "second line\n", "third line\n"} {
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := strings.Count(stderr.String(), "sonde-appliance:"); got != 1 {
		t.Errorf("stderr told %d failures, want 1 (once per run of failures): %q", got, stderr.String())
	}
	b, _ := os.ReadFile(path)
	if string(b) != "first line\nsecond line\nthird line\n" {
		t.Errorf("log file %q: lines lost", b)
	}
	if n, _ := w.(rotationReporter).f.RotationFailures(); n != 2 {
		t.Errorf("RotationFailures = %d, want 2", n)
	}
}

// Bad log flags stop the run command before the appliance opens (no hub,
// no data directory is touched).
func TestRunRefusesBadLogFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symbolic links:", err)
	}
	data := filepath.Join(dir, "data")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-file", link}, "symbolic link"},
		{[]string{"--log-file", filepath.Join(dir, "missing", "a.log")}, "--log-file"},
		{[]string{"--log-file", filepath.Join(dir, "a.log"), "--log-max-files", "0"}, "must be positive"},
		{[]string{"--log-file", filepath.Join(dir, "a.log"), "--log-max-bytes", "-1"}, "must be positive"},
		{[]string{"--log-file", filepath.Join(dir, "a.log"), "--log-max-age", "0s"}, "must be positive"},
	} {
		var stderr bytes.Buffer
		err := runAppliance(context.Background(), append(tc.args, "--data", data, "--hub", "127.0.0.1:1"), &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data directory was touched: %v", err)
	}
}
