// Package hardening audits the machine a Sonde appliance runs on: the SSH
// server's effective configuration, pending security updates, encryption of
// the disk holding the appliance's data, and the appliance's own files,
// version and credential rotation. It is the library behind
// `sonde-appliance audit`, whose findings also go to the hub as check items.
//
// Every read goes through Options.Root, so tests (and an operator auditing a
// mounted image) point it at another tree; commands are only run when Root is
// "/". The audit reads metadata and configuration only: it never opens the
// vault or the key file, and never reports a credential's value.
package hardening

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is the outcome of one finding.
type Status string

// The statuses of a finding.
const (
	// Pass means the setting is as expected.
	Pass Status = "pass"
	// Fail means the setting weakens the appliance; Advice says what to change.
	Fail Status = "fail"
	// Unknown means the audit could not tell; Observed says why.
	Unknown Status = "unknown"
)

// Severities of findings, the syslog names the hub's alerts use
// (internal/alert). A finding's severity is how bad it is when it fails; it
// is the same whatever the status, except where a weaker value is worse
// (PermitRootLogin yes against prohibit-password).
const (
	SeverityCritical = "CRITICAL"
	SeverityError    = "ERROR"
	SeverityWarning  = "WARNING"
	SeverityNotice   = "NOTICE"
	SeverityInfo     = "INFO"
)

// Finding is the result of one check of the audit.
type Finding struct {
	Name     string `json:"name"`
	Status   Status `json:"status"`
	Severity string `json:"severity"`
	Observed string `json:"observed"`
	Expected string `json:"expected"`
	Advice   string `json:"advice"`
	Source   string `json:"source,omitempty"`
}

// CredentialAge is what the audit learns about one vault credential: its name
// and when its value was last set. It never holds the value.
type CredentialAge struct {
	Name      string
	RotatedAt time.Time
}

// Options say what to audit. Paths (DataDir, VaultFile, KeyFile, SSHD) are
// read under Root.
type Options struct {
	// Root is the filesystem root to read, "/" when empty. Commands
	// (sshd -T, apt-get) run only when Root is "/".
	Root string
	// DataDir is the appliance's data directory (vault, key, buffer).
	DataDir string
	// VaultFile and KeyFile are the vault and its key file; an empty one is
	// reported unknown (a vault sealed by a passphrase has no key file).
	VaultFile, KeyFile string
	// ApplianceUser is the user expected to own the data directory, the
	// vault and the key file, looked up in Root/etc/passwd; empty means the
	// user running the audit.
	ApplianceUser string
	// Version is the running Sonde version.
	Version string
	// LatestVersion is the latest version the hub announces; empty when
	// unknown.
	LatestVersion string
	// PinnedVersion is the version the operator pinned; empty when not
	// pinned.
	PinnedVersion string
	// RotationDays is the credential rotation policy; 90 when zero.
	RotationDays int
	// Credentials are the vault's credentials (names and rotation dates,
	// never values).
	Credentials []CredentialAge
	// CredentialsErr, when set, is why the credentials could not be listed
	// (the vault could not be opened): the rotation finding is then
	// unknown instead of passing on an empty list.
	CredentialsErr error
	// Now is the time credential ages are measured at; time.Now when zero.
	Now time.Time
	// SSHD is the sshd binary run as `sshd -T` for the effective
	// configuration when Root is "/"; empty means "sshd" looked up in PATH.
	SSHD string
	// Run runs a command and returns its standard output; nil runs it with
	// exec.CommandContext. Audit gives every run a 5 s timeout.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Hub check identifiers of the audit's result: Items shapes the findings as
// the items of type Type of check Check of collector Collector.
const (
	Collector = "appliance"
	Check     = "hardening"
	Type      = "hardening"
)

// Limits of what the audit reads and runs.
const (
	// maxConfigSize is the largest configuration file read.
	maxConfigSize = 1 << 20
	// maxOutput is the most output kept from a command.
	maxOutput = 4 << 20
	// commandTimeout bounds every command run.
	commandTimeout = 5 * time.Second
	// maxText bounds one text field of a finding.
	maxText = 2048
	// defaultRotationDays is the rotation policy when Options has none.
	defaultRotationDays = 90
)

// auditor is one run of Audit: the options with their defaults applied.
type auditor struct {
	o    Options
	root string
	live bool // Root is "/": commands may run
	run  func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Audit runs every check and returns one finding per item, in a stable
// order. It never panics: whatever it cannot read or run becomes an unknown
// finding with the reason in Observed.
func Audit(ctx context.Context, o Options) []Finding {
	a := newAuditor(o)
	var out []Finding
	groups := []struct {
		name string
		fn   func(context.Context) []Finding
	}{
		{"ssh", a.sshFindings},
		{"os", a.osFindings},
		{"disk", func(context.Context) []Finding { return []Finding{a.diskEncryption()} }},
		{"sonde", func(context.Context) []Finding { return a.sondeFindings() }},
	}
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			out = append(out, Finding{Name: g.name + ".audit", Status: Unknown, Severity: SeverityWarning,
				Observed: "the audit was stopped before these checks: " + err.Error(),
				Expected: "every check run", Advice: "run `sonde-appliance audit` again"})
			continue
		}
		out = append(out, guard(ctx, g.name, g.fn)...)
	}
	return finish(out)
}

func newAuditor(o Options) *auditor {
	root := o.Root
	if root == "" {
		root = "/"
	}
	root = filepath.Clean(root)
	if o.RotationDays <= 0 {
		o.RotationDays = defaultRotationDays
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	a := &auditor{o: o, root: root, live: root == string(filepath.Separator), run: o.Run}
	if a.run == nil {
		a.run = runCommand
	}
	return a
}

// guard turns a panic of one group of checks into an unknown finding, so a
// bug in one check never loses the others.
func guard(ctx context.Context, name string, fn func(context.Context) []Finding) (fs []Finding) {
	defer func() {
		if r := recover(); r != nil {
			fs = []Finding{{Name: name + ".audit", Status: Unknown, Severity: SeverityWarning,
				Observed: fmt.Sprintf("internal error in the %s checks: %v", name, r),
				Expected: "every check run", Advice: "report this to the Sonde developers with the output of `sonde-appliance audit --json`"}}
		}
	}()
	return fn(ctx)
}

// finish bounds the text fields and makes the names unique (an item name
// appears once per type on the hub).
func finish(fs []Finding) []Finding {
	seen := make(map[string]int, len(fs))
	for i := range fs {
		f := &fs[i]
		f.Name = clip(f.Name, 256)
		if n := seen[f.Name]; n > 0 {
			seen[f.Name] = n + 1
			f.Name = fmt.Sprintf("%s#%d", f.Name, n+1)
		} else {
			seen[f.Name] = 1
		}
		f.Observed, f.Expected = clip(f.Observed, maxText), clip(f.Expected, maxText)
		f.Advice, f.Source = clip(f.Advice, maxText), clip(f.Source, maxText)
	}
	return fs
}

// clip shortens s to at most n bytes of valid UTF-8 without control
// characters, so a hostile file name cannot garble a terminal.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Items shapes findings as the items of the hub's "hardening" type: the
// item name is the finding's name; status, severity, observed, expected,
// advice and source are string metrics; ok (1 when the finding passes) and
// failed (1 when it fails) are numbers, so both `item.status == "fail"` and
// a sum of failed over time work in conditions and graphs.
func Items(fs []Finding) []map[string]any {
	out := make([]map[string]any, 0, len(fs))
	for _, f := range fs {
		ok, failed := 0, 0
		switch f.Status {
		case Pass:
			ok = 1
		case Fail:
			failed = 1
		}
		out = append(out, map[string]any{
			"name":     f.Name,
			"status":   string(f.Status),
			"severity": f.Severity,
			"observed": f.Observed,
			"expected": f.Expected,
			"advice":   f.Advice,
			"source":   f.Source,
			"ok":       ok,
			"failed":   failed,
		})
	}
	return out
}

// runCommand runs a command without a shell, in the C locale (the parsers
// read English output), keeping at most maxOutput bytes of its output.
func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...) // #nosec G204 -- fixed commands: sshd -T and apt-get -s
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxOutput, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return stdout.Bytes(), fmt.Errorf("%w: %s", err, firstLine(msg))
		}
		return stdout.Bytes(), err
	}
	return stdout.Bytes(), nil
}

// limitedBuffer keeps the first max bytes written to it and discards the
// rest, so a runaway command cannot exhaust memory. (It does not embed
// bytes.Buffer: exec would use its ReadFrom and bypass the limit.)
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *limitedBuffer) String() string { return b.buf.String() }

// command runs name under the audit's timeout.
func (a *auditor) command(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := a.run(ctx, name, args...)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return out, fmt.Errorf("%s did not finish within %v: %w", name, commandTimeout, ctx.Err())
	case err == nil && ctx.Err() != nil:
		return out, ctx.Err()
	}
	return out, err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// hostPath maps a path as the audited system sees it ("/etc/ssh/sshd_config")
// to the file to open under Root.
func (a *auditor) hostPath(p string) string {
	return filepath.Join(a.root, filepath.FromSlash(path.Clean("/"+p)))
}

// errTooLarge is wrapped when a file is larger than what the audit reads.
var errTooLarge = errors.New("file too large")

// readFile reads a small regular file under Root, refusing one larger than
// limit bytes. Errors name the file as the audited system sees it.
func (a *auditor) readFile(p string, limit int64) ([]byte, error) {
	return readFileFS(os.DirFS(a.root), p, limit)
}

// readFileFS reads p (an absolute slash path) from fsys, bounded by limit.
func readFileFS(fsys fs.FS, p string, limit int64) ([]byte, error) {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "."
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", "/"+name, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", "/"+name, unwrapPath(err))
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("reading %s: it is a directory, not a file", "/"+name)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: not a regular file", "/"+name)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("reading %s: %w: %d bytes, more than the %s the audit reads", "/"+name, errTooLarge, fi.Size(), sizeText(limit))
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", "/"+name, unwrapPath(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("reading %s: %w: more than the %s the audit reads", "/"+name, errTooLarge, sizeText(limit))
	}
	return b, nil
}

func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// unwrapPath drops the *fs.PathError wrapper, whose path is the one under
// Root (a test's temporary directory): messages name the audited path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// exists reports whether p exists under Root (without following a final
// symbolic link, so a dangling link counts).
func (a *auditor) exists(p string) bool {
	_, err := os.Lstat(a.hostPath(p))
	return err == nil
}

// resolve follows symbolic links in p as the audited system would, keeping
// absolute targets under Root, and returns the resolved path as that system
// sees it.
func (a *auditor) resolve(p string) (string, error) {
	parts := splitPath(p)
	cur := "/"
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(a.hostPath(next))
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", p, unwrapPath(err))
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("resolving %s: too many symbolic links", p)
		}
		target, err := os.Readlink(a.hostPath(next))
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", p, unwrapPath(err))
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		parts = append(splitPath(target), parts...)
	}
	return cur, nil
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// shellQuote quotes a path for a command line in advice, when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
