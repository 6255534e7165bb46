package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (my (weird) cmd) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 12 0 1000 0 0"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 4 {
		t.Errorf("parseStatCPU = %v, %v; want 4 s", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1")); err == nil {
		t.Error("no error for a short line")
	}
}

func TestParseStatusMem(t *testing.T) {
	rss, hwm, anon := parseStatusMem([]byte("Name:\tsonde\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t   512 kB\nThreads: 9\n"))
	if rss != 1024<<10 || hwm != 2048<<10 || anon != 512<<10 {
		t.Errorf("rss %d hwm %d anon %d", rss, hwm, anon)
	}
}

func TestParseMachineBusy(t *testing.T) {
	got, err := parseMachineBusy([]byte("cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil || got != 1.61 {
		t.Errorf("busy = %v, %v; want 1.61 s", got, err)
	}
}

func TestReadProcSelf(t *testing.T) {
	p, err := readProc(0)
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if p.RSSBytes <= 0 || p.HWMBytes < p.RSSBytes {
		t.Errorf("self: %+v", p)
	}
}

func TestMetricValue(t *testing.T) {
	text := `# HELP prometheus_tsdb_head_series Total number of series in the head block.
# TYPE prometheus_tsdb_head_series gauge
prometheus_tsdb_head_series 12800
prometheus_tsdb_head_series_created_total 12801
prometheus_tsdb_head_samples_appended_total{type="float"} 100
prometheus_tsdb_head_samples_appended_total{type="histogram"} 5
go_memstats_heap_inuse_bytes 1.2345e+07
`
	for _, tc := range []struct {
		name string
		want float64
		ok   bool
	}{
		{"prometheus_tsdb_head_series", 12800, true},
		{"prometheus_tsdb_head_samples_appended_total", 105, true},
		{"go_memstats_heap_inuse_bytes", 12345000, true},
		{"prometheus_tsdb_head", 0, false},
	} {
		if got, ok := metricValue(text, tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("%s = %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIsBlockDir(t *testing.T) {
	for name, want := range map[string]bool{
		"01HZX3Y5R8Q2M4N6P7T9V0W1XA":     true,
		"01HZX3Y5R8Q2M4N6P7T9V0W1XA.tmp": false,
		"wal":                            false,
		"chunks_head":                    false,
		"01HZX3Y5R8Q2M4N6P7T9V0W1XI":     false, // I is not in Crockford's alphabet
	} {
		if got := isBlockDir(name); got != want {
			t.Errorf("isBlockDir(%q) = %v", name, got)
		}
	}
}

func TestDirBytes(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o700)
	os.WriteFile(filepath.Join(dir, "a", "x"), make([]byte, 10), 0o600)
	os.WriteFile(filepath.Join(dir, "a", "b", "y"), make([]byte, 5), 0o600)
	if n, err := dirBytes(dir); err != nil || n != 15 {
		t.Errorf("dirBytes = %d, %v", n, err)
	}
	if n, err := dirBytes(filepath.Join(dir, "missing")); err != nil || n != 0 {
		t.Errorf("missing: %d, %v", n, err)
	}
}

func TestReadProcs(t *testing.T) {
	self, err := readProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, tc := range []struct {
		name string
		pids []int
		ok   bool
	}{
		{"one", []int{os.Getpid()}, true},
		{"summed", []int{os.Getpid(), os.Getpid()}, true},
		{"one unreadable: no partial sum", []int{os.Getpid(), 1 << 30}, false},
		{"no process ID", []int{0}, false},
	} {
		got, err := readProcs(tc.pids)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v", tc.name, err)
			continue
		}
		if tc.ok && got.RSSBytes < int64(len(tc.pids))*self.RSSBytes/2 {
			t.Errorf("%s: RSS %d, one process has %d", tc.name, got.RSSBytes, self.RSSBytes)
		}
	}
}
