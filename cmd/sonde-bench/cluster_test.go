package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIngestFlagsCluster(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		err     string // "": valid; else a part of the usage error
		cluster bool
	}{
		{args: nil},
		{args: []string{"--hubs", "1"}},
		{args: []string{"--state-postgres"}, cluster: true},
		{args: []string{"--tsdb", "victoria-metrics"}, cluster: true},
		{args: []string{"--tsdb", "prometheus", "--state-postgres"}, cluster: true},
		{args: []string{"--hubs", "2", "--state-postgres", "--tsdb", "victoria-metrics"}, cluster: true},
		{args: []string{"--hubs", "8", "--state-postgres", "--tsdb", "prometheus"}, cluster: true},
		{args: []string{"--hubs", "2"}, err: "several hubs share one state store and one TSDB"},
		{args: []string{"--hubs", "2", "--state-postgres"}, err: "--hubs 2 needs --state-postgres and --tsdb"},
		{args: []string{"--hubs", "3", "--tsdb", "victoria-metrics"}, err: "needs --state-postgres and --tsdb"},
		{args: []string{"--hubs", "0"}, err: "--hubs must be between 1 and 8"},
		{args: []string{"--hubs", "9", "--state-postgres", "--tsdb", "prometheus"}, err: "--hubs must be between 1 and 8"},
		{args: []string{"--tsdb", "influxdb"}, err: "--tsdb must be victoria-metrics or prometheus"},
		{args: []string{"--state-postgres", "--hub", "https://127.0.0.1:8443"}, err: "--hub loads running ones"},
		{args: []string{"--tsdb", "prometheus", "--in-process"}, err: "in-process hub"},
		{args: []string{"--state-postgres", "--cpuprofile", "cpu.out"}, err: "in-process hub"},
		// --spawn-prometheus, the comparison, goes with a spawned TSDB.
		{args: []string{"--tsdb", "prometheus", "--spawn-prometheus"}, cluster: true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, err := parseIngestFlags(tc.args, io.Discard)
			if tc.err != "" {
				if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want a usage error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.spawnsCluster() != tc.cluster {
				t.Errorf("spawnsCluster %v, want %v", f.spawnsCluster(), tc.cluster)
			}
		})
	}
}

func TestHubArgs(t *testing.T) {
	const pg = "postgres://postgres@127.0.0.1:5555/sonde_bench?sslmode=disable"
	base := []string{"hub", "--data", "/w/hub-data", "--listen", "127.0.0.1:1000", "--stream-listen", "",
		"--api-rate", "0", "--log-level", "warn"}
	for _, tc := range []struct {
		name string
		b    hubBackends
		want []string // after base
	}{
		{name: "SQLite, embedded TSDB: as before the cluster flags"},
		{name: "PostgreSQL", b: hubBackends{state: pg}, want: []string{"--state", pg}},
		{name: "PostgreSQL and a remote TSDB",
			b: hubBackends{state: pg, tsdbWrite: "http://127.0.0.1:2000/api/v1/write", tsdbQuery: "http://127.0.0.1:2000", maxSampleAge: 26 * time.Hour},
			want: []string{"--state", pg, "--tsdb-remote-write", "http://127.0.0.1:2000/api/v1/write", "--tsdb-query", "http://127.0.0.1:2000",
				"--tsdb-max-sample-age", "26h0m0s"}},
		{name: "remote TSDB, the hub's default age",
			b:    hubBackends{tsdbWrite: "http://127.0.0.1:2000/api/v1/write", tsdbQuery: "http://127.0.0.1:2000"},
			want: []string{"--tsdb-remote-write", "http://127.0.0.1:2000/api/v1/write", "--tsdb-query", "http://127.0.0.1:2000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hubArgs("/w/hub-data", "127.0.0.1:1000", "", tc.b)
			if want := append(slices.Clone(base), tc.want...); !slices.Equal(got, want) {
				t.Errorf("hubArgs\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestHubPaths(t *testing.T) {
	for _, tc := range []struct {
		i, n                int
		name, data, logPath string
	}{
		{0, 1, "the hub", "/w/hub-data", "/w/hub.log"},
		{0, 2, "hub 1", "/w/hub-data", "/w/hub.log"},
		{1, 2, "hub 2", "/w/hub2-data", "/w/hub2.log"},
		{7, 8, "hub 8", "/w/hub8-data", "/w/hub8.log"},
	} {
		name, data, logPath := hubPaths("/w", tc.i, tc.n)
		if name != tc.name || data != tc.data || logPath != tc.logPath {
			t.Errorf("hubPaths(%d, %d) = %q %q %q", tc.i, tc.n, name, data, logPath)
		}
	}
}

func TestClusterName(t *testing.T) {
	for _, tc := range []struct {
		hubs  int
		parts []string
		want  string
	}{
		{1, nil, "sonde hub"},
		{1, []string{"PostgreSQL"}, "sonde hub (PostgreSQL)"},
		{1, []string{"PostgreSQL", "VictoriaMetrics"}, "sonde hub (PostgreSQL, VictoriaMetrics)"},
		{2, []string{"PostgreSQL", "VictoriaMetrics"}, "2 sonde hubs (PostgreSQL, VictoriaMetrics)"},
		{3, []string{"PostgreSQL", "Prometheus"}, "3 sonde hubs (PostgreSQL, Prometheus)"},
	} {
		if got := clusterName(tc.hubs, tc.parts); got != tc.want {
			t.Errorf("clusterName(%d, %q) = %q, want %q", tc.hubs, tc.parts, got, tc.want)
		}
	}
}

func TestJoinHubs(t *testing.T) {
	one := &server{base: "https://127.0.0.1:1", pid: 11, tsdbDir: "/w/hub-data/tsdb", token: "tok", version: "v1"}
	two := &server{base: "https://127.0.0.1:2", pid: 22}
	for _, tc := range []struct {
		name    string
		hubs    []*server
		bases   []string
		procs   []int
		tsdbDir string
	}{
		{"one hub: its process and TSDB", []*server{one}, []string{one.base}, []int{11}, one.tsdbDir},
		{"two hubs: both processes, no TSDB of its own", []*server{one, two}, []string{one.base, two.base}, []int{11, 22}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := joinHubs(tc.hubs, []string{"PostgreSQL"}, nil)
			if !slices.Equal(s.allBases(), tc.bases) || !slices.Equal(s.processes(), tc.procs) || s.tsdbDir != tc.tsdbDir {
				t.Errorf("bases %q processes %v tsdbDir %q", s.allBases(), s.processes(), s.tsdbDir)
			}
			if s.base != one.base || s.token != "tok" || s.version != "v1" {
				t.Errorf("base %q token %q version %q: not the first hub's", s.base, s.token, s.version)
			}
		})
	}
}

func TestRemoteMaxSampleAge(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		start time.Time
		run   time.Duration
		want  time.Duration
	}{
		// --span 24h moved back to a block boundary: 25h30m before now.
		{"default span", time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), 30 * time.Second, 27 * time.Hour},
		{"an hour's run", time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), time.Hour, 28 * time.Hour},
		{"a short span", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), 15 * time.Second, 2 * time.Hour},
	} {
		if got := remoteMaxSampleAge(now, tc.start.Unix(), tc.run); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestPostgresCommand(t *testing.T) {
	for _, tc := range []struct {
		root  bool
		hubs  int
		name  string
		args  []string
		extra []string
	}{
		{false, 1, "/pg/bin/postgres", nil, nil},
		{true, 1, "runuser", []string{"-u", "postgres", "--", "/pg/bin/postgres"}, nil},
		{false, 4, "/pg/bin/postgres", nil, nil},
		{false, 8, "/pg/bin/postgres", nil, []string{"-c", "max_connections=170"}},
	} {
		name, args := asPostgresUser(tc.root, "/pg/bin/postgres", postgresArgs("/w/postgres/data", "/w/postgres", 5555, tc.hubs)...)
		want := append(tc.args, "-D", "/w/postgres/data", "-p", "5555", "-k", "/w/postgres", "-c", "listen_addresses=127.0.0.1")
		want = append(want, tc.extra...)
		if name != tc.name || !slices.Equal(args, want) {
			t.Errorf("root %v, %d hubs: %s %q\nwant %s %q", tc.root, tc.hubs, name, args, tc.name, want)
		}
	}
}

func TestTSDBArgs(t *testing.T) {
	for _, tc := range []struct {
		age           time.Duration
		retention     string
		prometheusOOO string
	}{
		{26 * time.Hour, "-retentionPeriod=31d", "out_of_order_time_window: 26h\n"},
		{90*time.Minute + 1, "-retentionPeriod=31d", "out_of_order_time_window: 2h\n"},
		{60 * 24 * time.Hour, "-retentionPeriod=61d", "out_of_order_time_window: 1440h\n"},
	} {
		args := victoriaMetricsArgs("/w/tsdb/vm", "127.0.0.1:7000", tc.age)
		want := []string{"-storageDataPath=/w/tsdb/vm", "-httpListenAddr=127.0.0.1:7000", tc.retention}
		if !slices.Equal(args, want) {
			t.Errorf("%s: victoriaMetricsArgs %q, want %q", tc.age, args, want)
		}
		if cfg := prometheusConfig(tc.age); !strings.HasPrefix(cfg, promConfig) || !strings.HasSuffix(cfg, "storage:\n  tsdb:\n    "+tc.prometheusOOO) {
			t.Errorf("%s: prometheusConfig\n%s", tc.age, cfg)
		}
	}
	if cfg := prometheusConfig(0); cfg != promConfig {
		t.Errorf("no window: %q", cfg)
	}
}

func TestCopySharedSecrets(t *testing.T) {
	from, to := t.TempDir(), filepath.Join(t.TempDir(), "hub2-data")
	for _, rel := range sharedSecrets {
		p := filepath.Join(from, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+rel), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := copySharedSecrets(from, to); err != nil {
		t.Fatal(err)
	}
	for _, rel := range append(slices.Clone(sharedSecrets), ".", "tls") {
		fi, err := os.Stat(filepath.Join(to, rel))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		} else if b, _ := os.ReadFile(filepath.Join(to, rel)); string(b) != "content of "+rel {
			t.Errorf("%s: %q", rel, b)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode().Perm(), want)
		}
	}
	if err := copySharedSecrets(t.TempDir(), filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("no error without the first hub's files")
	}
}
