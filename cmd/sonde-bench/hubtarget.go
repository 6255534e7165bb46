package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
)

// server is a target the load is sent to.
type server struct {
	name string
	base string // scheme://host:port
	// bases are every hub of a load spread over several (--hub A,B):
	// agent a posts to bases[a % len(bases)]; empty means base alone.
	bases   []string
	tlsConf *tls.Config
	token   string // admin token (hub only)
	pid     int    // 0: CPU and memory unknown
	// pids are the processes of several spawned hubs, whose CPU and
	// memory are summed; pid is then 0.
	pids    []int
	tsdbDir string // "": disk use unknown
	version string
	stream  string // the hub's appliance stream address; "" when not served
	stop    func() error
}

// allBases are the hubs the load is spread over.
func (s *server) allBases() []string {
	if len(s.bases) > 0 {
		return s.bases
	}
	return []string{s.base}
}

// processes are the processes whose CPU and memory are the server's; none
// when they are unknown.
func (s *server) processes() []int {
	switch {
	case len(s.pids) > 0:
		return s.pids
	case s.pid > 0:
		return []int{s.pid}
	}
	return nil
}

// spawnHub runs `sonde hub` on a free local port with its data in dir,
// with its appliance stream on another free local port when stream is
// set (never on the default :8730, which would listen on every address).
func spawnHub(ctx context.Context, bin, dir string, stream bool) (*server, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no sonde binary at %s (build it: make build, or give --sonde): %w", bin, err)
	}
	streamAddr := ""
	if stream {
		sport, err := freeLocalPort()
		if err != nil {
			return nil, err
		}
		streamAddr = "127.0.0.1:" + strconv.Itoa(sport)
	}
	return startHub(ctx, bin, "the hub", filepath.Join(dir, "hub-data"), filepath.Join(dir, "hub.log"), streamAddr, hubBackends{}, nil, "")
}

// hubBackends are where a spawned hub keeps its state and time series;
// the zero value is its own SQLite file and embedded TSDB.
type hubBackends struct {
	state        string // --state: a postgres:// URL
	tsdbWrite    string // --tsdb-remote-write
	tsdbQuery    string // --tsdb-query
	maxSampleAge time.Duration
}

// remoteTSDB tells whether the time series go to a remote TSDB.
func (b hubBackends) remoteTSDB() bool { return b.tsdbWrite != "" }

// hubArgs is the command line of a spawned hub: no API rate limit (the
// load is the point), warnings only, the stream on streamAddr or off.
func hubArgs(data, listen, streamAddr string, b hubBackends) []string {
	args := []string{"hub", "--data", data, "--listen", listen, "--stream-listen", streamAddr,
		"--api-rate", "0", "--log-level", "warn"}
	if b.state != "" {
		args = append(args, "--state", b.state)
	}
	if b.remoteTSDB() {
		args = append(args, "--tsdb-remote-write", b.tsdbWrite, "--tsdb-query", b.tsdbQuery)
		if b.maxSampleAge > 0 {
			args = append(args, "--tsdb-max-sample-age", b.maxSampleAge.String())
		}
	}
	return args
}

// startHub runs one `sonde hub` (named name in messages) on a free local
// port, its data in data and its output in logPath, and waits until it
// answers /healthz. The CA to trust and the admin token are read from
// data once the hub made them, unless given (the second hub of a cluster
// has the first one's CA and no admin token file of its own).
func startHub(ctx context.Context, bin, name, data, logPath, streamAddr string, b hubBackends, tlsConf *tls.Config, token string) (*server, error) {
	port, err := freeLocalPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := startChild(name, bin, hubArgs(data, addr, streamAddr, b), logPath)
	if err != nil {
		return nil, err
	}
	s := &server{name: "sonde hub", base: "https://" + addr, pid: c.pid(), tsdbDir: filepath.Join(data, "tsdb"), stream: streamAddr,
		tlsConf: tlsConf, token: token,
		version: binaryVersion(ctx, bin, "version"), stop: func() error { return c.stop(time.Minute) }}
	if b.remoteTSDB() {
		s.tsdbDir = "" // nothing of the series is on this hub's disk but its queue
	}
	ready := func(ctx context.Context) error {
		if s.tlsConf == nil {
			conf, err := tlsConfigFromCA(filepath.Join(data, "tls", "ca.crt"))
			if err != nil {
				return err
			}
			s.tlsConf = conf
		}
		if s.token == "" {
			tok, err := readToken(filepath.Join(data, hub.AdminTokenFile))
			if err != nil {
				return err
			}
			s.token = tok
		}
		return getOK(ctx, newClient(s.tlsConf, true, 2*time.Second), s.base+"/healthz")
	}
	if err := c.waitReady(ctx, time.Minute, ready); err != nil {
		return nil, errors.Join(err, c.stop(10*time.Second))
	}
	return s, nil
}

// inProcessHub runs the hub inside this process, so that a CPU profile of
// the process shows the hub's functions. CPU and memory of the hub alone
// are then unknown.
func inProcessHub(ctx context.Context, dir string) (*server, error) {
	data := filepath.Join(dir, "hub-data")
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h, err := hub.New(hctx, hub.Config{DataDir: data, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Out: io.Discard})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting the hub in-process: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Serve(hctx) }()
	conf, err := tlsConfigFromCA(h.CAFile())
	if err == nil {
		var tok string
		if tok, err = readToken(h.AdminTokenPath()); err == nil {
			return &server{name: "sonde hub (in-process)", base: "https://" + h.Addr().String(), tlsConf: conf, token: tok,
				tsdbDir: filepath.Join(data, "tsdb"),
				stop: func() error {
					cancel()
					return <-done
				}}, nil
		}
	}
	cancel()
	<-done
	return nil, err
}

// externalHub is a hub someone else runs.
func externalHub(ctx context.Context, rawURL, caFile, tokenFile string, pid int, allowRemote bool) (*server, error) {
	var bases []string
	for _, one := range strings.Split(rawURL, ",") {
		u, err := checkLocal(strings.TrimSpace(one), allowRemote)
		if err != nil {
			return nil, err
		}
		bases = append(bases, u.Scheme+"://"+u.Host)
	}
	if tokenFile == "" {
		return nil, usageErr("--hub needs --token-file (an admin token of the root container or another container)")
	}
	conf, err := tlsConfigFromCA(caFile)
	if err != nil {
		return nil, err
	}
	tok, err := readToken(tokenFile)
	if err != nil {
		return nil, err
	}
	s := &server{name: "sonde hub", base: bases[0], tlsConf: conf, token: tok, pid: pid}
	if len(bases) > 1 {
		// One process's CPU would not be the load's.
		s.name, s.bases, s.pid = fmt.Sprintf("%d sonde hubs", len(bases)), bases, 0
	}
	for _, b := range bases {
		if err := getOK(ctx, newClient(conf, true, 5*time.Second), b+"/healthz"); err != nil {
			return nil, fmt.Errorf("the hub at %s does not answer /healthz: %w", b, err)
		}
	}
	return s, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's --token-file, or the admin token of a hub sonde-bench spawned
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return tok, nil
}

// scrapeMetrics reads the server's /metrics (with the token, if any).
func scrapeMetrics(ctx context.Context, s *server) (string, error) {
	return scrapeMetricsAt(ctx, s, s.base)
}

// scrapeMetricsAt reads /metrics of base, one of the server's hubs.
func scrapeMetricsAt(ctx context.Context, s *server, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := newClient(s.tlsConf, true, 10*time.Second).Do(req)
	if err != nil {
		return "", fmt.Errorf("reading %s's metrics: %w", s.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("reading %s's metrics: %s %s", s.name, resp.Status, drain(resp))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", fmt.Errorf("reading %s's metrics: %w", s.name, err)
	}
	return string(b), nil
}

// metricValue returns the sum of the samples of metric name (all label
// sets) in Prometheus text format, and whether there was any.
func metricValue(text, name string) (float64, bool) {
	var sum float64
	found := false
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(line, name) || len(line) == len(name) {
			continue
		}
		rest := line[len(name):]
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		} else if rest[0] != ' ' {
			continue // a longer name with this prefix
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
