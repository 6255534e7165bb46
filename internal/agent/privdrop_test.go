package agent

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("SONDE_AGENT_DROP_CHILD"); dir != "" {
		dropChild(dir)
		return
	}
	os.Exit(m.Run())
}

// dropChild runs in a child process: it drops to "nobody" and reports
// what it can still do.
func dropChild(dir string) {
	dropped, err := DropPrivileges("nobody", filepath.Join(dir, "state"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("dropped=%v uid=%d euid=%d gid=%d\n", dropped, os.Getuid(), os.Geteuid(), os.Getgid())
	if groups, _ := syscall.Getgroups(); len(groups) > 0 {
		fmt.Println("groups:", groups)
	}
	if err := os.WriteFile(filepath.Join(dir, "state", "probe"), []byte("x"), 0o600); err != nil {
		fmt.Println("state dir not writable:", err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "root-only")); err == nil {
		fmt.Println("read a root-only file")
	}
	if err := os.WriteFile(filepath.Join(dir, "outside"), []byte("x"), 0o600); err == nil {
		fmt.Println("wrote outside the state dir")
	}
}

// TestDropPrivileges starts a child as root, lets it drop to nobody, and
// checks what it can still do. It needs root (CI runs as root).
func TestDropPrivileges(t *testing.T) {
	needRoot(t)
	if _, err := user.Lookup("nobody"); err != nil {
		t.Fatalf("the test needs the user nobody: %v", err)
	}
	dir := t.TempDir()
	// The child (as nobody) must reach the state dir below dir.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "root-only"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SONDE_AGENT_DROP_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	u, _ := user.Lookup("nobody")
	want := fmt.Sprintf("dropped=true uid=%s euid=%s gid=%s\n", u.Uid, u.Uid, u.Gid)
	if string(out) != want {
		t.Errorf("child reported:\n%s\nwant only:\n%s", out, want)
	}
	if strings.Contains(string(out), "error") {
		t.Error(string(out))
	}
}

func TestDropPrivilegesUnknownUser(t *testing.T) {
	needRoot(t)
	_, err := DropPrivileges("no-such-user-sonde", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "useradd") {
		t.Errorf("DropPrivileges with an unknown user = %v, want advice to create it", err)
	}
}

// TestHandOverLeavesLinksAlone: what the unprivileged user planted in the
// state directory (a hard link to a root file, a symbolic link) is never
// given to it.
func TestHandOverLeavesLinksAlone(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.MkdirAll(filepath.Join(state, "spool"), 0o700)
	secretFile := filepath.Join(dir, "shadow")
	os.WriteFile(secretFile, []byte("root:x"), 0o600)
	if err := os.Link(secretFile, filepath.Join(state, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secretFile, filepath.Join(state, "soft")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(state, "spool", "own"), []byte("x"), 0o600)
	if err := handOver(state, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	owner := func(p string) uint32 {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Uid
	}
	if owner(secretFile) != 0 {
		t.Error("a hard-linked root file was given away")
	}
	if owner(filepath.Join(state, "soft")) != 0 {
		t.Error("a symbolic link was given away")
	}
	if owner(state) != 65534 || owner(filepath.Join(state, "spool", "own")) != 65534 {
		t.Error("the agent's own files were not handed over")
	}
	// A link in place of the state directory is refused.
	link := filepath.Join(dir, "link")
	os.Symlink(dir, link)
	if err := handOver(link, 65534, 65534); err == nil {
		t.Error("a state directory that is a link was accepted")
	}
}

// needRoot skips a test that changes owners or users when not run as
// root, except under CI, which runs as root: there it fails.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, and CI runs as root")
	}
	t.Skip("needs root: it changes owners and users")
}
