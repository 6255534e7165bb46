package hostagent

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// addFixtures seeds a fuzz target with a file of every fixture machine.
func addFixtures(f *testing.F, rel string) {
	f.Helper()
	dirs, _ := filepath.Glob(filepath.Join("testdata", "*", rel))
	for _, p := range dirs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	addFixtures(f, "proc/stat")
	f.Add([]byte("cpu 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\nbtime 5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s procStat
		err := parseStat(b, &s)
		if err == nil && !s.hasTotal {
			t.Error("no error without a total line")
		}
		seen := map[int]bool{}
		for _, c := range s.cpus {
			if c.cpu < 0 || c.cpu >= maxCPU || seen[c.cpu] {
				t.Errorf("cpu %d out of range or repeated", c.cpu)
			}
			seen[c.cpu] = true
		}
		if s.bootTime < 0 || s.procsRunning < 0 || s.procsBlocked < 0 {
			t.Errorf("negative value: %+v", s)
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	addFixtures(f, "proc/meminfo")
	f.Fuzz(func(t *testing.T, b []byte) {
		mi, err := parseMeminfo(b)
		if err == nil && mi.has&hasMemTotal == 0 {
			t.Error("no error without MemTotal")
		}
		for _, v := range []uint64{mi.total, mi.free, mi.available, mi.buffers, mi.cached, mi.swapTotal, mi.swapFree} {
			if v > math.MaxInt64 {
				t.Errorf("%d beyond int64", v)
			}
		}
	})
}

func FuzzParseDiskstats(f *testing.F) {
	addFixtures(f, "proc/diskstats")
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, _ := parseDiskstats(b, nil)
		for _, d := range lines {
			if len(d.name) == 0 || len(d.name) > maxItemName {
				t.Errorf("device name %q", d.name)
			}
		}
	})
}

func FuzzParseNetDev(f *testing.F) {
	addFixtures(f, "proc/net/dev")
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, _ := parseNetDev(b, nil)
		for _, d := range lines {
			if !validInterfaceName(d.name) {
				t.Errorf("interface name %q", d.name)
			}
		}
	})
}

func FuzzParseLoadavg(f *testing.F) {
	addFixtures(f, "proc/loadavg")
	addFixtures(f, "proc/uptime")
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseLoadavg(b)
		for _, v := range []float64{l.load1, l.load5, l.load15} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Errorf("load %v", v)
			}
		}
		if err != nil && l != (loadavg{}) {
			t.Errorf("error %v with values %+v", err, l)
		}
		if l.running < 0 || l.tasks < 0 {
			t.Errorf("negative task count %+v", l)
		}
		up, _ := parseUptime(b)
		if math.IsNaN(up) || math.IsInf(up, 0) || up < 0 {
			t.Errorf("uptime %v", up)
		}
	})
}

func FuzzParseMounts(f *testing.F) {
	addFixtures(f, "proc/self/mounts")
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, _ := parseMounts(b, nil)
		for _, m := range mounts {
			if len(m.mountPoint) == 0 || m.mountPoint[0] != '/' {
				t.Errorf("mount point %q", m.mountPoint)
			}
		}
	})
}

func FuzzParsePidStat(f *testing.F) {
	addFixtures(f, "proc/1/stat")
	addFixtures(f, "proc/100/stat")
	addFixtures(f, "proc/4/stat")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parsePidStat(b)
		if err == nil && s.start > 0 && len(s.comm) > len(b) {
			t.Errorf("name longer than the line: %+v", s)
		}
		_, _ = parseStatusUID(b)
		lookupUsers(b, map[int64]string{0: "", 1000: ""})
	})
}

func FuzzParseUtmp(f *testing.F) {
	addFixtures(f, "run/utmp")
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _ := parseUtmp(b)
		if n < 0 || n > int64(len(b)/utmpRecordSize) {
			t.Errorf("%d sessions in %d bytes", n, len(b))
		}
	})
}

// FuzzCollect writes fuzzed /proc files, collects twice (the second time
// with the files of the second input) and checks that the hub would accept
// every result: whatever the kernel says, the agent sends valid data.
func FuzzCollect(f *testing.F) {
	files := []string{"proc/stat", "proc/meminfo", "proc/diskstats", "proc/net/dev", "proc/self/mounts", "proc/loadavg", "proc/1/stat"}
	read := func(machine, rel string) []byte {
		b, _ := os.ReadFile(filepath.Join("testdata", machine, rel))
		return b
	}
	for _, m := range []string{"small", "malformed", "many-cpus"} {
		for _, rel := range files {
			next := read(m+"-next", rel)
			if next == nil {
				next = read(m, rel)
			}
			f.Add(uint8(len(rel)), read(m, rel), next)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, first, second []byte) {
		rel := files[int(which)%len(files)]
		root := t.TempDir()
		clock := &fakeClock{now: t0}
		fs := newFakeFS(t, root)
		checks := Checks(Options{Root: root, Now: clock.Now, statfs: fs.statfs, FilesystemTimeout: time.Second, pageSize: 4096})
		for _, content := range [][]byte{first, second} {
			p := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, content, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				types, cerr := c.Collect(context.Background())
				validate(t, c.Key(), types, cerr)
			}
			clock.Add(30 * time.Second)
		}
	})
}
