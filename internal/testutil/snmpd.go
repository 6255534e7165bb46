//go:build linux

package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// SNMPv3User is one USM user of a test snmpd. The protocols use net-snmp's
// spelling in createUser lines: "SHA", "SHA-224", "SHA-256", "SHA-384",
// "SHA-512" for authentication, "AES", "AES-192", "AES-256" for privacy.
type SNMPv3User struct {
	Name string
	// AuthProtocol defaults to "SHA".
	AuthProtocol string
	AuthPass     string
	// PrivProtocol defaults to "AES". NoPriv makes an authNoPriv user.
	PrivProtocol string
	PrivPass     string
	NoPriv       bool
}

// SNMPDOptions configures StartSNMPD. The zero value gives an agent with a
// random v2c community and one random authPriv SHA/AES v3 user, both limited
// to a read-only view of mib-2 (.1.3.6.1.2.1).
type SNMPDOptions struct {
	// Community is the v2c read-only community, accepted from 127.0.0.1
	// only. Empty means a random one.
	Community string
	// Users are the v3 users. Nil means one random authPriv SHA/AES user;
	// empty passphrases or names of a given user are made random.
	Users []SNMPv3User
	// View lists the OID subtrees the community and the users may read.
	// Nil means mib-2.
	View []string
	// ExtraConfig is appended to the generated snmpd.conf.
	ExtraConfig string
}

// SNMPD is a running snmpd started by StartSNMPD. It is stopped when the
// test ends.
type SNMPD struct {
	// Addr is "127.0.0.1:PORT" (UDP); Host and Port are its parts.
	Addr string
	Host string
	Port int
	// Community is the v2c read-only community.
	Community string
	// Users are the v3 users, with their passphrases filled in; V3User is
	// the first of them.
	Users  []SNMPv3User
	V3User SNMPv3User
	// Dir holds snmpd.conf, the log and the persistent state.
	Dir string

	logPath string
}

// Log returns what snmpd logged so far, for failure messages.
func (s *SNMPD) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logPath, err)
	}
	return string(b)
}

// snmpdPath finds Debian's snmpd, which lives in /usr/sbin (often not on a
// non-root user's PATH).
func snmpdPath() (string, error) {
	if p, err := exec.LookPath("snmpd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/snmpd", "/usr/local/sbin/snmpd"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("snmpd not found")
}

// RequireSNMPD returns the path of snmpd. When it is not installed the test
// fails under CI=true and is skipped elsewhere.
func RequireSNMPD(t testing.TB) string {
	t.Helper()
	p, err := snmpdPath()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: CI must have Debian's snmpd package (apt-get install snmpd)", err)
		}
		t.Skipf("%v: install Debian's snmpd package (apt-get install snmpd) to run this test", err)
	}
	return p
}

// StartSNMPD starts Debian's net-snmp snmpd on 127.0.0.1 at a free UDP port
// with a generated configuration in a temporary directory, waits until it
// answers, and stops it when the test ends. Without snmpd the test fails
// under CI=true and is skipped elsewhere.
func StartSNMPD(t testing.TB, opts SNMPDOptions) *SNMPD {
	t.Helper()
	bin := RequireSNMPD(t)

	s := &SNMPD{Host: "127.0.0.1", Community: opts.Community, Dir: t.TempDir()}
	if s.Community == "" {
		s.Community = "community-" + randomHex(t, 8)
	}
	users := opts.Users
	if users == nil {
		users = []SNMPv3User{{}}
	}
	for _, u := range users {
		if u.Name == "" {
			u.Name = "user-" + randomHex(t, 4)
		}
		if u.AuthProtocol == "" {
			u.AuthProtocol = "SHA"
		}
		if u.AuthPass == "" {
			u.AuthPass = "auth-" + randomHex(t, 8)
		}
		if !u.NoPriv {
			if u.PrivProtocol == "" {
				u.PrivProtocol = "AES"
			}
			if u.PrivPass == "" {
				u.PrivPass = "priv-" + randomHex(t, 8)
			}
		}
		s.Users = append(s.Users, u)
	}
	if len(s.Users) > 0 {
		s.V3User = s.Users[0]
	}
	view := opts.View
	if view == nil {
		view = []string{".1.3.6.1.2.1"}
	}
	conf, err := snmpdConf(s, view, opts.ExtraConfig)
	if err != nil {
		t.Fatalf("snmpd configuration: %v", err)
	}
	confPath := filepath.Join(s.Dir, "snmpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	persist := filepath.Join(s.Dir, "persist")
	mibs := filepath.Join(s.Dir, "mibs")
	for _, d := range []string{persist, mibs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.logPath = filepath.Join(s.Dir, "snmpd.log")

	// The port is picked by binding it and letting it go, so another
	// process may take it before snmpd does: try a few times.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freeUDPPort()
		if err != nil {
			t.Fatal(err)
		}
		s.Port = port
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
		p, err := startSNMPDProcess(bin, confPath, persist, mibs, s.logPath, s.Addr)
		if err != nil {
			t.Fatalf("starting snmpd: %v", err)
		}
		if lastErr = waitSNMPD(s, p); lastErr == nil {
			t.Cleanup(p.stop)
			return s
		}
		p.stop()
	}
	t.Fatalf("snmpd did not start: %v\nlog:\n%s", lastErr, s.Log())
	return nil
}

// snmpdConf writes the configuration: a read-only community bound to
// 127.0.0.1 and the v3 users, all limited to view. Passphrases are quoted,
// so they must not hold quotes or line breaks.
func snmpdConf(s *SNMPD, view []string, extra string) (string, error) {
	var b strings.Builder
	b.WriteString("# generated by testutil.StartSNMPD\n")
	b.WriteString("dontLogTCPWrappersConnects yes\n")
	for _, oid := range view {
		fmt.Fprintf(&b, "view sondeview included %s\n", oid)
	}
	if err := confWord(s.Community); err != nil {
		return "", fmt.Errorf("community: %w", err)
	}
	fmt.Fprintf(&b, "rocommunity %s 127.0.0.1 -V sondeview\n", s.Community)
	for _, u := range s.Users {
		for _, w := range []string{u.Name, u.AuthProtocol, u.AuthPass, u.PrivProtocol, u.PrivPass} {
			if err := confWord(w); err != nil && w != "" {
				return "", fmt.Errorf("user %s: %w", u.Name, err)
			}
		}
		if u.NoPriv {
			fmt.Fprintf(&b, "createUser %s %s %q\n", u.Name, u.AuthProtocol, u.AuthPass)
			fmt.Fprintf(&b, "rouser %s auth -V sondeview\n", u.Name)
			continue
		}
		fmt.Fprintf(&b, "createUser %s %s %q %s %q\n", u.Name, u.AuthProtocol, u.AuthPass, u.PrivProtocol, u.PrivPass)
		fmt.Fprintf(&b, "rouser %s priv -V sondeview\n", u.Name)
	}
	if extra != "" {
		b.WriteString(extra)
		b.WriteString("\n")
	}
	return b.String(), nil
}

// confWord refuses what would break a line of snmpd.conf.
func confWord(w string) error {
	if w == "" || strings.ContainsAny(w, "\"'\\ \t\r\n#") {
		return fmt.Errorf("%q must be non-empty, without spaces, quotes, backslashes or '#'", w)
	}
	return nil
}

// snmpdProcess is a started snmpd; exited receives its Wait result once.
type snmpdProcess struct {
	cmd    *exec.Cmd
	exited chan error
}

func startSNMPDProcess(bin, conf, persist, mibs, logPath, addr string) (*snmpdProcess, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) // #nosec G304 -- a path in the test's own t.TempDir()
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// -f: foreground; -C -c: only this configuration file (not
	// /etc/snmp); -Lf: log to a file; -M: an empty MIB directory (no MIB is
	// needed: the configuration uses numeric OIDs).
	cmd := exec.Command(bin, "-f", "-C", "-c", conf, "-Lf", logPath, "-M", mibs, "udp:"+addr) // #nosec G204 -- test helper: bin is snmpd, the arguments are generated
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+persist, "MIBS=", "SNMPCONFPATH="+filepath.Dir(conf))
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// If the test binary dies without running its cleanups (a -timeout
	// panic), the kernel stops snmpd too. The signal is tied to the thread
	// that starts the process, so keep that thread for the goroutine
	// while it does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &snmpdProcess{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// waitSNMPD polls the agent with a v2c GET of sysUpTime.0 until it answers
// (at most 10 s), or snmpd exits.
func waitSNMPD(s *SNMPD, p *snmpdProcess) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			p.exited <- err
			return fmt.Errorf("snmpd exited: %v", err)
		default:
		}
		g := &gosnmp.GoSNMP{
			Target:    s.Host,
			Port:      uint16(s.Port), // #nosec G115 -- a port from the kernel
			Community: s.Community,
			Version:   gosnmp.Version2c,
			Timeout:   200 * time.Millisecond,
			Retries:   0,
		}
		if err := g.Connect(); err != nil {
			return err
		}
		_, err := g.Get([]string{".1.3.6.1.2.1.1.3.0"})
		g.Close()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("no answer within 10 s")
}

// stop sends SIGTERM to snmpd and waits for it to exit, killing it after
// 5 s.
func (p *snmpdProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
