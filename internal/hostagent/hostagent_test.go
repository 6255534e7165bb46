package hostagent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// t0 is the fake clock's first reading; the second run is 30 s later.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is an injected clock moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeFS answers statfs for fixture mount points, by mount point: the
// fixtures' mount points do not exist on the test machine.
type fakeFS struct {
	root string
	hang chan struct{} // closed at the end of the test
	mu   sync.Mutex
	// calls counts the statfs calls by mount point.
	calls map[string]int
}

func newFakeFS(t *testing.T, root string) *fakeFS {
	f := &fakeFS{root: root, hang: make(chan struct{}), calls: map[string]int{}}
	t.Cleanup(func() { close(f.hang) })
	return f
}

func (f *fakeFS) statfs(path string) (fsStats, error) {
	mp := "/" + strings.TrimPrefix(strings.TrimPrefix(path, f.root), "/")
	f.mu.Lock()
	f.calls[mp]++
	f.mu.Unlock()
	switch mp {
	case "/mnt/stale nfs":
		<-f.hang // a dead NFS server
		return fsStats{}, &os.PathError{Op: "statfs", Path: path, Err: syscall.EIO}
	case "/mnt/sshfs":
		return fsStats{}, &os.PathError{Op: "statfs", Path: path, Err: syscall.EACCES}
	case "/mnt/btrfs":
		return fsStats{blocks: 1 << 20, bfree: 1 << 19, bavail: 1 << 19, frsize: 4096}, nil
	}
	// Numbers that differ by mount point and stay the same from run to
	// run.
	n := uint64(len(mp))
	return fsStats{
		blocks: 1_000_000 * n, bfree: 400_000 * n, bavail: 350_000 * n,
		files: 65536 * n, ffree: 60000 * n, frsize: 4096,
	}, nil
}

// fixture is a copy of testdata/<machine> in a temporary directory, with
// the checks made on it. next applies testdata/<machine>-next (and removes
// the paths listed in its file "removed") and moves the clock 30 s on.
type fixture struct {
	machine string
	root    string
	clock   *fakeClock
	fs      *fakeFS
	checks  []Check
}

func newFixture(t *testing.T, machine string, opts Options) *fixture {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", machine))); err != nil {
		t.Fatal(err)
	}
	fx := &fixture{machine: machine, root: root, clock: &fakeClock{now: t0}, fs: newFakeFS(t, root)}
	opts.Root = root
	opts.Now = fx.clock.Now
	if opts.FilesystemTimeout == 0 {
		opts.FilesystemTimeout = 250 * time.Millisecond
	}
	if opts.statfs == nil {
		opts.statfs = fx.fs.statfs
	}
	opts.pageSize = 4096
	fx.checks = Checks(opts)
	return fx
}

func (fx *fixture) next(t *testing.T) {
	t.Helper()
	fx.clock.Add(30 * time.Second)
	dir := filepath.Join("testdata", fx.machine+"-next")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "removed" {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if line := strings.TrimSpace(sc.Text()); line != "" {
					if err := os.RemoveAll(filepath.Join(fx.root, line)); err != nil {
						return err
					}
				}
			}
			return nil
		}
		dst := filepath.Join(fx.root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// collectAll runs every check once and returns the results as JSON, each
// check checked to be valid check data for the hub.
func (fx *fixture) collectAll(t *testing.T) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteByte('{')
	for i, c := range fx.checks {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		types, cerr := c.Collect(ctx)
		cancel()
		validate(t, c.Key(), types, cerr)
		if i > 0 {
			out.WriteByte(',')
		}
		key, _ := json.Marshal(c.Key())
		out.Write(key)
		out.WriteByte(':')
		out.Write(encodeResult(types, cerr))
	}
	out.WriteByte('}')
	return out.Bytes()
}

// encodeResult writes a check's result deterministically: the types as the
// hub receives them, and the error.
func encodeResult(types []model.Type, cerr *model.CheckError) []byte {
	var b bytes.Buffer
	b.WriteString(`{"result":`)
	if types == nil {
		b.WriteString("null")
	} else {
		cd := model.CheckData{Types: types}
		b.Write(cd.ResultJSON())
	}
	b.WriteString(`,"error":`)
	if cerr == nil {
		b.WriteString("null")
	} else {
		e, _ := json.Marshal(struct {
			Message  string `json:"message"`
			Severity string `json:"severity"`
		}{cerr.Message, cerr.Severity.String()})
		b.Write(e)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// validate decodes a result as the hub does: a collector must never send
// what the hub rejects (repeated items, a metric changing type, NaN…).
func validate(t *testing.T, key string, types []model.Type, cerr *model.CheckError) {
	t.Helper()
	if types == nil && cerr == nil {
		t.Errorf("%s: neither a result nor an error", key)
		return
	}
	body := map[string]json.RawMessage{}
	if types != nil {
		cd := model.CheckData{Types: types}
		body["data"] = cd.ResultJSON()
	}
	if cerr != nil {
		e, _ := json.Marshal(map[string]string{"message": cerr.Message, "severity": cerr.Severity.String()})
		body["error"] = e
	}
	b, _ := json.Marshal(body)
	if _, err := model.DecodeCheckData(bytes.NewReader(b), model.Limits{}); err != nil {
		t.Errorf("%s: the hub would reject %s: %v", key, b, err)
	}
}

// golden compares got with testdata/golden/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var ind bytes.Buffer
	if err := json.Indent(&ind, got, "", "  "); err != nil {
		t.Fatalf("indenting %s: %v", got, err)
	}
	ind.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, ind.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(ind.Bytes(), want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, ind.Bytes())
	}
}

// TestGolden runs every check twice on each fixture machine, 30 s apart,
// and compares both runs with the golden files: the first run without
// rates, the second with them.
func TestGolden(t *testing.T) {
	for _, machine := range []string{"small", "many-cpus", "odd-mounts", "malformed"} {
		t.Run(machine, func(t *testing.T) {
			fx := newFixture(t, machine, Options{})
			first := fx.collectAll(t)
			fx.next(t)
			second := fx.collectAll(t)
			got := append(append(append(append([]byte(`{"first":`), first...), `,"second":`...), second...), '}')
			golden(t, machine+".json", got)
		})
	}
}

func TestChecksOrder(t *testing.T) {
	var keys []string
	for _, c := range Checks(Options{}) {
		keys = append(keys, c.Key())
	}
	want := "system cpu memory disk filesystem network process"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
}

// TestNeverReadsCmdline puts a secret in the fixtures' cmdline files: the
// checks must not open them, and the secret must appear in no result.
func TestNeverReadsCmdline(t *testing.T) {
	var mu sync.Mutex
	var opened []string
	fx := newFixture(t, "small", Options{opened: func(p string) {
		mu.Lock()
		opened = append(opened, p)
		mu.Unlock()
	}})
	out := fx.collectAll(t)
	fx.next(t)
	out = append(out, fx.collectAll(t)...)
	if bytes.Contains(out, []byte("SECRET")) {
		t.Errorf("a secret of cmdline is in the result: %s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	stats := 0
	for _, p := range opened {
		if strings.HasSuffix(p, "/cmdline") || strings.HasSuffix(p, "/environ") {
			t.Errorf("opened %s", p)
		}
		if strings.HasSuffix(p, "/stat") {
			stats++
		}
	}
	if stats < 8 {
		t.Errorf("only %d stat files opened: the test does not watch the process check", stats)
	}
}

// TestCollectRealRoot is a smoke test on the machine running the tests:
// every check answers, and the hub would accept the answers.
func TestCollectRealRoot(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc here")
	}
	checks := Checks(Options{FilesystemTimeout: 2 * time.Second})
	for run := 0; run < 2; run++ {
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			types, cerr := c.Collect(ctx)
			cancel()
			validate(t, c.Key(), types, cerr)
			if cerr != nil && cerr.Severity == model.SeverityHigh {
				t.Errorf("%s: %s", c.Key(), cerr.Message)
			}
		}
	}
}
