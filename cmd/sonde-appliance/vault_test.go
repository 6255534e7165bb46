package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/vault"
)

// Values used in these tests; none may ever be printed or stored in plain
// text.
const (
	webValue     = "Web-Value-4f1c9e"
	webRotated   = "Web-Rotated-77a0d2"
	snmpValue    = "Snmp-Community-31be5"
	argValue     = "Arg-Value-c0ffee"
	passphrase   = "the appliance passphrase"
	wrongPass    = "not the appliance passphrase"
	newPassValue = "the new appliance passphrase"
)

var allValues = []string{webValue, webRotated, snmpValue, argValue}

// cliOutput collects what every run printed, to look for values at the end.
type cliOutput struct{ all strings.Builder }

func (o *cliOutput) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := vaultMain(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	o.all.WriteString(stdout.String())
	o.all.WriteString(stderr.String())
	return code, stdout.String(), stderr.String()
}

func writeSecretFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertNoValues looks for the values in the collected output and in every
// file of the data dir.
func assertNoValues(t *testing.T, out *cliOutput, dir string) {
	t.Helper()
	hay := map[string]string{"output": out.all.String()}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		hay[e.Name()] = string(b)
	}
	for where, h := range hay {
		for _, v := range allValues {
			if strings.Contains(h, v) {
				t.Errorf("%s holds the value %s in plain text", where, v)
			}
		}
	}
}

func TestVaultCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out := &cliOutput{}
	data := []string{"--data", dir}
	with := func(args ...string) []string { return append(args, data...) }

	steps := []struct {
		desc       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"list before the vault exists", "", with("list"), 1, nil, []string{"does not exist"}},
		{"set from stdin", webValue + "\n", with("set", "web", "--username", "admin"), 0,
			[]string{"added credential web (password)", "hosts: none"},
			[]string{`note: credential web has no hosts, so no probe will send it anywhere; set them with "sonde-appliance vault hosts web LIST"`}},
		{"set with flags first and hosts", snmpValue, []string{"set", "--data", dir, "--kind", "snmp-community", "--hosts", "10.1.0.0/16, Core.Corp.", "core-switches"}, 0,
			[]string{"added credential core-switches (snmp-community)", "hosts: 10.1.0.0/16, core.corp"}, nil},
		{"empty value", "", with("set", "empty"), 1, nil, []string{"refusing an empty value"}},
		{"only a newline", "\n", with("set", "empty"), 1, nil, []string{"refusing an empty value"}},
		{"two lines", "a\nb\n", with("set", "empty"), 1, nil, []string{"line break"}},
		{"value as an argument", "", with("set", "web2", argValue), 2, nil, []string{"never from the command line"}},
		{"bad name", "x", with("set", "-x-"), 2, nil, nil},
		{"bad name chars", "x", with("set", "a/b"), 2, nil, []string{"only A-Z"}},
		{"bad kind", "x", with("set", "x", "--kind", "ssh"), 1, nil, []string{`unknown kind "ssh"`}},
		{"bad hosts", "x", with("set", "x", "--hosts", "10.0.0.1,10.1.2.3/8"), 1, nil,
			[]string{`invalid host pattern "10.1.2.3/8": bits are set beyond the /8 prefix; did you mean 10.0.0.0/8?`}},
		{"empty hosts", "x", with("set", "x", "--hosts", ""), 1, nil,
			[]string{`--hosts is empty; to remove every host of credential x, run: sonde-appliance vault hosts x ""`}},
		{"no name", "x", with("set"), 2, nil, []string{"needs the credential's NAME"}},
		{"unknown flag", "x", with("set", "x", "--value="+argValue), 2, nil, []string{"flag provided but not defined: -value"}},
		{"list", "", with("list"), 0,
			[]string{"NAME", "LAST ROTATED", "HOSTS", "core-switches  snmp-community  -", "web            password        admin",
				"  10.1.0.0/16,core.corp\n", "  none (sent nowhere)\n"}, nil},
		{"hosts", "", with("hosts", "web", "192.0.2.0/24,*.Corp"), 0, []string{"credential web in ", "may now be sent to 192.0.2.0/24, *.corp"}, nil},
		{"replace keeps the hosts", webValue, with("set", "web", "--username", "admin"), 0,
			[]string{"replaced credential web", "hosts: 192.0.2.0/24, *.corp"}, nil},
		{"hosts without a list", "", with("hosts", "web"), 2, nil, []string{"needs the LIST of hosts"}},
		{"hosts with spaces", "", with("hosts", "web", "10.0.0.1,", "10.0.0.2"), 2, nil, []string{"takes a NAME and one LIST"}},
		{"hosts without a name", "", with("hosts"), 2, nil, []string{"needs the credential's NAME"}},
		{"hosts of an unknown credential", "", with("hosts", "nope", "10.0.0.1"), 1, nil, []string{"no such credential", "vault set nope"}},
		{"hosts not a pattern", "", with("hosts", "web", "a b"), 1, nil, []string{`invalid host pattern "a b"`}},
		{"hosts removed", "", with("hosts", "core-switches", ""), 0, []string{"removed every host of credential core-switches"},
			[]string{"note: credential core-switches has no hosts"}},
		{"replace", webValue, with("set", "web", "--username", "admin", "--hosts", "web.corp"), 0, []string{"replaced credential web", "hosts: web.corp"}, nil},
		{"rotate", webRotated + "\r\n", with("rotate", "web"), 0, []string{"rotated credential web"}, nil},
		{"rotate unknown", webRotated, with("rotate", "nope"), 1, nil, []string{"no such credential", `vault set nope`}},
		{"rotate empty", "", with("rotate", "web"), 1, nil, []string{"refusing an empty value"}},
		{"rm", "", with("rm", "core-switches"), 0, []string{"removed credential core-switches"}, nil},
		{"rm again", "", with("rm", "core-switches"), 1, nil, []string{"no such credential"}},
		{"list args", "", with("list", "extra"), 2, nil, []string{"takes no arguments"}},
		{"unknown command", "", with("show"), 2, nil, []string{`unknown command "show"`}},
		{"rekey needs a target", "", with("rekey"), 1, nil, []string{"exactly one of"}},
		{"help", "", []string{"help"}, 0, []string{"IS ECHOED", "standard input", "never values", "hosts NAME LIST", "*.corp"}, nil},
		{"no command", "", nil, 2, nil, []string{"usage: sonde-appliance vault"}},
	}
	for _, st := range steps {
		code, stdout, stderr := out.run(t, st.stdin, st.args...)
		if code != st.wantCode {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", st.desc, code, st.wantCode, stdout, stderr)
		}
		for _, w := range st.wantStdout {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", st.desc, w, stdout)
			}
		}
		for _, w := range st.wantStderr {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", st.desc, w, stderr)
			}
		}
	}

	v, err := vault.Open(dir, vault.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Credential("web")
	if err != nil || c.Username != "admin" || c.Secret.Reveal() != webRotated {
		t.Errorf("web = %q/%v, %v; want the rotated value without its line break", c.Username, c.Secret.Reveal() == webRotated, err)
	}
	if c.Kind != vault.KindPassword || len(c.Hosts) != 1 || c.Hosts[0] != "web.corp" {
		t.Errorf("web is a %q with hosts %q, want a password for web.corp", c.Kind, c.Hosts)
	}
	if _, err := v.Credential("x"); err == nil {
		t.Error("a set refused for its hosts stored the credential")
	}
	if got := len(v.List()); got != 1 {
		t.Errorf("%d credentials, want 1", got)
	}
	assertNoValues(t, out, dir)
}

func TestVaultCLIPassphraseAndRekey(t *testing.T) {
	dir := t.TempDir()
	out := &cliOutput{}
	pass := writeSecretFile(t, passphrase+"\n")
	wrong := writeSecretFile(t, wrongPass)
	newPass := writeSecretFile(t, newPassValue)

	if code, _, stderr := out.run(t, webValue, "set", "web", "--data", dir, "--passphrase-file", pass); code != 0 {
		t.Fatalf("set with a passphrase: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, vault.KeyFileName)); err == nil {
		t.Error("a passphrase vault has a key file")
	}
	before, err := os.ReadFile(filepath.Join(dir, vault.FileName))
	if err != nil {
		t.Fatal(err)
	}

	wantWrong := "vault " + filepath.Join(dir, vault.FileName) + ": cannot be opened with this passphrase (wrong passphrase, or the file was altered)"
	steps := []struct {
		desc       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"list with the wrong passphrase", "", []string{"list", "--passphrase-file", wrong}, 1, "", wantWrong},
		{"set with the wrong passphrase", snmpValue, []string{"set", "snmp", "--passphrase-file", wrong}, 1, "", wantWrong},
		{"no passphrase", "", []string{"list"}, 1, "", "sealed with a passphrase"},
		{"both rekey targets", "", []string{"rekey", "--new-key-file", "--new-passphrase-file", newPass, "--passphrase-file", pass}, 1, "", "exactly one of"},
	}
	for _, st := range steps {
		code, stdout, stderr := out.run(t, st.stdin, append(st.args, "--data", dir)...)
		if code != st.wantCode || !strings.Contains(stdout, st.wantStdout) || !strings.Contains(stderr, st.wantStderr) {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d, stdout with %q, stderr with %q",
				st.desc, code, stdout, stderr, st.wantCode, st.wantStdout, st.wantStderr)
		}
		after, err := os.ReadFile(filepath.Join(dir, vault.FileName))
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("%s changed the vault file (%v)", st.desc, err)
		}
	}

	// Passphrase → new passphrase → key file. (Each passphrase use costs
	// a full Argon2id run, so the chain is kept short.)
	rekeys := []struct {
		args    []string
		thenUse []string
		want    string
	}{
		{[]string{"--passphrase-file", pass, "--new-passphrase-file", newPass}, []string{"--passphrase-file", newPass}, "sealed by the passphrase in " + newPass},
		{[]string{"--passphrase-file", newPass, "--new-key-file"}, nil, "sealed by the new key file"},
	}
	for _, rk := range rekeys {
		code, stdout, stderr := out.run(t, "", append([]string{"rekey", "--data", dir}, rk.args...)...)
		if code != 0 || !strings.Contains(stdout, rk.want) {
			t.Fatalf("rekey %v: exit %d\nstdout: %s\nstderr: %s", rk.args, code, stdout, stderr)
		}
		code, stdout, stderr = out.run(t, "", append([]string{"list", "--data", dir}, rk.thenUse...)...)
		if code != 0 || !strings.Contains(stdout, "web") {
			t.Fatalf("list after rekey %v: exit %d\nstdout: %s\nstderr: %s", rk.args, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, vault.KeyFileName)); err != nil {
		t.Errorf("no key file after rekey --new-key-file: %v", err)
	}
	if code, _, stderr := out.run(t, "", "list", "--data", dir, "--passphrase-file", newPass); code != 1 || !strings.Contains(stderr, "is sealed with the key file") {
		t.Errorf("list with the replaced passphrase: exit %d, %s", code, stderr)
	}
	assertNoValues(t, out, dir)
}
