package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// files returns the log files under dir by name, with their contents.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func mustOpen(t *testing.T, o Options) *File {
	t.Helper()
	f, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func write(t *testing.T, f *File, s string) {
	t.Helper()
	n, err := f.Write([]byte(s))
	if err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func TestRotationBoundaries(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   map[string]string
	}{
		{"under the limit", []string{"12345", "6789"}, map[string]string{"app.log": "123456789"}},
		{"exactly the limit", []string{"12345", "67890"}, map[string]string{"app.log": "1234567890"}},
		{"one byte over", []string{"12345", "678901"}, map[string]string{"app.log": "678901", "app.log.1": "12345"}},
		{"empty write on a full file", []string{"1234567890", ""}, map[string]string{"app.log": "1234567890"}},
		{"full file, next write rotates", []string{"1234567890", "x"}, map[string]string{"app.log": "x", "app.log.1": "1234567890"}},
		{"oversized first write stays whole", []string{"0123456789AB"}, map[string]string{"app.log": "0123456789AB"}},
		{"oversized write goes to a fresh file", []string{"abc", "0123456789AB"}, map[string]string{"app.log": "0123456789AB", "app.log.1": "abc"}},
		{"write after an oversized one rotates", []string{"0123456789AB", "x"}, map[string]string{"app.log": "x", "app.log.1": "0123456789AB"}},
		{"several rotations", []string{"aaaaaa", "bbbbbb", "cccccc", "dd"}, map[string]string{"app.log": "ccccccdd", "app.log.1": "bbbbbb", "app.log.2": "aaaaaa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := mustOpen(t, Options{Path: filepath.Join(dir, "app.log"), MaxBytes: 10})
			for _, w := range tt.writes {
				write(t, f, w)
			}
			if got := files(t, dir); !maps.Equal(got, tt.want) {
				t.Errorf("files = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMaxFiles(t *testing.T) {
	tests := []struct {
		maxFiles int
		want     map[string]string
	}{
		{1, map[string]string{"app.log": "f", "app.log.1": "e"}},
		{3, map[string]string{"app.log": "f", "app.log.1": "e", "app.log.2": "d", "app.log.3": "c"}},
		{5, map[string]string{"app.log": "f", "app.log.1": "e", "app.log.2": "d", "app.log.3": "c", "app.log.4": "b", "app.log.5": "a"}},
		{0 /* default, 5 */, map[string]string{"app.log": "f", "app.log.1": "e", "app.log.2": "d", "app.log.3": "c", "app.log.4": "b", "app.log.5": "a"}},
		{9, map[string]string{"app.log": "f", "app.log.1": "e", "app.log.2": "d", "app.log.3": "c", "app.log.4": "b", "app.log.5": "a"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.maxFiles), func(t *testing.T) {
			dir := t.TempDir()
			f := mustOpen(t, Options{Path: filepath.Join(dir, "app.log"), MaxBytes: 1, MaxFiles: tt.maxFiles})
			for _, w := range []string{"a", "b", "c", "d", "e", "f"} {
				write(t, f, w)
			}
			if got := files(t, dir); !maps.Equal(got, tt.want) {
				t.Errorf("files = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMaxFilesLoweredRemovesTheRestAtOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	for _, name := range []string{"app.log.1", "app.log.2", "app.log.3", "app.log.4"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustOpen(t, Options{Path: path, MaxFiles: 2})
	want := map[string]string{"app.log": "", "app.log.1": "app.log.1", "app.log.2": "app.log.2"}
	if got := files(t, dir); !maps.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}

func TestMaxAge(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name   string
		maxAge time.Duration
		ages   map[string]time.Duration // file → age at now
		kept   []string                 // after Open
	}{
		{
			name:   "older than max age removed",
			maxAge: 7 * day,
			ages:   map[string]time.Duration{"app.log": 30 * day, "app.log.1": day, "app.log.2": 7*day - time.Second, "app.log.3": 7*day + time.Second, "app.log.4": 20 * day},
			kept:   []string{"app.log", "app.log.1", "app.log.2"},
		},
		{
			name:   "default is 30 days",
			maxAge: 0,
			ages:   map[string]time.Duration{"app.log.1": 29 * day, "app.log.2": 31 * day},
			kept:   []string{"app.log", "app.log.1"},
		},
		{
			name:   "only rotated files are touched",
			maxAge: day,
			ages: map[string]time.Duration{
				"app.log.0": 90 * day, "app.log.01": 90 * day, "app.log.x": 90 * day, "app.log.1.gz": 90 * day,
				"app.log.-1": 90 * day, "app.logs.1": 90 * day, "other.log.1": 90 * day, "app.log.2": 90 * day,
			},
			kept: []string{"app.log", "app.log.0", "app.log.01", "app.log.x", "app.log.1.gz", "app.log.-1", "app.logs.1", "other.log.1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, age := range tt.ages {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
					t.Fatal(err)
				}
			}
			mustOpen(t, Options{Path: filepath.Join(dir, "app.log"), MaxAge: tt.maxAge, Now: func() time.Time { return now }})
			var got []string
			for name := range files(t, dir) {
				got = append(got, name)
			}
			slices.Sort(got)
			slices.Sort(tt.kept)
			if !slices.Equal(got, tt.kept) {
				t.Errorf("kept %q, want %q", got, tt.kept)
			}
		})
	}
}

func TestMaxAgeAtRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := mustOpen(t, Options{Path: path, MaxBytes: 4, MaxAge: time.Hour, Now: clock})
	write(t, f, "aaaa")
	write(t, f, "bbbb") // aaaa → .1
	write(t, f, "cccc") // aaaa → .2, bbbb → .1
	if got := len(files(t, dir)); got != 3 {
		t.Fatalf("%d files, want 3", got)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour) // every rotated file is now expired
	mu.Unlock()
	// cccc → .1; every rotated file was last written before the clock's
	// cutoff (an hour ago by the clock): the rotation removes them all.
	write(t, f, "dddd")
	want := map[string]string{"app.log": "dddd"}
	if got := files(t, dir); !maps.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}

func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 1000
	f := mustOpen(t, Options{Path: filepath.Join(dir, "app.log"), MaxBytes: maxBytes, MaxFiles: 1000})
	const writers, lines = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				line := fmt.Sprintf("writer=%d line=%03d %s\n", w, i, strings.Repeat("x", i%40))
				if n, err := f.Write([]byte(line)); err != nil || n != len(line) {
					t.Errorf("Write = %d, %v", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	got := files(t, dir)
	if len(got) < 10 {
		t.Errorf("only %d files: the test should rotate many times", len(got))
	}
	for name, content := range got {
		if len(content) > maxBytes {
			t.Errorf("%s has %d bytes, more than %d", name, len(content), maxBytes)
		}
		if !strings.HasSuffix(content, "\n") {
			t.Errorf("%s ends in the middle of a line", name)
		}
		for _, l := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
			seen[l]++
		}
	}
	for w := range writers {
		for i := range lines {
			line := fmt.Sprintf("writer=%d line=%03d %s", w, i, strings.Repeat("x", i%40))
			if seen[line] != 1 {
				t.Fatalf("line %q seen %d times", line, seen[line])
			}
		}
	}
	if len(seen) != writers*lines {
		t.Errorf("%d distinct lines, want %d", len(seen), writers*lines)
	}
}

func TestModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := mustOpen(t, Options{Path: path, MaxBytes: 4})
	write(t, f, "aaaa")
	write(t, f, "bbbb")
	for _, name := range []string{"app.log", "app.log.1"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}

func TestRefusesSymlinksAndOtherFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	dangling := filepath.Join(dir, "dangling.log")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symbolic links:", err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub.log")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, dangling, sub} {
		if f, err := Open(Options{Path: p}); err == nil {
			f.Close()
			t.Errorf("Open(%s) succeeded", p)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("target changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dangling link's target was created: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{
		{},
		{Path: filepath.Join(dir, "missing", "app.log")},
		{Path: filepath.Join(dir, "a.log"), MaxBytes: -1},
		{Path: filepath.Join(dir, "a.log"), MaxFiles: -1},
		{Path: filepath.Join(dir, "a.log"), MaxAge: -time.Hour},
	} {
		if f, err := Open(o); err == nil {
			f.Close()
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

func TestReopenAppends(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	o := Options{Path: path, MaxBytes: 10}
	f, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "first\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f = mustOpen(t, o)
	write(t, f, "two\n")
	want := map[string]string{"app.log": "first\ntwo\n"}
	if got := files(t, dir); !maps.Equal(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
	// The reopened file's size counts: 10 bytes already, so this rotates.
	write(t, f, "3\n")
	want = map[string]string{"app.log": "3\n", "app.log.1": "first\ntwo\n"}
	if got := files(t, dir); !maps.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}

func TestReopenKeepsExistingMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, Options{Path: path})
	write(t, f, "x")
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
}

func TestClose(t *testing.T) {
	f, err := Open(Options{Path: filepath.Join(t.TempDir(), "app.log")})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
}

// A rotation that fails keeps the line, reports the failure once and is
// retried; a rotation that works again ends the episode.
func TestRotationFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := mustOpen(t, Options{Path: path, MaxBytes: 4, MaxFiles: 2})
	write(t, f, "aaaa")
	write(t, f, "bbbb") // .1 = aaaa
	write(t, f, "cccc") // .2 = aaaa, .1 = bbbb
	// PATH.2 cannot be removed to make room: a non-empty directory.
	if err := os.Remove(path + ".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path+".2", "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}

	n, err := f.Write([]byte("dddd"))
	var re *RotateError
	if n != 4 || !errors.As(err, &re) {
		t.Fatalf("first failing rotation: Write = %d, %v; want 4, *RotateError", n, err)
	}
	write(t, f, "eeee") // fails again: counted, not returned
	if count, last := f.RotationFailures(); count != 2 || last == nil {
		t.Errorf("RotationFailures = %d, %v; want 2 and an error", count, last)
	}
	want := map[string]string{"app.log": "ccccddddeeee", "app.log.1": "bbbb"}
	if got := files(t, dir); !maps.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}

	if err := os.RemoveAll(path + ".2"); err != nil {
		t.Fatal(err)
	}
	write(t, f, "ffff") // works again: nothing was lost by the failed attempts
	want = map[string]string{"app.log": "ffff", "app.log.1": "ccccddddeeee", "app.log.2": "bbbb"}
	if got := files(t, dir); !maps.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}

	// A new failure is a new episode: reported again.
	if err := os.Remove(path + ".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path+".2", "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("gggg")); !errors.As(err, &re) {
		t.Errorf("new failure: Write error %v, want *RotateError", err)
	}
	if count, _ := f.RotationFailures(); count != 3 {
		t.Errorf("RotationFailures = %d, want 3", count)
	}
}

// The live file removed by someone else: the next rotation starts a new one
// without shifting the rotated files.
func TestLiveFileRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := mustOpen(t, Options{Path: path, MaxBytes: 4})
	write(t, f, "aaaa")
	write(t, f, "bbbb")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write(t, f, "cccc")
	want := map[string]string{"app.log": "cccc", "app.log.1": "aaaa"}
	if got := files(t, dir); !maps.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}
