package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to create the benchmark's database

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/tlsca"
)

// The TSDBs --tsdb spawns.
const (
	tsdbVictoriaMetrics = "victoria-metrics"
	tsdbPrometheus      = "prometheus"
)

// defaultVictoriaMetrics is where Debian's victoria-metrics package puts
// the server.
const defaultVictoriaMetrics = "/usr/bin/victoria-metrics"

// maxHubs bounds --hubs: each hub keeps about hubConnections connections
// to PostgreSQL, and a benchmark machine runs them all.
const maxHubs = 8

// hubConnections is how many PostgreSQL connections a hub may hold: its
// state store's pool (16) and the cluster's (4).
const hubConnections = 20

// benchDatabase is the database the spawned hubs share.
const benchDatabase = "sonde_bench"

// spawnCluster spawns what --hubs, --state-postgres and --tsdb ask for:
// PostgreSQL, then the TSDB, then the first hub alone (it makes the CA,
// the secret key and the admin token), then the others with the first
// one's CA and secret key. The server it returns stops them all, the hubs
// first (they flush their queues to the TSDB). On an error it stops what
// it started.
func spawnCluster(ctx context.Context, f *ingestFlags, work string, logf func(string, ...any)) (*server, error) {
	if _, err := os.Stat(f.sonde); err != nil { // #nosec G703 -- the operator's --sonde binary
		return nil, fmt.Errorf("no sonde binary at %s (build it: make build, or give --sonde): %w", f.sonde, err)
	}
	var backends []func() error // PostgreSQL, the TSDB: stopped in reverse
	stopBackends := func() error {
		var errs []error
		for i := len(backends) - 1; i >= 0; i-- {
			errs = append(errs, backends[i]())
		}
		return errors.Join(errs...)
	}
	var b hubBackends
	var parts []string
	if f.statePostgres {
		logf("starting PostgreSQL")
		url, stop, err := spawnPostgres(ctx, work, f.hubs)
		if err != nil {
			return nil, err
		}
		backends = append(backends, stop)
		b.state = url
		parts = append(parts, "PostgreSQL")
	}
	if f.tsdb != "" {
		b.maxSampleAge = remoteMaxSampleAge(time.Now(), f.shape.Start, f.duration)
		logf("starting %s (samples up to %s old)", tsdbTitle(f.tsdb), b.maxSampleAge)
		ts, err := spawnTSDB(ctx, f.tsdb, filepath.Join(work, "tsdb"), b.maxSampleAge)
		if err != nil {
			return nil, errors.Join(err, stopBackends())
		}
		backends = append(backends, ts.stop)
		b.tsdbWrite, b.tsdbQuery = ts.base+"/api/v1/write", ts.base
		parts = append(parts, tsdbTitle(f.tsdb))
	}
	var hubs []*server
	stopHubs := func() error {
		errs := make([]error, len(hubs))
		var wg sync.WaitGroup
		for i, h := range hubs {
			wg.Go(func() { errs[i] = h.stop() })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	for i := range f.hubs {
		name, data, logPath := hubPaths(work, i, f.hubs)
		var tlsConf *tls.Config
		token := ""
		if i > 0 {
			_, firstData, _ := hubPaths(work, 0, f.hubs)
			if err := copySharedSecrets(firstData, data); err != nil {
				return nil, errors.Join(fmt.Errorf("giving %s the first hub's CA and secret key: %w", name, err), stopHubs(), stopBackends())
			}
			tlsConf, token = hubs[0].tlsConf, hubs[0].token
		}
		logf("starting %s", name)
		h, err := startHub(ctx, f.sonde, name, data, logPath, "", b, tlsConf, token)
		if err != nil {
			return nil, errors.Join(err, stopHubs(), stopBackends())
		}
		hubs = append(hubs, h)
	}
	return joinHubs(hubs, parts, func() error { return errors.Join(stopHubs(), stopBackends()) }), nil
}

// joinHubs is the one server the load sees: the hubs share the agents,
// their CPU and memory are summed.
func joinHubs(hubs []*server, parts []string, stop func() error) *server {
	first := hubs[0]
	s := &server{name: clusterName(len(hubs), parts), base: first.base, tlsConf: first.tlsConf, token: first.token,
		version: first.version, pid: first.pid, tsdbDir: first.tsdbDir, stop: stop}
	if len(hubs) > 1 {
		s.pid, s.tsdbDir = 0, ""
		for _, h := range hubs {
			s.bases = append(s.bases, h.base)
			s.pids = append(s.pids, h.pid)
		}
	}
	return s
}

// clusterName names the target in the report: "2 sonde hubs (PostgreSQL,
// VictoriaMetrics)".
func clusterName(hubs int, parts []string) string {
	name := "sonde hub"
	if hubs > 1 {
		name = fmt.Sprintf("%d sonde hubs", hubs)
	}
	if len(parts) > 0 {
		name += " (" + strings.Join(parts, ", ") + ")"
	}
	return name
}

// hubPaths are the name, data directory and log of hub i of n in work;
// the first keeps the names of the single spawned hub.
func hubPaths(work string, i, n int) (name, data, logPath string) {
	if i == 0 {
		name = "the hub"
		if n > 1 {
			name = "hub 1"
		}
		return name, filepath.Join(work, "hub-data"), filepath.Join(work, "hub.log")
	}
	k := strconv.Itoa(i + 1)
	return "hub " + k, filepath.Join(work, "hub"+k+"-data"), filepath.Join(work, "hub"+k+".log")
}

// sharedSecrets are the files every hub of one installation holds the same
// (docs/SCALING.md): the CA that issues and verifies appliance
// certificates, and the key that seals secrets in the state store.
var sharedSecrets = []string{
	filepath.Join("tls", tlsca.CACertFile),
	filepath.Join("tls", tlsca.CAKeyFile),
	hub.SecretKeyFile,
}

// copySharedSecrets copies the sharedSecrets of data directory from into
// the new data directory to (directories 0700, files 0600).
func copySharedSecrets(from, to string) error {
	for _, rel := range sharedSecrets {
		b, err := os.ReadFile(filepath.Join(from, rel)) // #nosec G304 -- a file of a hub sonde-bench spawned
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil { // #nosec G703 -- a fixed file name in the data directory of a hub sonde-bench spawned
			return err
		}
	}
	return nil
}

// remoteMaxSampleAge is the --tsdb-max-sample-age of hubs on a remote
// TSDB, and the TSDB's out-of-order window: the oldest sample of the load
// starts at start (Unix seconds) and is sent within the run, so an hour
// more than its age at the end of the run, in whole hours.
func remoteMaxSampleAge(now time.Time, start int64, run time.Duration) time.Duration {
	age := now.Sub(time.Unix(start, 0)) + run + time.Hour
	return (age + time.Hour - 1).Truncate(time.Hour)
}

func tsdbTitle(kind string) string {
	if kind == tsdbVictoriaMetrics {
		return "VictoriaMetrics"
	}
	return "Prometheus"
}

// spawnTSDB runs the TSDB kind with its data, configuration and log in
// dir, on plain HTTP on a free local port, taking samples up to maxAge old.
func spawnTSDB(ctx context.Context, kind, dir string, maxAge time.Duration) (*server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the TSDB's directory: %w", err)
	}
	if kind == tsdbPrometheus {
		return spawnPrometheus(ctx, "", dir, true, maxAge)
	}
	return spawnVictoriaMetrics(ctx, dir, maxAge)
}

// spawnVictoriaMetrics runs Debian's single-node VictoriaMetrics. Its
// retention covers maxAge: it drops samples older than its retention.
func spawnVictoriaMetrics(ctx context.Context, dir string, maxAge time.Duration) (*server, error) {
	bin, err := exec.LookPath("victoria-metrics")
	if err != nil {
		bin = defaultVictoriaMetrics
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no VictoriaMetrics at %s (on Debian: apt-get install victoria-metrics): %w", bin, err)
	}
	port, err := freeLocalPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := startChild("VictoriaMetrics", bin, victoriaMetricsArgs(filepath.Join(dir, "victoria-metrics-data"), addr, maxAge),
		filepath.Join(dir, "victoria-metrics.log"))
	if err != nil {
		return nil, err
	}
	s := &server{name: "VictoriaMetrics", base: "http://" + addr, pid: c.pid(), tlsConf: &tls.Config{MinVersion: tls.VersionTLS12},
		stop: func() error { return c.stop(time.Minute) }}
	client := newClient(s.tlsConf, true, 2*time.Second)
	if err := c.waitReady(ctx, time.Minute, func(ctx context.Context) error {
		return getOK(ctx, client, s.base+"/health")
	}); err != nil {
		return nil, errors.Join(err, c.stop(10*time.Second))
	}
	return s, nil
}

// victoriaMetricsArgs is VictoriaMetrics' command line: its retention in
// days covers maxAge, and at least its default month.
func victoriaMetricsArgs(data, addr string, maxAge time.Duration) []string {
	days := max(31, int((maxAge+24*time.Hour-1)/(24*time.Hour))+1)
	return []string{"-storageDataPath=" + data, "-httpListenAddr=" + addr, "-retentionPeriod=" + strconv.Itoa(days) + "d"}
}

// postgresBinDir finds Debian's PostgreSQL binaries, the newest version.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("no PostgreSQL server under /usr/lib/postgresql/*/bin (on Debian: apt-get install postgresql)")
}

// asPostgresUser returns the command that runs bin with args: as the
// postgres user through runuser when sonde-bench runs as root, since
// initdb and postgres refuse to run as root.
func asPostgresUser(root bool, bin string, args ...string) (string, []string) {
	if !root {
		return bin, args
	}
	return "runuser", append([]string{"-u", "postgres", "--", bin}, args...)
}

// postgresArgs is the server's command line: loopback only, its socket in
// sockDir, and PostgreSQL's own defaults otherwise (durability included:
// the benchmark measures the real thing), but for enough connections for
// every hub's pools.
func postgresArgs(data, sockDir string, port, hubs int) []string {
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", sockDir, "-c", "listen_addresses=127.0.0.1"}
	if need := hubs*hubConnections + 10; need > 100 { // 100: PostgreSQL's default max_connections
		args = append(args, "-c", "max_connections="+strconv.Itoa(need))
	}
	return args
}

func postgresURL(port int, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

// spawnPostgres initdb's a PostgreSQL cluster in work/postgres, runs the
// server on a free local port and creates the benchmark's database. It
// returns the database's URL and the function that stops the server.
func spawnPostgres(ctx context.Context, work string, hubs int) (string, func() error, error) {
	binDir, err := postgresBinDir()
	if err != nil {
		return "", nil, err
	}
	root := os.Geteuid() == 0
	dir := filepath.Join(work, "postgres")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("creating PostgreSQL's directory: %w", err)
	}
	if root {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", nil, fmt.Errorf("running PostgreSQL as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", nil, fmt.Errorf("giving PostgreSQL its directory: %w", err)
		}
		// The postgres user must pass through the work directory to its
		// own; the files in it keep their own modes.
		if err := os.Chmod(work, 0o711); err != nil { // #nosec G302 -- search only, no listing, for the postgres user
			return "", nil, fmt.Errorf("letting PostgreSQL reach its directory: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	name, args := asPostgresUser(root, filepath.Join(binDir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	cmd := exec.CommandContext(ctx, name, args...) // #nosec G204 -- Debian's initdb, arguments sonde-bench builds
	// On Ctrl-C, initdb too, not only runuser.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if werr := os.WriteFile(filepath.Join(work, "initdb.log"), out, 0o600); werr != nil {
		err = errors.Join(err, werr)
	}
	switch {
	case ctx.Err() != nil:
		return "", nil, fmt.Errorf("initdb: %w", ctx.Err())
	case err != nil:
		return "", nil, fmt.Errorf("initdb: %w\n%s", err, bytes.TrimSpace(out))
	}
	port, err := freeLocalPort()
	if err != nil {
		return "", nil, err
	}
	name, args = asPostgresUser(root, filepath.Join(binDir, "postgres"), postgresArgs(data, dir, port, hubs)...)
	c, err := startChild("PostgreSQL", name, args, filepath.Join(work, "postgres.log"))
	if err != nil {
		return "", nil, err
	}
	stop := func() error {
		return c.stopWith(func() error { return signalPostmaster(data, c.pid()) }, time.Minute)
	}
	db, err := sql.Open("pgx", postgresURL(port, "postgres"))
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("connecting to PostgreSQL: %w", err), stop())
	}
	defer db.Close()
	if err := c.waitReady(ctx, time.Minute, db.PingContext); err != nil {
		return "", nil, errors.Join(err, stop())
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+benchDatabase); err != nil {
		return "", nil, errors.Join(fmt.Errorf("creating the database %s: %w", benchDatabase, err), stop())
	}
	return postgresURL(port, benchDatabase), stop, nil
}

// signalPostmaster asks PostgreSQL for a fast shutdown (SIGINT: sessions
// end, a checkpoint is written). The signal goes to the postmaster itself,
// named in its postmaster.pid, not to runuser, which would kill it two
// seconds later; before the postmaster wrote the file, to the process
// group of the child, pid.
func signalPostmaster(data string, pid int) error {
	target := -pid
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid")) // #nosec G304 -- in sonde-bench's own temporary directory
	if err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if pm, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pm > 0 {
			target = pm
		}
	}
	if err := syscall.Kill(target, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
