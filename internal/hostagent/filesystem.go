package hostagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// mountLine is one line of /proc/self/mounts, with the octal escapes of
// the kernel (\040 for a space) decoded.
type mountLine struct {
	device, mountPoint, fsType string
	readOnly                   bool
	name                       string // the item name, set by visibleMounts
}

// parseMounts reads /proc/self/mounts into dst, reusing it. Malformed
// lines are skipped and returned as an error.
func parseMounts(b []byte, dst []mountLine) ([]mountLine, error) {
	dst = dst[:0]
	var errs lineErrors
	var f [4][]byte
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		n := fields(line, f[:])
		if n == 0 {
			continue
		}
		if n < 4 {
			errs.addf("%d columns, want at least 4: %s", n, quote(line))
			continue
		}
		mp := unescapeMount(f[1])
		if len(mp) == 0 || mp[0] != '/' {
			errs.addf("mount point is not an absolute path: %s", quote(line))
			continue
		}
		dst = append(dst, mountLine{
			device:     unescapeMount(f[0]),
			mountPoint: mp,
			fsType:     unescapeMount(f[2]),
			readOnly:   hasOption(f[3], "ro"),
		})
	}
	return dst, errs.err()
}

// unescapeMount decodes the kernel's octal escapes (\040 space, \011 tab,
// \012 newline, \134 backslash); anything else is kept as it is.
func unescapeMount(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) {
			v := uint(b[i+1]-'0')<<6 | uint(b[i+2]-'0')<<3 | uint(b[i+3]-'0')
			if v <= 0xff {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, b[i])
	}
	return string(out)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// hasOption reports whether the comma-separated options hold opt.
func hasOption(opts []byte, opt string) bool {
	for len(opts) > 0 {
		var o []byte
		if i := bytes.IndexByte(opts, ','); i >= 0 {
			o, opts = opts[:i], opts[i+1:]
		} else {
			o, opts = opts, nil
		}
		if string(o) == opt {
			return true
		}
	}
	return false
}

// pseudoFilesystems are the filesystem types the filesystem check leaves
// out (node_exporter's defaults, plus a few): kernel interfaces with no
// space to run out of, and read-only images that are always full.
var pseudoFilesystems = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "efivarfs": true,
	"erofs": true, "fusectl": true, "hugetlbfs": true, "iso9660": true, "mqueue": true,
	"nfsd": true, "nsfs": true, "overlay": true, "proc": true, "procfs": true, "pstore": true,
	"ramfs": true, "rpc_pipefs": true, "securityfs": true, "selinuxfs": true, "squashfs": true,
	"sysfs": true, "tracefs": true,
	"fuse.lxcfs": true, "fuse.portal": true, "fuse.gvfsd-fuse": true, "fuse.snapfuse": true,
}

// skippedMountTrees are the mount points left out with everything under
// them; skippedMountsUnder only what is under them (the directory itself
// may be a partition of its own). Container runtimes and the kubelet
// mount a filesystem per container or pod volume there.
var (
	skippedMountTrees  = []string{"/dev", "/proc", "/sys"}
	skippedMountsUnder = []string{"/run/credentials", "/var/lib/docker", "/var/lib/containers/storage", "/var/lib/kubelet"}
)

// skipMount reports whether the filesystem check leaves a mount out. tmpfs
// is kept (a full /run or /tmp breaks services), and an overlay root is
// kept: it is the only filesystem of a container.
func skipMount(m *mountLine) bool {
	if pseudoFilesystems[m.fsType] && !(m.fsType == "overlay" && m.mountPoint == "/") {
		return true
	}
	for _, t := range skippedMountTrees {
		if m.mountPoint == t || strings.HasPrefix(m.mountPoint, t+"/") {
			return true
		}
	}
	for _, t := range skippedMountsUnder {
		if strings.HasPrefix(m.mountPoint, t+"/") {
			return true
		}
	}
	return false
}

// fsStats is what statfs says of a filesystem, in blocks of frsize bytes
// and in inodes.
type fsStats struct {
	blocks, bfree, bavail uint64
	files, ffree          uint64
	frsize                uint64
}

// statfsCall is one statfs running in its own goroutine: a hung mount
// blocks its goroutine, not the check.
type statfsCall struct {
	done chan struct{}
	st   fsStats
	err  error
}

// filesystemCollector is the filesystem check: space and inodes of every
// mounted filesystem that can run out of either.
type filesystemCollector struct {
	mu      sync.Mutex
	r       reader
	root    string
	statfs  func(path string) (fsStats, error)
	timeout time.Duration
	mounts  []mountLine
	// hung holds, by mount point, the statfs calls that did not return
	// within the timeout. No new call is made for such a mount until the
	// old one returns, so a dead NFS server costs one goroutine, not one
	// per interval.
	hung map[string]*statfsCall
}

func newFilesystemCollector(opts Options) *filesystemCollector {
	return &filesystemCollector{
		r: newReader(opts), root: opts.Root, statfs: opts.statfs, timeout: opts.FilesystemTimeout,
		hung: map[string]*statfsCall{},
	}
}

// Key implements Check.
func (c *filesystemCollector) Key() string { return "filesystem" }

// readMounts reads the mount table. Under another root (the agent in a
// container, the host's root mounted somewhere) the host's table is init's,
// /proc/1/mounts; the agent's own may differ.
func (c *filesystemCollector) readMounts() ([]byte, string, error) {
	if filepath.Clean(c.root) != "/" {
		if b, err := c.r.read("proc/1/mounts"); err == nil {
			return b, c.r.name("proc/1/mounts"), nil
		}
	}
	b, err := c.r.read("proc/self/mounts")
	return b, c.r.name("proc/self/mounts"), err
}

// Collect implements Check.
func (c *filesystemCollector) Collect(ctx context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p problems
	b, path, err := c.readMounts()
	if err != nil {
		p.add(model.SeverityHigh, err)
		return nil, p.checkError()
	}
	c.mounts, err = parseMounts(b, c.mounts)
	if err != nil {
		p.addf(model.SeverityLow, "%s: %w", path, err)
	}
	mounts := c.visibleMounts(&p)

	// Start every statfs at once, then wait for them all until one
	// shared deadline: the check takes at most one timeout, however many
	// mounts hang.
	for mp, call := range c.hung {
		select {
		case <-call.done:
			delete(c.hung, mp)
		default:
		}
	}
	calls := make([]*statfsCall, len(mounts))
	stillHung := make([]bool, len(mounts))
	for i := range mounts {
		mp := mounts[i].mountPoint
		if _, ok := c.hung[mp]; ok {
			stillHung[i] = true
			continue
		}
		call := &statfsCall{done: make(chan struct{})}
		calls[i] = call
		go func(path string) {
			call.st, call.err = c.statfs(path)
			close(call.done)
		}(filepath.Join(c.root, mp))
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	expired, stopped := false, false
	for i, call := range calls {
		if call == nil {
			continue
		}
		if !expired && !stopped {
			select {
			case <-call.done:
				continue
			case <-timer.C:
				expired = true
			case <-ctx.Done():
				stopped = true
			}
		}
		select {
		case <-call.done:
		default:
			c.hung[mounts[i].mountPoint] = call
			calls[i] = nil
		}
	}
	if stopped {
		p.addf(model.SeverityMedium, "collection stopped: %v", ctx.Err())
	}

	items := make([]model.Item, 0, len(mounts))
	for i := range mounts {
		mt := &mounts[i]
		m := make(metrics, 0, 11)
		m.str("device", mt.device)
		m.str("fsType", mt.fsType)
		m.bool("readOnly", mt.readOnly)
		call := calls[i]
		switch {
		case stillHung[i]:
			msg := "statfs still hung since an earlier run"
			m.str("error", msg)
			p.addf(model.SeverityMedium, "%s: %s", mt.name, msg)
		case call == nil:
			msg := fmt.Sprintf("statfs timed out after %s", c.timeout)
			if stopped {
				msg = "statfs did not return before the check was stopped"
			}
			m.str("error", msg)
			p.addf(model.SeverityMedium, "%s: %s", mt.name, msg)
		case call.err != nil:
			m.str("error", errorText(call.err))
			p.addf(model.SeverityLow, "%s: %s", mt.name, errorText(call.err))
		default:
			if err := m.fsUsage(&call.st); err != nil {
				m.str("error", err.Error())
				p.addf(model.SeverityLow, "%s: %v", mt.name, err)
			}
		}
		items = append(items, model.Item{Name: mt.name, Metrics: m})
	}
	return []model.Type{{Name: "filesystem", Items: items}}, p.checkError()
}

// errorText is a statfs error without the path (the item names it).
func errorText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// visibleMounts returns the mounts the check reports, in the table's
// order. A mount point mounted over is listed once, with what was mounted
// last (what statfs sees).
//
// The item name is the mount point with bytes that are not UTF-8 shown as
// U+FFFD (as the hub would store them); two mount points that only differ
// there are listed once, too.
func (c *filesystemCollector) visibleMounts(p *problems) []mountLine {
	byName := make(map[string]int, len(c.mounts))
	out := make([]mountLine, 0, len(c.mounts))
	for _, m := range c.mounts {
		m.name = strings.ToValidUTF8(m.mountPoint, "\uFFFD")
		if len(m.name) > maxItemName {
			p.addf(model.SeverityLow, "a mount point of %d bytes is too long to report", len(m.name))
			continue
		}
		if i, ok := byName[m.name]; ok {
			out[i] = m
			continue
		}
		byName[m.name] = len(out)
		out = append(out, m)
	}
	kept := out[:0]
	for _, m := range out {
		if !skipMount(&m) {
			kept = append(kept, m)
		}
	}
	return kept
}

// fsUsage adds the size and use of a filesystem, or returns an error when
// statfs' numbers do not add up.
func (m *metrics) fsUsage(st *fsStats) error {
	if st.bfree > st.blocks || st.ffree > st.files {
		return errors.New("statfs reports more free than total")
	}
	size, ok1 := mulBytes(st.blocks, st.frsize)
	free, ok2 := mulBytes(st.bfree, st.frsize)
	avail, ok3 := mulBytes(st.bavail, st.frsize)
	if !ok1 || !ok2 || !ok3 {
		return errors.New("statfs reports a size beyond 8 EiB")
	}
	used := size - free
	m.uint("size", size)
	m.uint("used", used)
	m.uint("available", avail)
	// As df: the share of what unprivileged users can use, so a disk
	// is 100% full when only the root reserve is left.
	if used+avail > 0 {
		m.float("percentUsed", float64(used)/(float64(used)+float64(avail))*100)
	}
	// Some filesystems (btrfs, vfat, NFS of some servers) have no inode
	// count: nothing to report then.
	if st.files > 0 {
		m.uint("inodes", st.files)
		m.uint("inodesUsed", st.files-st.ffree)
		m.float("percentInodesUsed", float64(st.files-st.ffree)/float64(st.files)*100)
	}
	return nil
}

// mulBytes returns n blocks of size bytes, false beyond int64.
func mulBytes(n, size uint64) (uint64, bool) {
	hi, lo := bits.Mul64(n, size)
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return lo, true
}
