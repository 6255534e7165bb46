package hostagent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// Options configure the collectors. The zero value collects from "/" with
// the real clock.
type Options struct {
	// Root is the filesystem root the collectors read /proc, /sys, /etc
	// and /run through: "/" in production (or where the host's root is
	// mounted in a container), a fixture tree such as "testdata/small" in
	// tests. Empty means "/".
	Root string
	// Now is the clock that times the interval between two samples of a
	// rate. Nil means time.Now.
	Now func() time.Time
	// FilesystemTimeout bounds each mount's statfs call: a mount that
	// does not answer in time (a stale NFS server) is reported as an
	// error while the others are reported. 0 means 5s.
	FilesystemTimeout time.Duration
	// TopProcesses is how many processes the process check reports by
	// CPU and by memory. 0 means 10.
	TopProcesses int

	// statfs replaces the statfs system call in tests (e.g. to hang).
	statfs func(path string) (fsStats, error)
	// pageSize replaces the host's page size (RSS is in pages) in tests.
	pageSize uint64
	// opened, when set, is told every path a collector opens.
	opened func(path string)
}

// DefaultFilesystemTimeout is the statfs timeout when
// Options.FilesystemTimeout is zero.
const DefaultFilesystemTimeout = 5 * time.Second

// DefaultTopProcesses is the number of processes reported by CPU and by
// memory when Options.TopProcesses is zero.
const DefaultTopProcesses = 10

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FilesystemTimeout <= 0 {
		o.FilesystemTimeout = DefaultFilesystemTimeout
	}
	if o.TopProcesses <= 0 {
		o.TopProcesses = DefaultTopProcesses
	}
	if o.statfs == nil {
		o.statfs = statfs
	}
	if ps := os.Getpagesize(); o.pageSize == 0 && ps > 0 {
		o.pageSize = uint64(ps)
	}
	return o
}

// Check is one check of the agent's collector (key "linux"): it is run
// every interval and its result is posted as one InfraSonar check.
type Check interface {
	// Key is the check's key, e.g. "cpu".
	Key() string
	// Collect returns the check's types, or an error. Collectors with
	// rates keep their previous raw sample: the first run sends what it
	// can without rates, never made-up ones. A partly failing collector
	// returns the types it has and an error with a severity. The
	// filesystem and process checks stop waiting or scanning when ctx is
	// done. Collect is safe for concurrent use; calls of one check are
	// serialised.
	Collect(ctx context.Context) ([]model.Type, *model.CheckError)
}

// Checks returns the agent's checks in a stable order: system, cpu, memory,
// disk, filesystem, network, process. Each keeps its own state (the previous
// sample of its rates), so the runner makes them once and calls Collect
// every interval.
func Checks(opts Options) []Check {
	opts = opts.withDefaults()
	return []Check{
		newSystemCollector(opts),
		newCPUCollector(opts),
		newMemoryCollector(opts),
		newDiskCollector(opts),
		newFilesystemCollector(opts),
		newNetworkCollector(opts),
		newProcessCollector(opts),
	}
}

// maxFileSize bounds what reader reads of one file: the largest /proc file
// read (/proc/self/mounts on a host with thousands of mounts) is far below.
const maxFileSize = 16 << 20

// reader reads files under the root into a buffer it reuses from one read
// to the next, so a collector allocates nothing per file once warmed up.
type reader struct {
	root   string
	buf    []byte
	dirBuf []byte
	opened func(path string)
}

func newReader(opts Options) reader {
	return reader{root: opts.Root, opened: opts.opened}
}

// path returns rel (e.g. "proc/stat") under the root.
func (r *reader) path(rel string) string { return filepath.Join(r.root, rel) }

// name is how messages show rel: as a path on the host, whatever the root.
func (r *reader) name(rel string) string { return "/" + rel }

// display is name for a path already joined to the root.
func (r *reader) display(p string) string {
	if rel, err := filepath.Rel(r.root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + filepath.ToSlash(rel)
	}
	return p
}

// hostPathError makes the path of an error the path on the host.
func (r *reader) hostPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = r.display(pe.Path)
	}
	return err
}

// read returns the content of rel under the root. The slice is valid until
// the next read.
func (r *reader) read(rel string) ([]byte, error) { return r.readPath(r.path(rel)) }

// readPath is read for a path already joined to the root.
func (r *reader) readPath(p string) ([]byte, error) { return r.readPathOnce(p, false) }

// readPathOnce is readPath; with single, a short read ends the file (see
// readFileInto).
func (r *reader) readPathOnce(p string, single bool) ([]byte, error) {
	if r.opened != nil {
		r.opened(p)
	}
	if r.buf == nil {
		r.buf = make([]byte, 4096)
	}
	buf, n, err := readFileInto(p, r.buf, maxFileSize, single)
	r.buf = buf
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, r.hostPathError(err)
		}
		return nil, fmt.Errorf("reading %s: %w", r.display(p), err)
	}
	return buf[:n], nil
}

// eachName calls fn with the name of each entry of the directory rel
// under the root, in directory order, until fn returns false. The name is
// only valid during the call.
func (r *reader) eachName(rel string, fn func(name []byte) bool) error {
	p := r.path(rel)
	if r.opened != nil {
		r.opened(p)
	}
	var err error
	r.dirBuf, err = eachDirName(p, r.dirBuf, fn)
	if err != nil {
		return fmt.Errorf("listing %s: %w", r.display(p), r.hostPathError(err))
	}
	return nil
}

// readString reads a one-line file such as /proc/sys/kernel/hostname,
// without its surrounding white space.
func (r *reader) readString(rel string) (string, error) {
	b, err := r.read(rel)
	if err != nil {
		return "", err
	}
	return string(trimSpace(b)), nil
}

// problems gathers what went wrong during one Collect: the most severe
// severity and the first few messages.
type problems struct {
	msgs []string
	more int
	sev  model.Severity
}

const maxProblemMessages = 5

func (p *problems) add(sev model.Severity, err error) {
	if len(p.msgs) == 0 && p.more == 0 {
		p.sev = sev
	} else if sev < p.sev {
		p.sev = sev
	}
	if len(p.msgs) >= maxProblemMessages {
		p.more++
		return
	}
	p.msgs = append(p.msgs, strings.ReplaceAll(err.Error(), "\n", "; "))
}

func (p *problems) addf(sev model.Severity, format string, args ...any) {
	p.add(sev, fmt.Errorf(format, args...))
}

// checkError returns nil when nothing went wrong.
func (p *problems) checkError() *model.CheckError {
	if len(p.msgs) == 0 {
		return nil
	}
	msg := strings.Join(p.msgs, "; ")
	if p.more > 0 {
		msg += fmt.Sprintf(" (and %d more)", p.more)
	}
	return &model.CheckError{Message: msg, Severity: p.sev}
}

// lineErrors gathers the errors of skipped lines for a parser: the first
// few, and how many more.
type lineErrors struct {
	errs []error
	more int
}

const maxLineErrors = 3

func (e *lineErrors) add(err error) {
	if len(e.errs) >= maxLineErrors {
		e.more++
		return
	}
	e.errs = append(e.errs, err)
}

func (e *lineErrors) addf(format string, args ...any) {
	if len(e.errs) >= maxLineErrors {
		e.more++
		return
	}
	e.errs = append(e.errs, fmt.Errorf(format, args...))
}

func (e *lineErrors) err() error {
	if len(e.errs) == 0 {
		return nil
	}
	if e.more > 0 {
		e.errs = append(e.errs, fmt.Errorf("%d more malformed lines", e.more))
	}
	return errors.Join(e.errs...)
}

// metrics builds one item's metrics, dropping values a result must not
// hold (non-finite floats, unsigned values beyond int64).
type metrics []model.Metric

func (m *metrics) int(name string, v int64) {
	*m = append(*m, model.Metric{Name: name, Value: model.IntValue(v)})
}

func (m *metrics) uint(name string, v uint64) {
	if v > math.MaxInt64 {
		return
	}
	*m = append(*m, model.Metric{Name: name, Value: model.IntValue(int64(v))})
}

func (m *metrics) float(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	*m = append(*m, model.Metric{Name: name, Value: model.FloatValue(v)})
}

// maxString bounds a string metric: what a file says (a host name, a
// device) is shortened rather than make the hub refuse the result.
const maxString = 4096

func (m *metrics) str(name, v string) {
	if len(v) > maxString {
		v = v[:maxString]
	}
	*m = append(*m, model.Metric{Name: name, Value: model.StringValue(v)})
}

func (m *metrics) bool(name string, v bool) {
	*m = append(*m, model.Metric{Name: name, Value: model.BoolValue(v)})
}

// perSecond returns the rate of a counter over seconds, or false when the
// counter went backwards (a reboot, a wrap, a device replaced) or the clock
// did not move forward: no rate is better than a wrong one.
func perSecond(cur, prev uint64, seconds float64) (float64, bool) {
	if cur < prev || !(seconds > 0) {
		return 0, false
	}
	return float64(cur-prev) / seconds, true
}

// interval returns the seconds between two samples, 0 when there is no
// previous sample or the clock went backwards.
func interval(now, prev time.Time) float64 {
	if prev.IsZero() {
		return 0
	}
	s := now.Sub(prev).Seconds()
	if !(s > 0) {
		return 0
	}
	return s
}
