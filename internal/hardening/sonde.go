package hardening

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (a *auditor) sondeFindings() []Finding {
	own := a.expectedOwner()
	out := []Finding{
		a.versionFinding(),
		a.dataDirFinding(own),
		a.privateFile("sonde.vault_file", "vault", a.o.VaultFile, SeverityError, own),
		a.privateFile("sonde.key_file", "vault key file", a.o.KeyFile, SeverityCritical, own),
	}
	return append(out, a.credentialFindings()...)
}

// versionFinding compares the running version with the one the hub
// announces, unless the operator pinned a version.
func (a *auditor) versionFinding() Finding {
	o := a.o
	f := Finding{Name: "sonde.version", Severity: SeverityWarning,
		Expected: "the latest version the hub announces, or a version the operator pinned"}
	if o.PinnedVersion != "" {
		f.Status, f.Severity = Pass, SeverityNotice
		f.Observed = fmt.Sprintf("pinned at %s by the operator; running %s", o.PinnedVersion, orUnknown(o.Version))
		f.Advice = "none"
		if o.LatestVersion != "" {
			f.Observed += ", the hub announces " + o.LatestVersion
			if c, ok := compareVersions(o.PinnedVersion, o.LatestVersion); ok && c < 0 {
				f.Advice = fmt.Sprintf("review the pin: %s is available, with the fixes made since %s", o.LatestVersion, o.PinnedVersion)
			}
		}
		return f
	}
	if _, ok := parseVersion(o.Version); !ok {
		f.Status, f.Advice = Unknown, "run a released build of sonde-appliance"
		f.Observed = fmt.Sprintf("running version %q is not a release version (a development build?)", o.Version)
		return f
	}
	if o.LatestVersion == "" {
		f.Status, f.Advice = Unknown, "connect the appliance to its hub, which announces the latest version"
		f.Observed = "running " + o.Version + "; the hub has not announced a latest version"
		return f
	}
	c, ok := compareVersions(o.Version, o.LatestVersion)
	if !ok {
		f.Status, f.Advice = Unknown, "check the hub's version"
		f.Observed = fmt.Sprintf("running %s; the hub announces %q, which is not a version", o.Version, o.LatestVersion)
		return f
	}
	f.Observed = fmt.Sprintf("running %s, the hub announces %s", o.Version, o.LatestVersion)
	if c < 0 {
		f.Status = Fail
		f.Advice = fmt.Sprintf("upgrade sonde-appliance to %s and restart it (results wait in its buffer meanwhile), or pin %s if it must stay", o.LatestVersion, o.Version)
		return f
	}
	f.Status, f.Advice = Pass, "none"
	return f
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown version"
	}
	return s
}

// version is a semantic version: major.minor.patch[-prerelease][+build].
type version struct {
	nums [3]uint64
	pre  []string
}

// parseVersion reads "1.2.3", "v1.2.3-rc.1+abc", "1.2" (patch 0).
func parseVersion(s string) (version, bool) {
	var v version
	s = strings.TrimPrefix(s, "v")
	s, _, _ = strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || p == "" || len(p) > 1 && p[0] == '0' {
			return v, false
		}
		v.nums[i] = n
	}
	if hasPre {
		if pre == "" {
			return v, false
		}
		v.pre = strings.Split(pre, ".")
	}
	return v, true
}

// compareVersions orders two versions by semantic versioning's rules.
func compareVersions(x, y string) (int, bool) {
	a, ok1 := parseVersion(x)
	b, ok2 := parseVersion(y)
	if !ok1 || !ok2 {
		return 0, false
	}
	for i := range a.nums {
		if a.nums[i] != b.nums[i] {
			if a.nums[i] < b.nums[i] {
				return -1, true
			}
			return 1, true
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0, true
	case len(a.pre) == 0:
		return 1, true
	case len(b.pre) == 0:
		return -1, true
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		if c := comparePre(a.pre[i], b.pre[i]); c != 0 {
			return c, true
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1, true
	case len(a.pre) > len(b.pre):
		return 1, true
	}
	return 0, true
}

func comparePre(x, y string) int {
	nx, ex := strconv.ParseUint(x, 10, 64)
	ny, ey := strconv.ParseUint(y, 10, 64)
	switch {
	case ex == nil && ey == nil:
		if nx < ny {
			return -1
		} else if nx > ny {
			return 1
		}
		return 0
	case ex == nil:
		return -1 // numeric identifiers sort before alphanumeric ones
	case ey == nil:
		return 1
	}
	return strings.Compare(x, y)
}

// owner is who should own the appliance's files.
type owner struct {
	uid   uint32
	label string // "sonde (uid 999)" or "the user running the audit (uid 0)"
	want  string // how Expected names it
	name  string // for chown advice
	err   error  // the user could not be looked up
}

func (a *auditor) expectedOwner() owner {
	u := a.o.ApplianceUser
	if u == "" {
		uid := os.Getuid()
		if uid < 0 {
			return owner{want: "the user running the audit", err: errors.New("this platform has no user ids")}
		}
		return owner{uid: uint32(uid), label: fmt.Sprintf("the user running the audit (uid %d)", uid),
			want: "the user running the audit", name: strconv.Itoa(uid)}
	}
	o := owner{want: u, name: u}
	uid, err := a.lookupUID(u)
	if err != nil {
		o.err = err
		return o
	}
	o.uid, o.label = uid, fmt.Sprintf("%s (uid %d)", u, uid)
	return o
}

// lookupUID finds a user's uid in Root/etc/passwd (a number is taken as a
// uid).
func (a *auditor) lookupUID(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	b, err := a.readFile("/etc/passwd", maxConfigSize)
	if err != nil {
		return 0, fmt.Errorf("looking up user %s: %w", name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			n, err := strconv.ParseUint(f[2], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("looking up user %s: uid %q in /etc/passwd is not a number", name, f[2])
			}
			return uint32(n), nil
		}
	}
	return 0, fmt.Errorf("looking up user %s: not in /etc/passwd", name)
}

// stat returns what Lstat says about p (symbolic links resolved under Root)
// and the path as the audited system sees it.
func (a *auditor) stat(p string) (fs.FileInfo, string, error) {
	p = path.Clean("/" + p)
	if r, err := a.resolve(p); err == nil {
		p = r
	}
	fi, err := os.Lstat(a.hostPath(p))
	if err != nil {
		return nil, p, unwrapPath(err)
	}
	return fi, p, nil
}

// ownerCheck compares a file's owner with the expected one: "" when it
// matches, or what is wrong; unknown is set when it cannot tell.
func ownerCheck(fi fs.FileInfo, own owner) (problem string, unknown string) {
	if own.err != nil {
		return "", own.err.Error()
	}
	uid, ok := fileOwner(fi)
	if !ok {
		return "", "this platform does not say who owns a file"
	}
	if uid != own.uid {
		return fmt.Sprintf("owned by uid %d, not %s", uid, own.label), ""
	}
	return "", ""
}

// privateFile checks that the vault or its key file is 0600 or stricter
// and owned by the appliance user. It never opens the file.
func (a *auditor) privateFile(name, what, p, severity string, own owner) Finding {
	f := Finding{Name: name, Severity: severity, Expected: fmt.Sprintf("a file with mode 0600 or stricter, owned by %s", own.want)}
	if p == "" {
		f.Status, f.Advice = Unknown, "give the audit the path of the "+what
		f.Observed = "the audit was not told where the " + what + " is"
		if name == "sonde.key_file" {
			f.Observed += " (a vault sealed by a passphrase has no key file)"
		}
		return f
	}
	fi, shown, err := a.stat(p)
	f.Source = shown
	if err != nil {
		f.Status, f.Advice = Unknown, "start the appliance once (it creates the "+what+"), then run the audit again"
		f.Observed = fmt.Sprintf("cannot stat %s: %v", shown, err)
		return f
	}
	if !fi.Mode().IsRegular() {
		f.Status, f.Observed = Fail, fmt.Sprintf("%s is not a regular file (%s)", shown, fi.Mode().Type())
		f.Advice = "restore the " + what + " from a backup: the appliance cannot use it"
		return f
	}
	perm := fi.Mode().Perm()
	var problems, advice []string
	if perm&0o077 != 0 {
		problems = append(problems, fmt.Sprintf("mode %04o lets %s access it", perm, others(perm)))
		advice = append(advice, "`chmod 600 "+shellQuote(shown)+"`")
	}
	problem, unknown := ownerCheck(fi, own)
	if problem != "" {
		problems = append(problems, problem)
		advice = append(advice, "`chown "+shellQuote(own.name)+" "+shellQuote(shown)+"`")
	}
	switch {
	case len(problems) > 0:
		f.Status = Fail
		f.Observed = shown + ": " + strings.Join(problems, "; ")
		f.Advice = "run " + strings.Join(advice, " and ") + "; then check who else could have read it and rotate the credentials if in doubt"
	case unknown != "":
		f.Status, f.Advice = Unknown, "check the owner with `ls -l "+shellQuote(shown)+"`"
		f.Observed = fmt.Sprintf("%s: mode %04o; owner not checked: %s", shown, perm, unknown)
	default:
		f.Status, f.Advice = Pass, "none"
		f.Observed = fmt.Sprintf("%s: mode %04o, owned by %s", shown, perm, own.want)
	}
	return f
}

// others says who besides the owner a mode lets in.
func others(perm fs.FileMode) string {
	switch {
	case perm&0o070 != 0 && perm&0o007 != 0:
		return "its group and everybody"
	case perm&0o070 != 0:
		return "its group"
	}
	return "everybody"
}

// dataDirFinding checks the data directory: 0700 or 0750 (no write for the
// group, nothing for others), owned by the appliance user. The appliance
// itself creates it 0700.
func (a *auditor) dataDirFinding(own owner) Finding {
	f := Finding{Name: "sonde.data_dir", Severity: SeverityError,
		Expected: fmt.Sprintf("a directory with mode 0700 (or 0750: no write for the group, nothing for others), owned by %s", own.want)}
	if a.o.DataDir == "" {
		f.Status, f.Observed, f.Advice = Unknown, "the audit was not told where the data directory is", "give the audit the appliance's --data directory"
		return f
	}
	fi, shown, err := a.stat(a.o.DataDir)
	f.Source = shown
	if err != nil {
		f.Status, f.Advice = Unknown, "start the appliance once (it creates the directory), then run the audit again"
		f.Observed = fmt.Sprintf("cannot stat %s: %v", shown, err)
		return f
	}
	if !fi.IsDir() {
		f.Status, f.Observed, f.Advice = Fail, shown+" is not a directory", "give the appliance a --data directory"
		return f
	}
	perm := fi.Mode().Perm()
	var problems, advice []string
	if perm&0o027 != 0 {
		problems = append(problems, fmt.Sprintf("mode %04o lets %s", perm, dirAccess(perm)))
		advice = append(advice, "`chmod 700 "+shellQuote(shown)+"`")
	}
	problem, unknown := ownerCheck(fi, own)
	if problem != "" {
		problems = append(problems, problem)
		advice = append(advice, "`chown "+shellQuote(own.name)+" "+shellQuote(shown)+"`")
	}
	switch {
	case len(problems) > 0:
		f.Status = Fail
		f.Observed = shown + ": " + strings.Join(problems, "; ")
		f.Advice = "run " + strings.Join(advice, " and ")
	case unknown != "":
		f.Status, f.Advice = Unknown, "check the owner with `ls -ld "+shellQuote(shown)+"`"
		f.Observed = fmt.Sprintf("%s: mode %04o; owner not checked: %s", shown, perm, unknown)
	default:
		f.Status, f.Advice = Pass, "none"
		f.Observed = fmt.Sprintf("%s: mode %04o, owned by %s", shown, perm, own.want)
	}
	return f
}

func dirAccess(perm fs.FileMode) string {
	var s []string
	if perm&0o020 != 0 {
		s = append(s, "its group create and delete files")
	}
	if perm&0o007 != 0 {
		s = append(s, "everybody in")
	}
	return strings.Join(s, " and ")
}

// credentialFindings reports each credential not rotated within the
// policy, or one passing finding when all are fresh. Only names and ages.
func (a *auditor) credentialFindings() []Finding {
	days := a.o.RotationDays
	expected := fmt.Sprintf("every credential rotated within %d days", days)
	if a.o.CredentialsErr != nil {
		return []Finding{{Name: "sonde.credentials_rotated", Status: Unknown, Severity: SeverityWarning,
			Observed: "cannot list the vault's credentials: " + a.o.CredentialsErr.Error(),
			Expected: expected, Advice: "check that the vault opens (`sonde-appliance vault list`)"}}
	}
	creds := append([]CredentialAge(nil), a.o.Credentials...)
	sort.SliceStable(creds, func(i, j int) bool { return creds[i].Name < creds[j].Name })
	limit := time.Duration(days) * 24 * time.Hour
	var out []Finding
	oldest, oldestName := time.Duration(0), ""
	for _, c := range creds {
		name := "sonde.credential_rotation." + itemSafe(c.Name)
		if c.RotatedAt.IsZero() {
			out = append(out, Finding{Name: name, Status: Unknown, Severity: SeverityWarning,
				Observed: fmt.Sprintf("credential %s has no rotation date", c.Name), Expected: expected,
				Advice: fmt.Sprintf("rotate it: `sonde-appliance vault rotate %s`", shellQuote(c.Name))})
			continue
		}
		age := a.o.Now.Sub(c.RotatedAt)
		if age < 0 {
			age = 0 // rotated "in the future": a clock was off; it is fresh
		}
		if age > limit {
			out = append(out, Finding{Name: name, Status: Fail, Severity: SeverityWarning,
				Observed: fmt.Sprintf("credential %s was last rotated %d days ago, on %s", c.Name, int(age.Hours()/24), c.RotatedAt.UTC().Format(time.DateOnly)),
				Expected: expected,
				Advice:   fmt.Sprintf("change it on the device or service that uses it, then store the new value with `sonde-appliance vault rotate %s`", shellQuote(c.Name))})
			continue
		}
		if oldestName == "" || age > oldest {
			oldest, oldestName = age, c.Name
		}
	}
	if len(out) > 0 {
		return out
	}
	f := Finding{Name: "sonde.credentials_rotated", Status: Pass, Severity: SeverityWarning, Expected: expected, Advice: "none"}
	if len(creds) == 0 {
		f.Observed = "the vault holds no credentials"
	} else {
		f.Observed = fmt.Sprintf("%d credentials, all rotated within %d days; the oldest, %s, %d days ago", len(creds), days, oldestName, int(oldest.Hours()/24))
	}
	return []Finding{f}
}

// itemSafe keeps a credential name usable in an item name (vault names
// already are: letters, digits, '.', '_', '-').
func itemSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "_"
	}
	return s
}
