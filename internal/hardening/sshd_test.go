package hardening

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplitSSHLine(t *testing.T) {
	tests := []struct {
		line    string
		word    string
		args    []string
		wantErr string
	}{
		{line: "", word: ""},
		{line: "   # comment", word: ""},
		{line: "PasswordAuthentication no", word: "PasswordAuthentication", args: []string{"no"}},
		{line: "\tMaxAuthTries=3\r", word: "MaxAuthTries", args: []string{"3"}},
		{line: "MaxAuthTries = 3", word: "MaxAuthTries", args: []string{"3"}},
		{line: "Banner \"/etc/my banner\" # trailing", word: "Banner", args: []string{"/etc/my banner"}},
		{line: `AllowUsers a\ b 'c d' e#f`, word: "AllowUsers", args: []string{"a b", "c d", "e#f"}},
		{line: "PermitRootLogin no #yes", word: "PermitRootLogin", args: []string{"no"}},
		{line: "PasswordAuthentication", wantErr: "no argument"},
		{line: "PasswordAuthentication # nothing", wantErr: "no argument"},
		{line: `Banner "unterminated`, wantErr: "invalid quotes"},
		{line: "=yes", wantErr: "starts with '='"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			word, args, err := splitSSHLine(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || word != tt.word || !reflect.DeepEqual(args, tt.args) {
				t.Errorf("got %q %q %v, want %q %q", word, args, err, tt.word, tt.args)
			}
		})
	}
}

func TestParseSSHTime(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false}, {"30", 30, false}, {"30s", 30, false}, {"1m", 60, false}, {"1h30m", 5400, false},
		{"2M", 120, false}, {"1w", 604800, false}, {"1d1s", 86401, false}, {"1m30", 90, false},
		{"", 0, true}, {"abc", 0, true}, {"1x", 0, true}, {"-5", 0, true}, {"99999999999999999999", 0, true},
		{"4000w", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSSHTime(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSSHTime(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// mapFS builds a filesystem of configuration files.
func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for p, c := range files {
		m[strings.TrimPrefix(p, "/")] = &fstest.MapFile{Data: []byte(c)}
	}
	return m
}

func TestParseSSHDConfig(t *testing.T) {
	deep := map[string]string{"/etc/ssh/sshd_config": "Include /etc/ssh/d1.conf\n"}
	for i := 1; i <= maxIncludeDepth+1; i++ {
		deep[fmt.Sprintf("/etc/ssh/d%d.conf", i)] = fmt.Sprintf("Include d%d.conf\n", i+1)
	}
	tests := []struct {
		name  string
		files map[string]string
		// want lists key=value@source/block for the lines read, in order.
		want    []string
		matches int
		wantErr string
	}{
		{
			name: "globs in lexical order, in place",
			files: map[string]string{
				"/etc/ssh/sshd_config":                 "A 1\nInclude /etc/ssh/sshd_config.d/*.conf\nB 2\n",
				"/etc/ssh/sshd_config.d/20-b.conf":     "C 3\n",
				"/etc/ssh/sshd_config.d/10-a.conf":     "D 4\n",
				"/etc/ssh/sshd_config.d/10-a.conf.bak": "E 5\n",
			},
			want: []string{"a=1@/etc/ssh/sshd_config:1/0", "d=4@/etc/ssh/sshd_config.d/10-a.conf:1/0", "c=3@/etc/ssh/sshd_config.d/20-b.conf:1/0", "b=2@/etc/ssh/sshd_config:3/0"},
		},
		{
			name: "relative paths under /etc/ssh, arguments in order, no match ignored",
			files: map[string]string{
				"/etc/ssh/sshd_config": "Include z.conf a.conf missing/*.conf\n",
				"/etc/ssh/z.conf":      "Z 1\n", "/etc/ssh/a.conf": "A 1\n",
			},
			want: []string{"z=1@/etc/ssh/z.conf:1/0", "a=1@/etc/ssh/a.conf:1/0"},
		},
		{
			name: "Match blocks, Match all, and a Match ending with its file",
			files: map[string]string{
				"/etc/ssh/sshd_config": "Match User x\nA 1\nInclude inc.conf\nB 2\nMatch all\nC 3\nInclude inc.conf\nD 4\n",
				"/etc/ssh/inc.conf":    "E 5\nMatch Group y\nF 6\n",
			},
			want: []string{"a=1@/etc/ssh/sshd_config:2/1", "e=5@/etc/ssh/inc.conf:1/1", "f=6@/etc/ssh/inc.conf:3/2",
				"b=2@/etc/ssh/sshd_config:4/1", "c=3@/etc/ssh/sshd_config:6/0", "e=5@/etc/ssh/inc.conf:1/0",
				"f=6@/etc/ssh/inc.conf:3/3", "d=4@/etc/ssh/sshd_config:8/0"},
			matches: 3,
		},
		{
			name:  "alias",
			files: map[string]string{"/etc/ssh/sshd_config": "ChallengeResponseAuthentication no\n"},
			want:  []string{"kbdinteractiveauthentication=no@/etc/ssh/sshd_config:1/0"},
		},
		{
			name:    "loop",
			files:   map[string]string{"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config\n"},
			wantErr: "Include loop: /etc/ssh/sshd_config includes /etc/ssh/sshd_config",
		},
		{name: "too deep", files: deep, wantErr: "nested more than 16 deep"},
		{name: "missing", files: map[string]string{}, wantErr: "file does not exist"},
		{name: "bad glob", files: map[string]string{"/etc/ssh/sshd_config": "Include [\n"}, wantErr: "syntax error in pattern"},
		{name: "bad quotes", files: map[string]string{"/etc/ssh/sshd_config": "\n\nBanner \"x\n"}, wantErr: "/etc/ssh/sshd_config:3: invalid quotes"},
		{name: "Match without criteria", files: map[string]string{"/etc/ssh/sshd_config": "Match\n"}, wantErr: "no argument"},
		{
			name: "huge included file",
			files: map[string]string{
				"/etc/ssh/sshd_config": "Include big.conf\n",
				"/etc/ssh/big.conf":    strings.Repeat("#", maxConfigSize+1),
			},
			wantErr: "reading /etc/ssh/big.conf: file too large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseSSHDConfig(mapFS(tt.files), sshdConfigPath)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errSSHConfig) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range cfg.Lines {
				got = append(got, fmt.Sprintf("%s=%s@%s/%d", l.Key, strings.Join(l.Args, " "), l.source(), l.Block))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines:\n got %q\nwant %q", got, tt.want)
			}
			if len(cfg.Matches) != tt.matches {
				t.Errorf("%d Match blocks, want %d", len(cfg.Matches), tt.matches)
			}
		})
	}
}

// TestSSHChecks runs each check on small configurations.
func TestSSHChecks(t *testing.T) {
	tests := []struct {
		config string
		check  string
		want   Status
		// observed and advice, when set, must appear in the finding.
		observed, advice string
	}{
		{"", "password_authentication", Fail, "default: yes", "at the top of /etc/ssh/sshd_config"},
		{"PasswordAuthentication NO", "password_authentication", Pass, "", ""},
		{"PasswordAuthentication maybe", "password_authentication", Unknown, "sshd refuses to start", ""},
		{"ChallengeResponseAuthentication yes\nKbdInteractiveAuthentication no", "kbd_interactive_authentication", Fail, "", "change /etc/ssh/sshd_config:1 to `KbdInteractiveAuthentication no`"},
		{"PermitEmptyPasswords yes", "permit_empty_passwords", Fail, "", ""},
		{"PermitRootLogin yes", "permit_root_login", Fail, "with a password", ""},
		{"PermitRootLogin without-password", "permit_root_login", Fail, "with a key", ""},
		{"PermitRootLogin forced-commands-only", "permit_root_login", Fail, "", ""},
		{"PermitRootLogin no", "permit_root_login", Pass, "", ""},
		{"PermitRootLogin sometimes", "permit_root_login", Unknown, "", ""},
		{"Protocol 1", "protocol", Fail, "protocol 1", ""},
		{"Protocol 2", "protocol", Pass, "", ""},
		{"Protocol 3", "protocol", Unknown, "", ""},
		{"ClientAliveInterval 300", "idle_timeout", Pass, "", ""},
		{"ClientAliveInterval 15m\nClientAliveCountMax 2", "idle_timeout", Pass, "", ""},
		{"ClientAliveInterval 1000", "idle_timeout", Fail, "1000 s between checks", "`ClientAliveInterval 300`"},
		{"ClientAliveInterval 600\nClientAliveCountMax 0", "idle_timeout", Fail, "never drops", "`ClientAliveCountMax 3`"},
		{"ClientAliveInterval 600\nClientAliveCountMax 4", "idle_timeout", Fail, "2400 s", "`ClientAliveCountMax 3`"},
		{"ClientAliveInterval soon", "idle_timeout", Unknown, "", ""},
		{"AllowUsers admin", "access_limited", Pass, "AllowUsers admin", ""},
		{"AllowGroups wheel\nAllowGroups sshusers", "access_limited", Pass, "AllowGroups wheel sshusers", ""},
		{"DenyUsers guest", "access_limited", Fail, "", "AllowGroups sshusers"},
		{"MaxAuthTries 4", "max_auth_tries", Pass, "", ""},
		{"MaxAuthTries 5", "max_auth_tries", Fail, "", ""},
		{"MaxAuthTries many", "max_auth_tries", Unknown, "", ""},
		{"LoginGraceTime 1m", "login_grace_time", Pass, "", ""},
		{"LoginGraceTime 61", "login_grace_time", Fail, "", ""},
		{"LoginGraceTime 0", "login_grace_time", Fail, "no limit", ""},
		{"LoginGraceTime 2m", "login_grace_time", Fail, "(120 s)", ""},
	}
	checks := map[string]sshCheck{}
	for _, c := range sshChecks() {
		checks[c.id] = c
	}
	for _, tt := range tests {
		t.Run(tt.check+"/"+strings.ReplaceAll(tt.config, "\n", ";"), func(t *testing.T) {
			cfg, err := parseSSHDConfig(mapFS(map[string]string{sshdConfigPath: tt.config + "\n"}), sshdConfigPath)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := checks[tt.check]
			if !ok {
				t.Fatalf("no check %s", tt.check)
			}
			f := c.eval(cfg.globalView())
			if f.Status != tt.want {
				t.Errorf("status %s, want %s: %+v", f.Status, tt.want, f)
			}
			if !strings.Contains(f.Observed, tt.observed) || !strings.Contains(f.Advice, tt.advice) {
				t.Errorf("got observed %q and advice %q, want them to contain %q and %q", f.Observed, f.Advice, tt.observed, tt.advice)
			}
		})
	}
}

// TestSSHDT covers the running-system path: the effective configuration from
// `sshd -T`, with Match blocks from the files. OpenSSH's server is not
// installed on the machines that run these tests, so the runner is a fake
// that returns what sshd -T prints; the file reading is real.
func TestSSHDT(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, sshdConfigPath, "PasswordAuthentication no\nPermitRootLogin yes\nProtocol 1\nMatch User bob\n\tPasswordAuthentication yes\n")
	const dump = "port 22\nport 2222\npasswordauthentication no\nkbdinteractiveauthentication no\npermitemptypasswords no\n" +
		"permitrootlogin without-password\nclientaliveinterval 300\nclientalivecountmax 3\nmaxauthtries 3\nlogingracetime 60\nallowgroups sshusers\n"
	tests := []struct {
		name    string
		out     string
		err     error
		want    map[string]Status
		sources map[string]string
	}{
		{
			name: "sshd -T works",
			out:  dump,
			want: map[string]Status{"ssh.password_authentication": Pass, "ssh.permit_root_login": Fail, "ssh.protocol": Fail,
				"ssh.idle_timeout": Pass, "ssh.access_limited": Pass, "ssh.match.1.password_authentication": Fail},
			sources: map[string]string{"ssh.password_authentication": "/etc/ssh/sshd_config:1", "ssh.permit_root_login": sourceSSHDT,
				"ssh.protocol": "/etc/ssh/sshd_config:3", "ssh.access_limited": sourceSSHDT},
		},
		{
			name: "sshd -T fails: the files",
			err:  errors.New("exit status 255: sshd: no hostkeys available -- exiting."),
			want: map[string]Status{"ssh.password_authentication": Pass, "ssh.permit_root_login": Fail, "ssh.idle_timeout": Fail,
				"ssh.access_limited": Fail, "ssh.match.1.password_authentication": Fail},
			sources: map[string]string{"ssh.permit_root_login": "/etc/ssh/sshd_config:2"},
		},
		{
			name: "sshd -T prints nothing useful: the files",
			out:  "garbage\n",
			want: map[string]Status{"ssh.permit_root_login": Fail},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran []string
			a := newAuditor(Options{Root: root, SSHD: "/usr/sbin/sshd", Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
				ran = append(ran, name+" "+strings.Join(args, " "))
				return []byte(tt.out), tt.err
			}})
			a.live = true // as if Root were "/"
			got := byName(a.sshFindings(context.Background()))
			if !reflect.DeepEqual(ran, []string{"/usr/sbin/sshd -T"}) {
				t.Errorf("ran %q", ran)
			}
			for name, st := range tt.want {
				if got[name].Status != st {
					t.Errorf("%s: %s, want %s (%s)", name, got[name].Status, st, got[name].Observed)
				}
			}
			for name, src := range tt.sources {
				if got[name].Source != src {
					t.Errorf("%s: source %q, want %q", name, got[name].Source, src)
				}
			}
			if tt.out == dump && !strings.Contains(got["ssh.throttling"].Expected, "22, 2222") {
				t.Errorf("throttling does not use sshd's ports: %s", got["ssh.throttling"].Expected)
			}
		})
	}
}

// TestSSHDTParseError keeps the global checks from sshd -T when the files
// cannot be read, and reports the Match blocks unknown.
func TestSSHDTParseError(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, sshdConfigPath, "Include /etc/ssh/sshd_config\n")
	a := newAuditor(Options{Root: root, SSHD: "sshd", Run: func(context.Context, string, ...string) ([]byte, error) {
		return []byte("passwordauthentication no\n"), nil
	}})
	a.live = true
	got := byName(a.sshFindings(context.Background()))
	if got["ssh.password_authentication"].Status != Pass || got["ssh.password_authentication"].Source != sourceSSHDT {
		t.Errorf("global from sshd -T: %+v", got["ssh.password_authentication"])
	}
	if f := got["ssh.match_blocks"]; f.Status != Unknown || !strings.Contains(f.Observed, "Include loop") {
		t.Errorf("match blocks: %+v", f)
	}
}

func FuzzSSHDConfig(f *testing.F) {
	for _, s := range []string{
		"PasswordAuthentication no\nInclude /etc/ssh/sshd_config.d/*.conf\nMatch User x\n\tPermitRootLogin yes\n",
		"Include inc.conf\nMatch all\nAllowUsers \"a b\" 'c' d\\ e # comment\n",
		"ClientAliveInterval 1h30m\nClientAliveCountMax 0\nLoginGraceTime 99999999999w\n",
		"Include [\n",
		"Banner \"unterminated\n",
	} {
		f.Add(s, "Include /etc/ssh/sshd_config\nProtocol 2,1\n")
	}
	f.Fuzz(func(t *testing.T, main, inc string) {
		fsys := mapFS(map[string]string{
			sshdConfigPath:                        main,
			"/etc/ssh/inc.conf":                   inc,
			"/etc/ssh/sshd_config.d/10-fuzz.conf": inc,
		})
		cfg, err := parseSSHDConfig(fsys, sshdConfigPath)
		if err != nil {
			if !errors.Is(err, errSSHConfig) {
				t.Fatalf("error %v does not wrap errSSHConfig", err)
			}
			return
		}
		for _, l := range cfg.Lines {
			if l.Key == "" || len(l.Args) == 0 || l.Block < 0 || l.Block > len(cfg.Matches) {
				t.Fatalf("bad line %+v", l)
			}
		}
		global := cfg.globalView()
		for _, c := range sshChecks() {
			if f := c.eval(global); f.Status != Pass && f.Status != Fail && f.Status != Unknown {
				t.Fatalf("%s: status %q", c.id, f.Status)
			}
		}
		_ = matchFindings(cfg, global, sshChecks())
	})
}
