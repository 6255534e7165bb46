package hostagent

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

func TestParseMounts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []mountLine
		wantErr string
	}{
		{
			name: "plain",
			in:   "/dev/sda1 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n",
			want: []mountLine{
				{device: "/dev/sda1", mountPoint: "/", fsType: "ext4"},
				{device: "proc", mountPoint: "/proc", fsType: "proc"},
			},
		},
		{
			name: "escapes",
			in:   `/dev/sdb1 /mnt/a\040b\011c\012d\134e ext4 ro,noatime 0 0`,
			want: []mountLine{{device: "/dev/sdb1", mountPoint: "/mnt/a b\tc\nd\\e", fsType: "ext4", readOnly: true}},
		},
		{
			name: "bad escapes kept",
			in:   `dev /mnt/x\9\04\ ext4 rw 0 0`,
			want: []mountLine{{device: "dev", mountPoint: `/mnt/x\9\04\`, fsType: "ext4"}},
		},
		{
			name: "ro only as a whole option",
			in:   "dev /a ext4 rw,errors=ro,root 0 0\ndev /b ext4 noatime,ro 0 0",
			want: []mountLine{
				{device: "dev", mountPoint: "/a", fsType: "ext4"},
				{device: "dev", mountPoint: "/b", fsType: "ext4", readOnly: true},
			},
		},
		{
			name:    "short and relative lines skipped",
			in:      "/dev/sda1\n\nnone relative ext4 rw 0 0\n/dev/sda1 / ext4 rw 0 0",
			want:    []mountLine{{device: "/dev/sda1", mountPoint: "/", fsType: "ext4"}},
			wantErr: "want at least 4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMounts([]byte(tt.in), nil)
			checkErr(t, err, tt.wantErr)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// checkErr checks that err holds want, or is nil when want is empty.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one holding %q", err, want)
	}
}

func TestSkipMount(t *testing.T) {
	tests := []struct {
		mountPoint, fsType string
		skip               bool
	}{
		{"/", "ext4", false},
		{"/", "overlay", false},
		{"/var/lib/docker/overlay2/x/merged", "overlay", true},
		{"/var/lib/docker", "ext4", false},
		{"/var/lib/docker/volumes", "ext4", true},
		{"/var/lib/kubelet/pods/x/volumes/y", "tmpfs", true},
		{"/run", "tmpfs", false},
		{"/run/user/1000", "tmpfs", false},
		{"/run/credentials/a.service", "ramfs", true},
		{"/dev", "devtmpfs", true},
		{"/dev/shm", "tmpfs", true},
		{"/devices", "ext4", false},
		{"/sys/fs/cgroup", "cgroup2", true},
		{"/proc/sys/fs/binfmt_misc", "binfmt_misc", true},
		{"/snap/core/1", "squashfs", true},
		{"/mnt/nfs", "nfs4", false},
		{"/media/cdrom", "iso9660", true},
	}
	for _, tt := range tests {
		m := mountLine{mountPoint: tt.mountPoint, fsType: tt.fsType}
		if got := skipMount(&m); got != tt.skip {
			t.Errorf("skipMount(%s %s) = %v, want %v", tt.mountPoint, tt.fsType, got, tt.skip)
		}
	}
}

func TestFsUsage(t *testing.T) {
	tests := []struct {
		name    string
		st      fsStats
		want    []string
		wantErr string
	}{
		{"usual", fsStats{blocks: 100, bfree: 30, bavail: 20, files: 10, ffree: 4, frsize: 1024},
			[]string{"size=102400", "used=71680", "available=20480", "percentUsed=77.77777777777779", "inodes=10", "inodesUsed=6", "percentInodesUsed=60"}, ""},
		{"no inodes", fsStats{blocks: 100, bfree: 100, bavail: 100, frsize: 4096},
			[]string{"size=409600", "used=0", "available=409600", "percentUsed=0"}, ""},
		{"empty", fsStats{}, []string{"size=0", "used=0", "available=0"}, ""},
		{"more free than total", fsStats{blocks: 10, bfree: 11}, nil, "more free"},
		{"huge", fsStats{blocks: 1 << 62, frsize: 4096}, nil, "beyond 8 EiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m metrics
			checkErr(t, m.fsUsage(&tt.st), tt.wantErr)
			if got := metricStrings(m); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// metricStrings shows metrics as name=value.
func metricStrings(m []model.Metric) []string {
	var out []string
	for _, x := range m {
		out = append(out, x.Name+"="+strings.TrimSuffix(string(x.Value.AppendJSON(nil)), ".0"))
	}
	return out
}

// hangingFS hangs the first statfs of one mount point until released, and
// counts the calls.
type hangingFS struct {
	hangOn  string
	release chan struct{}
	mu      sync.Mutex
	calls   map[string]int
}

func (h *hangingFS) statfs(path string) (fsStats, error) {
	h.mu.Lock()
	h.calls[path]++
	n := h.calls[path]
	h.mu.Unlock()
	if strings.HasSuffix(path, h.hangOn) && n == 1 {
		<-h.release
		return fsStats{}, &os.PathError{Op: "statfs", Path: path, Err: syscall.EIO}
	}
	return fsStats{blocks: 10, bfree: 5, bavail: 5, frsize: 4096}, nil
}

func (h *hangingFS) count(suffix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for p, c := range h.calls {
		if strings.HasSuffix(p, suffix) {
			n += c
		}
	}
	return n
}

// TestFilesystemHungMount: a hung mount is reported as an error while the
// others are reported; while its statfs stays hung no other is started;
// once it returns the mount is asked again.
func TestFilesystemHungMount(t *testing.T) {
	h := &hangingFS{hangOn: "/mnt/stale nfs", release: make(chan struct{}), calls: map[string]int{}}
	released := false
	defer func() {
		if !released {
			close(h.release)
		}
	}()
	fx := newFixture(t, "odd-mounts", Options{FilesystemTimeout: 250 * time.Millisecond, statfs: h.statfs})
	fc := fx.checks[4].(*filesystemCollector)

	itemError := func(types []model.Type, mp string) string {
		for _, it := range types[0].Items {
			if it.Name == mp {
				for _, m := range it.Metrics {
					if m.Name == "error" {
						return m.Value.Str
					}
				}
				return ""
			}
		}
		t.Fatalf("no item %s", mp)
		return ""
	}
	for run, want := range []string{"statfs timed out after 250ms", "statfs still hung since an earlier run", "statfs still hung since an earlier run"} {
		start := time.Now()
		types, cerr := fc.Collect(context.Background())
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("run %d took %s", run, d)
		}
		if got := itemError(types, "/mnt/stale nfs"); got != want {
			t.Errorf("run %d: stale mount error %q, want %q", run, got, want)
		}
		if got := itemError(types, "/mnt/nfs"); got != "" {
			t.Errorf("run %d: healthy mount error %q", run, got)
		}
		if cerr == nil || cerr.Severity != model.SeverityMedium || !strings.Contains(cerr.Message, "/mnt/stale nfs") {
			t.Errorf("run %d: error %+v, want a MEDIUM one naming the mount", run, cerr)
		}
		if n := h.count("/mnt/stale nfs"); n != 1 {
			t.Errorf("run %d: %d statfs calls of the hung mount, want 1", run, n)
		}
	}

	// The server comes back: the hung call returns, and the next run asks
	// again.
	fc.mu.Lock()
	call := fc.hung["/mnt/stale nfs"]
	fc.mu.Unlock()
	if call == nil {
		t.Fatal("the hung call is not tracked")
	}
	close(h.release)
	released = true
	select {
	case <-call.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the released statfs did not return")
	}
	types, _ := fc.Collect(context.Background())
	if got := itemError(types, "/mnt/stale nfs"); got != "" {
		t.Errorf("after release: error %q", got)
	}
	if n := h.count("/mnt/stale nfs"); n != 2 {
		t.Errorf("after release: %d statfs calls, want 2", n)
	}
	if len(fc.hung) != 0 {
		t.Errorf("still tracked as hung: %v", fc.hung)
	}
}

// TestFilesystemStopped: a cancelled context ends the wait for a hung
// mount before its timeout.
func TestFilesystemStopped(t *testing.T) {
	h := &hangingFS{hangOn: "/mnt/stale nfs", release: make(chan struct{}), calls: map[string]int{}}
	defer close(h.release)
	fx := newFixture(t, "odd-mounts", Options{FilesystemTimeout: time.Hour, statfs: h.statfs})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	types, cerr := fx.checks[4].Collect(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
	if cerr == nil || !strings.Contains(cerr.Message, "before the check was stopped") {
		t.Errorf("error %+v", cerr)
	}
	if len(types) != 1 || len(types[0].Items) < 5 {
		t.Errorf("the other mounts are not reported: %+v", types)
	}
}

func TestVisibleMounts(t *testing.T) {
	long := "/" + strings.Repeat("d", maxItemName)
	tests := []struct {
		name    string
		mounts  []mountLine
		want    []string // name fsType
		wantErr string
	}{
		{
			name: "mounted over: the last one, at the first place",
			mounts: []mountLine{
				{mountPoint: "/", fsType: "ext4"}, {mountPoint: "/mnt", fsType: "ext4"},
				{mountPoint: "/home", fsType: "xfs"}, {mountPoint: "/mnt", fsType: "tmpfs"},
			},
			want: []string{"/ ext4", "/mnt tmpfs", "/home xfs"},
		},
		{
			name: "mounted over by a skipped type",
			mounts: []mountLine{
				{mountPoint: "/", fsType: "ext4"}, {mountPoint: "/media", fsType: "ext4"}, {mountPoint: "/media", fsType: "iso9660"},
			},
			want: []string{"/ ext4"},
		},
		{
			name: "names that are not UTF-8",
			mounts: []mountLine{
				{mountPoint: "/mnt/caf\xe9", fsType: "ext4"}, {mountPoint: "/mnt/caf\xe8", fsType: "xfs"}, {mountPoint: "/mnt/café", fsType: "ext4"},
			},
			want: []string{"/mnt/caf\uFFFD xfs", "/mnt/café ext4"},
		},
		{
			name:    "too long",
			mounts:  []mountLine{{mountPoint: long, fsType: "ext4"}, {mountPoint: "/", fsType: "ext4"}},
			want:    []string{"/ ext4"},
			wantErr: "too long",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &filesystemCollector{mounts: tt.mounts}
			var p problems
			var got []string
			for _, m := range c.visibleMounts(&p) {
				got = append(got, m.name+" "+m.fsType)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			var err error
			if ce := p.checkError(); ce != nil {
				err = errors.New(ce.Message)
			}
			checkErr(t, err, tt.wantErr)
		})
	}
}
