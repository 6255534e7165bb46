package hardening

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/alert/expr"
	"github.com/sonde-monitoring/sonde/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// now is the fake clock of every test.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// noCommands is the runner of fixture tests: Audit must not run anything
// for a root other than "/".
func noCommands(t *testing.T) func(context.Context, string, ...string) ([]byte, error) {
	return func(_ context.Context, name string, args ...string) ([]byte, error) {
		t.Errorf("ran %s %v for a fixture root", name, args)
		return nil, errors.New("no commands in tests")
	}
}

// copyTree copies a fixture to dst, keeping symbolic links as links.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a file under root, creating its directory.
func writeFile(t *testing.T, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, root, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(filepath.Join(root, filepath.FromSlash(p)), mode); err != nil {
		t.Fatal(err)
	}
}

// applianceUser writes Root/etc/passwd with a "sonde" user whose uid is the
// test's own, so ownership checks pass whoever runs the tests.
func applianceUser(t *testing.T, root string) {
	writeFile(t, root, "/etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\nsonde:x:%d:%d:Sonde appliance:/var/lib/sonde-appliance:/usr/sbin/nologin\n", os.Getuid(), os.Getgid()))
}

const dataDir = "/var/lib/sonde-appliance"

// fixtures are the golden tests: a tree under testdata (copied to a
// temporary directory, where setup sets modes and generates files) and the
// options of the audit.
var fixtures = []struct {
	name  string
	setup func(t *testing.T, root string)
	opts  Options
}{
	{
		name: "hardened",
		setup: func(t *testing.T, root string) {
			applianceUser(t, root)
			chmod(t, root, dataDir, 0o700)
			chmod(t, root, dataDir+"/vault", 0o600)
			chmod(t, root, dataDir+"/key", 0o400)
		},
		opts: Options{
			DataDir: dataDir, VaultFile: dataDir + "/vault", KeyFile: dataDir + "/key", ApplianceUser: "sonde",
			Version: "1.4.2", LatestVersion: "1.4.2",
			Credentials: []CredentialAge{
				{Name: "snmp-core", RotatedAt: now.AddDate(0, 0, -30)},
				{Name: "http-grafana", RotatedAt: now.AddDate(0, 0, -89)},
			},
		},
	},
	{
		name: "debian-default",
		setup: func(t *testing.T, root string) {
			applianceUser(t, root)
			chmod(t, root, dataDir, 0o755)
			chmod(t, root, dataDir+"/vault", 0o644)
			chmod(t, root, dataDir+"/key", 0o600)
		},
		opts: Options{
			DataDir: dataDir, VaultFile: dataDir + "/vault", KeyFile: dataDir + "/key", ApplianceUser: "sonde",
			Version: "1.2.0", LatestVersion: "1.3.0",
			Credentials: []CredentialAge{
				{Name: "snmp-core", RotatedAt: now.AddDate(0, 0, -200)},
				{Name: "http-grafana", RotatedAt: now.AddDate(0, 0, -10)},
				{Name: "legacy-token"},
			},
		},
	},
	{name: "include-order", opts: Options{Version: "1.3.0", LatestVersion: "1.3.0"}},
	{name: "first-value-wins", opts: Options{Version: "v1.3.0-rc.1", LatestVersion: "1.3.0"}},
	{name: "match-blocks", opts: Options{Version: "1.2.0", LatestVersion: "1.3.0", PinnedVersion: "1.2.0"}},
	{name: "include-loop", opts: Options{Version: "dev", LatestVersion: "1.3.0"}},
	{
		// A file larger than the audit reads, generated rather than kept
		// in git.
		name: "huge-file",
		setup: func(t *testing.T, root string) {
			var b strings.Builder
			b.WriteString("PasswordAuthentication no\n")
			for b.Len() <= maxConfigSize {
				b.WriteString("# padding padding padding padding padding padding padding padding\n")
			}
			writeFile(t, root, sshdConfigPath, b.String())
		},
		opts: Options{Version: "1.3.0"},
	},
	{
		// As root, chmod 000 does not stop reading: a directory where
		// sshd expects a file stands in (TestUnreadableChmod covers chmod
		// when not root).
		name: "unreadable",
		setup: func(t *testing.T, root string) {
			p := filepath.Join(root, "etc/ssh/sshd_config.d/10-site.conf")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, root, dataDir+"/vault", 0o600)
		},
		opts: Options{DataDir: dataDir, VaultFile: dataDir + "/vault", Version: "1.3.0", LatestVersion: "1.3.0",
			CredentialsErr: errors.New("opening vault /var/lib/sonde-appliance/vault: cannot be opened")},
	},
}

func TestFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			root := t.TempDir()
			if src := filepath.Join("testdata", fx.name); dirExists(src) {
				copyTree(t, src, root)
			}
			if fx.setup != nil {
				fx.setup(t, root)
			}
			o := fx.opts
			o.Root, o.Now, o.Run = root, now, noCommands(t)
			got := Audit(context.Background(), o)
			checkFindings(t, got)
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			if bytes.Contains(b, []byte(root)) {
				t.Errorf("the findings name the temporary root %s instead of the audited paths", root)
			}
			golden := filepath.Join("testdata", "golden", fx.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("findings differ from %s (run go test -update and review the diff):\n%s", golden, b)
			}
		})
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// checkFindings checks what every audit must give: unique names, a known
// status and severity, and text an operator can act on.
func checkFindings(t *testing.T, fs []Finding) {
	t.Helper()
	seen := map[string]bool{}
	severities := map[string]bool{SeverityCritical: true, SeverityError: true, SeverityWarning: true, SeverityNotice: true, SeverityInfo: true}
	for _, f := range fs {
		if seen[f.Name] {
			t.Errorf("finding %s appears twice", f.Name)
		}
		seen[f.Name] = true
		if f.Status != Pass && f.Status != Fail && f.Status != Unknown {
			t.Errorf("%s: status %q", f.Name, f.Status)
		}
		if !severities[f.Severity] {
			t.Errorf("%s: severity %q", f.Name, f.Severity)
		}
		if f.Observed == "" || f.Expected == "" || f.Advice == "" {
			t.Errorf("%s: empty text: %+v", f.Name, f)
		}
		if f.Status == Fail && f.Advice == "none" {
			t.Errorf("%s fails without advice", f.Name)
		}
	}
}

// byName indexes findings by name.
func byName(fs []Finding) map[string]Finding {
	m := make(map[string]Finding, len(fs))
	for _, f := range fs {
		m[f.Name] = f
	}
	return m
}

// TestFixtureStatuses states what each golden file must say, so that an
// -update that changes a verdict is caught in review.
func TestFixtureStatuses(t *testing.T) {
	want := map[string]map[string]Status{
		"hardened": {},
		"debian-default": {
			"ssh.password_authentication": Fail, "ssh.kbd_interactive_authentication": Pass, "ssh.permit_root_login": Fail,
			"ssh.idle_timeout": Fail, "ssh.access_limited": Fail, "ssh.max_auth_tries": Fail, "ssh.login_grace_time": Fail,
			"ssh.throttling": Fail, "os.security_updates": Unknown, "os.unattended_upgrades": Fail, "os.reboot_required": Fail,
			"disk.data_encrypted": Fail, "sonde.version": Fail, "sonde.data_dir": Fail, "sonde.vault_file": Fail, "sonde.key_file": Pass,
			"sonde.credential_rotation.snmp-core": Fail, "sonde.credential_rotation.legacy-token": Unknown,
		},
		"include-order":    {"ssh.password_authentication": Fail, "ssh.permit_root_login": Pass, "ssh.max_auth_tries": Pass},
		"first-value-wins": {"ssh.password_authentication": Pass, "ssh.permit_root_login": Pass, "ssh.max_auth_tries": Pass, "ssh.kbd_interactive_authentication": Pass, "ssh.permit_empty_passwords": Pass, "ssh.protocol": Fail, "ssh.login_grace_time": Fail, "ssh.idle_timeout": Fail, "ssh.access_limited": Pass, "sonde.version": Fail},
		"match-blocks": {
			"ssh.password_authentication": Pass, "ssh.idle_timeout": Pass, "ssh.access_limited": Pass,
			"ssh.match.1.password_authentication": Fail, "ssh.match.2.permit_root_login": Fail, "ssh.match.2.max_auth_tries": Fail,
			"ssh.match.4.permit_empty_passwords": Fail, "ssh.match.4.idle_timeout": Fail, "sonde.version": Pass,
		},
		"include-loop": {"ssh.password_authentication": Unknown, "sonde.version": Unknown},
		"huge-file":    {"ssh.password_authentication": Unknown, "ssh.throttling": Fail},
		"unreadable":   {"ssh.password_authentication": Unknown, "sonde.vault_file": Pass, "sonde.key_file": Unknown, "sonde.credentials_rotated": Unknown},
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "golden", fx.name+".json"))
			if err != nil {
				t.Skipf("no golden file yet: %v", err)
			}
			var got []Finding
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			m := byName(got)
			if fx.name == "hardened" {
				for _, f := range got {
					if f.Status != Pass {
						t.Errorf("%s is %s in the hardened fixture: %s", f.Name, f.Status, f.Observed)
					}
				}
			}
			for name, st := range want[fx.name] {
				if f, ok := m[name]; !ok {
					t.Errorf("no finding %s", name)
				} else if f.Status != st {
					t.Errorf("%s is %s, want %s: %s", name, f.Status, st, f.Observed)
				}
			}
			if fx.name == "match-blocks" {
				if _, ok := m["ssh.match.3.password_authentication"]; ok {
					t.Error("a Match block setting a stricter value is reported")
				}
			}
		})
	}
}

// TestUnreadableChmod covers a file sshd cannot read because of its mode,
// which only denies reading when the tests do not run as root.
func TestUnreadableChmod(t *testing.T) {
	root := t.TempDir()
	copyTree(t, filepath.Join("testdata", "unreadable"), root)
	chmod(t, root, "/etc/ssh/sshd_config.d/10-site.conf", 0)
	if _, err := os.ReadFile(filepath.Join(root, "etc/ssh/sshd_config.d/10-site.conf")); err == nil {
		t.Skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not deny reading; the unreadable fixture simulates it with a directory instead")
	}
	f := byName(Audit(context.Background(), Options{Root: root, Now: now, Run: noCommands(t)}))["ssh.password_authentication"]
	if f.Status != Unknown || !strings.Contains(f.Observed, "permission denied") || !strings.Contains(f.Observed, "/etc/ssh/sshd_config.d/10-site.conf") {
		t.Errorf("got %+v, want unknown naming the file and the permission error", f)
	}
}

func TestItems(t *testing.T) {
	fs := []Finding{
		{Name: "ssh.password_authentication", Status: Fail, Severity: SeverityError, Observed: "PasswordAuthentication yes", Expected: "PasswordAuthentication no", Advice: "change it", Source: "/etc/ssh/sshd_config:3"},
		{Name: "os.reboot_required", Status: Pass, Severity: SeverityWarning, Observed: "no /run/reboot-required", Expected: "no reboot pending", Advice: "none"},
		{Name: "disk.data_encrypted", Status: Unknown, Severity: SeverityWarning, Observed: "data on tmpfs", Expected: "encrypted", Advice: "move it"},
	}
	items := Items(fs)
	body, err := json.Marshal(map[string]any{"data": map[string]any{Type: items}})
	if err != nil {
		t.Fatal(err)
	}
	// The hub decodes them as check data…
	cd, err := model.DecodeCheckData(bytes.NewReader(body), model.Limits{})
	if err != nil {
		t.Fatalf("the hub refuses the items: %v\n%s", err, body)
	}
	if len(cd.Types) != 1 || cd.Types[0].Name != "hardening" || len(cd.Types[0].Items) != 3 {
		t.Fatalf("decoded %+v", cd.Types)
	}
	// …and a condition on the status alerts on the failing item only.
	cond, err := expr.Parse(`item.status == "fail"`)
	if err != nil {
		t.Fatal(err)
	}
	count, err := expr.Parse(`item.failed == 1 and item.ok == 0`)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range cd.Types[0].Items {
		if it.Name != fs[i].Name {
			t.Errorf("item %d is %s, want %s", i, it.Name, fs[i].Name)
		}
		for _, c := range []*expr.Expr{cond, count} {
			r, err := c.Eval(&expr.Env{Item: expr.ItemMetrics(it.Metrics), Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if want := fs[i].Status == Fail; (r == expr.True) != want {
				t.Errorf("%s: condition gives %v", it.Name, r)
			}
		}
	}
	if got := items[0]["source"]; got != "/etc/ssh/sshd_config:3" {
		t.Errorf("source = %v", got)
	}
}

func TestAuditCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := Audit(ctx, Options{Root: t.TempDir(), Now: now, Run: noCommands(t)})
	if len(got) != 4 {
		t.Fatalf("got %d findings, want one per group: %+v", len(got), got)
	}
	for _, f := range got {
		if f.Status != Unknown || !strings.HasSuffix(f.Name, ".audit") {
			t.Errorf("got %+v", f)
		}
	}
}

func TestGuard(t *testing.T) {
	got := guard(context.Background(), "disk", func(context.Context) []Finding { panic("boom") })
	if len(got) != 1 || got[0].Status != Unknown || !strings.Contains(got[0].Observed, "boom") {
		t.Errorf("got %+v", got)
	}
}

func TestFinish(t *testing.T) {
	got := finish([]Finding{{Name: "a", Observed: "x\x1b[31m"}, {Name: "a"}, {Name: "a", Advice: strings.Repeat("é", maxText)}})
	if got[1].Name != "a#2" || got[2].Name != "a#3" {
		t.Errorf("names %s %s", got[1].Name, got[2].Name)
	}
	if got[0].Observed != "x?[31m" {
		t.Errorf("control character kept: %q", got[0].Observed)
	}
	if len(got[2].Advice) > maxText || !strings.HasSuffix(got[2].Advice, "…") {
		t.Errorf("advice not clipped: %d bytes", len(got[2].Advice))
	}
}

// TestCommandTimeout checks that every command run gets the 5 s deadline
// and that a command overrunning it is reported, not waited for.
func TestCommandTimeout(t *testing.T) {
	a := newAuditor(Options{Root: t.TempDir(), Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > commandTimeout {
			t.Errorf("%s runs without the %v deadline", name, commandTimeout)
		}
		return []byte("partial"), nil
	}})
	if _, err := a.command(context.Background(), "sshd", "-T"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a.run = func(context.Context, string, ...string) ([]byte, error) { return nil, nil }
	if _, err := a.command(ctx, "apt-get"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the context's", err)
	}
}

// TestRunCommand runs real commands through the default runner.
func TestRunCommand(t *testing.T) {
	out, err := runCommand(context.Background(), "sh", "-c", "echo $LC_ALL; echo oops >&2")
	if err != nil || strings.TrimSpace(string(out)) != "C" {
		t.Errorf("out %q, err %v", out, err)
	}
	_, err = runCommand(context.Background(), "sh", "-c", "echo broken >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("err = %v, want the command's message", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := runCommand(ctx, "sleep", "10"); err == nil {
		t.Error("no error from a command past its deadline")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a command past its deadline took %v", d)
	}
	out, _ = runCommand(context.Background(), "sh", "-c", "head -c "+strconv.Itoa(maxOutput+1000)+" /dev/zero")
	if len(out) != maxOutput {
		t.Errorf("kept %d bytes of output, want %d", len(out), maxOutput)
	}
}

// TestAuditRunningSystem audits the machine the tests run on, through the
// real command runner: whatever it finds, it must not panic and must give
// well-formed findings.
func TestAuditRunningSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the audit of the running system runs commands")
	}
	got := Audit(context.Background(), Options{DataDir: t.TempDir(), Version: "1.0.0"})
	checkFindings(t, got)
	for _, f := range got {
		t.Logf("%-40s %-7s %s", f.Name, f.Status, f.Observed)
	}
}
