package hardening

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// reloadAdvice ends every piece of SSH advice: how to apply a change safely.
const reloadAdvice = "then check the file with `sshd -t` and apply it with `systemctl reload ssh` (keep a session open until a new login works)"

// sshCheck is one check of the effective sshd configuration.
type sshCheck struct {
	id       string // the finding is "ssh." + id
	severity string
	// inMatch is set when the keywords may appear in a Match block, so a
	// block can weaken the global value.
	inMatch bool
	keys    []string
	eval    func(v sshView) Finding
}

// sshChecks are the checks, in report order.
func sshChecks() []sshCheck {
	return []sshCheck{
		{id: "password_authentication", severity: SeverityError, inMatch: true, keys: []string{"passwordauthentication"},
			eval: func(v sshView) Finding {
				return yesNoCheck(v, "passwordauthentication", "PasswordAuthentication", "yes", "no",
					"PasswordAuthentication no: only keys can log in, so passwords cannot be guessed")
			}},
		{id: "kbd_interactive_authentication", severity: SeverityError, inMatch: true, keys: []string{"kbdinteractiveauthentication"},
			eval: func(v sshView) Finding {
				return yesNoCheck(v, "kbdinteractiveauthentication", "KbdInteractiveAuthentication", "yes", "no",
					"KbdInteractiveAuthentication no (ChallengeResponseAuthentication is its old name): with UsePAM yes it is another way to type a password")
			}},
		{id: "permit_empty_passwords", severity: SeverityCritical, inMatch: true, keys: []string{"permitemptypasswords"},
			eval: func(v sshView) Finding {
				return yesNoCheck(v, "permitemptypasswords", "PermitEmptyPasswords", "no", "no",
					"PermitEmptyPasswords no: an account without a password cannot log in")
			}},
		{id: "permit_root_login", severity: SeverityError, inMatch: true, keys: []string{"permitrootlogin"}, eval: rootLoginCheck},
		{id: "protocol", severity: SeverityCritical, keys: []string{"protocol"}, eval: protocolCheck},
		{id: "idle_timeout", severity: SeverityWarning, inMatch: true, keys: []string{"clientaliveinterval", "clientalivecountmax"}, eval: idleTimeoutCheck},
		{id: "access_limited", severity: SeverityWarning, keys: []string{"allowusers", "allowgroups"}, eval: accessLimitedCheck},
		{id: "max_auth_tries", severity: SeverityWarning, inMatch: true, keys: []string{"maxauthtries"}, eval: maxAuthTriesCheck},
		{id: "login_grace_time", severity: SeverityWarning, keys: []string{"logingracetime"}, eval: loginGraceTimeCheck},
	}
}

// sshFindings checks the effective sshd configuration: from `sshd -T` on
// the running system when it works, else from the files; Match blocks always
// from the files (sshd -T without a connection shows none).
func (a *auditor) sshFindings(ctx context.Context) []Finding {
	checks := sshChecks()
	var out []Finding

	cfg, parseErr := parseSSHDConfig(os.DirFS(a.root), sshdConfigPath)
	var global sshView
	var haveGlobal bool
	var globalErr error
	if parseErr == nil {
		global, haveGlobal = cfg.globalView(), true
	} else {
		globalErr = parseErr
	}
	if t, err := a.sshdT(ctx); err == nil {
		global = mergeSources(t, cfg)
		haveGlobal = true
	} else if !errors.Is(err, errNoSSHD) {
		if globalErr != nil {
			globalErr = fmt.Errorf("%w; `sshd -T` failed too: %v", globalErr, err)
		}
	}

	for _, c := range checks {
		if !haveGlobal {
			out = append(out, Finding{Name: "ssh." + c.id, Status: Unknown, Severity: c.severity,
				Observed: sshUnknownText(globalErr),
				Expected: "a configuration sshd can read",
				Advice:   "fix the configuration so that `sshd -t` accepts it, then run the audit again"})
			continue
		}
		f := c.eval(global)
		f.Name = "ssh." + c.id
		if f.Severity == "" {
			f.Severity = c.severity
		}
		out = append(out, f)
	}

	if parseErr != nil {
		if haveGlobal { // sshd -T worked: only the Match blocks are unknown
			out = append(out, Finding{Name: "ssh.match_blocks", Status: Unknown, Severity: SeverityWarning,
				Observed: sshUnknownText(parseErr), Expected: "no Match block weakening the settings above",
				Advice: "fix the configuration so that the audit can read it, then run it again"})
		}
	} else {
		out = append(out, matchFindings(cfg, global, checks)...)
	}
	return append(out, a.throttling(global, haveGlobal))
}

func sshUnknownText(err error) string {
	msg := strings.TrimPrefix(err.Error(), errSSHConfig.Error()+": ")
	if errors.Is(err, fs.ErrNotExist) {
		return "cannot read the sshd configuration (is the OpenSSH server installed?): " + msg
	}
	return "cannot read the sshd configuration: " + msg
}

// errNoSSHD means sshd -T is not to be run: a fixture root, or no sshd.
var errNoSSHD = errors.New("sshd -T not available")

// sshdT runs `sshd -T` when auditing the running system.
func (a *auditor) sshdT(ctx context.Context) (sshView, error) {
	if !a.live {
		return sshView{}, errNoSSHD
	}
	bin := a.o.SSHD
	if bin == "" {
		p, err := exec.LookPath("sshd")
		if err != nil {
			return sshView{}, errNoSSHD
		}
		bin = p
	}
	out, err := a.command(ctx, bin, "-T")
	if err != nil {
		return sshView{}, fmt.Errorf("running %s -T: %w", bin, err)
	}
	v, err := parseSSHDT(out)
	if err != nil {
		return sshView{}, fmt.Errorf("running %s -T: %w", bin, err)
	}
	return v, nil
}

// mergeSources gives the values sshd -T reports the file line they came
// from when the files agree, and adds what sshd -T no longer prints
// (Protocol) from the files.
func mergeSources(t sshView, cfg *sshConfig) sshView {
	if cfg == nil {
		return t
	}
	files := cfg.globalView()
	for k, s := range t.first {
		if f, ok := files.first[k]; ok && strings.EqualFold(strings.Join(f.Args, " "), strings.Join(s.Args, " ")) {
			t.first[k] = f
		}
	}
	if p, ok := files.first["protocol"]; ok {
		if _, ok := t.first["protocol"]; !ok {
			t.first["protocol"] = p
		}
	}
	return t
}

// matchFindings reports each Match block that weakens a checked setting for
// the connections it matches.
func matchFindings(cfg *sshConfig, global sshView, checks []sshCheck) []Finding {
	var out []Finding
	for _, m := range cfg.Matches {
		set := cfg.blockSettings(m.N)
		if len(set) == 0 {
			continue
		}
		view := global.overlay(set)
		for _, c := range checks {
			if !c.inMatch {
				continue
			}
			var lines []sshSetting
			for _, k := range c.keys {
				if s, ok := set[k]; ok {
					lines = append(lines, s)
				}
			}
			if len(lines) == 0 {
				continue
			}
			f := c.eval(view)
			if f.Status == Pass {
				continue
			}
			f.Name = fmt.Sprintf("ssh.match.%d.%s", m.N, c.id)
			if f.Severity == "" {
				f.Severity = c.severity
			}
			f.Observed = fmt.Sprintf("inside `Match %s` (%s:%d): %s; this applies to the connections the block matches",
				m.Criteria, m.File, m.Line, f.Observed)
			f.Advice = fmt.Sprintf("in the `Match %s` block, %s or remove the line; %s",
				m.Criteria, strings.TrimSuffix(f.Advice, "; "+reloadAdvice), reloadAdvice)
			f.Source = lines[0].Source
			out = append(out, f)
		}
	}
	return out
}

// describe says how a keyword is set: "PasswordAuthentication yes", or
// "PasswordAuthentication not set (OpenSSH's default: yes)".
func describe(v sshView, key, word, def string) string {
	if s, ok := v.get(key); ok {
		return word + " " + strings.Join(s.Args, " ")
	}
	return fmt.Sprintf("%s not set (OpenSSH's default: %s)", word, def)
}

// setAdvice says how to give keywords their expected values: change the line
// that sets each one, or add it where sshd reads it first.
func setAdvice(v sshView, want ...[2]string) string {
	parts := make([]string, 0, len(want))
	for _, w := range want {
		key, line := w[0], w[1]
		if s, ok := v.get(key); ok && s.fromFile() {
			parts = append(parts, fmt.Sprintf("change %s to `%s`", s.Source, line))
		} else {
			parts = append(parts, fmt.Sprintf("set `%s` at the top of %s (sshd keeps the first value it reads, so before any Include or Match line)", line, sshdConfigPath))
		}
	}
	return strings.Join(parts, " and ") + "; " + reloadAdvice
}

// settingSource is where key's effective value was read, "" for a default.
func settingSource(v sshView, key string) string {
	s, _ := v.get(key)
	return s.Source
}

func invalid(v sshView, key, word, why string) Finding {
	s, _ := v.get(key)
	return Finding{Status: Unknown, Observed: fmt.Sprintf("%s %s: %s; sshd refuses to start with it", word, strings.Join(s.Args, " "), why),
		Expected: "a value sshd accepts", Advice: "correct " + s.Source + "; " + reloadAdvice, Source: s.Source}
}

// yesNoCheck checks a yes/no keyword whose safe value is want.
func yesNoCheck(v sshView, key, word, def, want, expected string) Finding {
	val := def
	if s, ok := v.get(key); ok {
		val = strings.ToLower(s.value())
	}
	if val != "yes" && val != "no" {
		return invalid(v, key, word, "not yes or no")
	}
	f := Finding{Observed: describe(v, key, word, def), Expected: expected, Source: settingSource(v, key)}
	if val == want {
		f.Status, f.Advice = Pass, "none"
		return f
	}
	f.Status, f.Advice = Fail, setAdvice(v, [2]string{key, word + " " + want})
	return f
}

func rootLoginCheck(v sshView) Finding {
	const key, word, def = "permitrootlogin", "PermitRootLogin", "prohibit-password"
	val := def
	if s, ok := v.get(key); ok {
		val = strings.ToLower(s.value())
	}
	f := Finding{Observed: describe(v, key, word, def), Source: settingSource(v, key),
		Expected: "PermitRootLogin no: administrators log in as themselves and use sudo, so every action has a name"}
	switch val {
	case "no":
		f.Status, f.Advice = Pass, "none"
	case "yes":
		f.Status, f.Severity = Fail, SeverityError
		f.Observed += ": root can log in with a password"
	case "prohibit-password", "without-password", "forced-commands-only":
		f.Status, f.Severity = Fail, SeverityWarning
		f.Observed += ": root can still log in with a key"
	default:
		return invalid(v, key, word, "not yes, prohibit-password, forced-commands-only or no")
	}
	if f.Status == Fail {
		f.Advice = setAdvice(v, [2]string{key, "PermitRootLogin no"})
	}
	return f
}

func protocolCheck(v sshView) Finding {
	f := Finding{Expected: "protocol 2 only (OpenSSH 7.4 and later speak nothing else)", Source: settingSource(v, "protocol")}
	s, ok := v.get("protocol")
	if !ok {
		f.Status, f.Observed, f.Advice = Pass, "Protocol not set: protocol 2 only", "none"
		return f
	}
	f.Observed = "Protocol " + strings.Join(s.Args, " ")
	versions := strings.Split(s.value(), ",")
	for _, p := range versions {
		switch strings.TrimSpace(p) {
		case "1":
			f.Status, f.Observed = Fail, f.Observed+": SSH protocol 1 is broken and must not be offered"
			f.Advice = fmt.Sprintf("change %s to `Protocol 2` (or remove it; an sshd that still reads it must be upgraded); %s", s.Source, reloadAdvice)
			if !s.fromFile() {
				f.Advice = "set `Protocol 2` and upgrade OpenSSH; " + reloadAdvice
			}
			return f
		case "2":
		default:
			return invalid(v, "protocol", "Protocol", "not 1 or 2")
		}
	}
	f.Status, f.Advice = Pass, "none"
	return f
}

// Idle timeout bounds. OpenSSH sends a keepalive after ClientAliveInterval
// seconds of silence and drops the session after ClientAliveCountMax
// unanswered ones; a count of 0 disables dropping (OpenSSH 8.2+). The check
// requires an interval of 1–900 s and a count of at least 1 with
// interval × count ≤ 1800 s, so a dead or abandoned connection is gone
// within 30 minutes. It does not end an idle shell whose client still
// answers: that needs ChannelTimeout (OpenSSH 9.2+) or the shell's TMOUT.
const (
	maxAliveInterval = 900
	maxAliveTotal    = 1800
)

func idleTimeoutCheck(v sshView) Finding {
	iv, cv := "0", "3"
	if s, ok := v.get("clientaliveinterval"); ok {
		iv = s.value()
	}
	if s, ok := v.get("clientalivecountmax"); ok {
		cv = s.value()
	}
	interval, err := parseSSHTime(iv)
	if err != nil {
		return invalid(v, "clientaliveinterval", "ClientAliveInterval", err.Error())
	}
	count, err := strconv.Atoi(cv)
	if err != nil || count < 0 {
		return invalid(v, "clientalivecountmax", "ClientAliveCountMax", "not a number of 0 or more")
	}
	f := Finding{
		Observed: describe(v, "clientaliveinterval", "ClientAliveInterval", "0") + ", " + describe(v, "clientalivecountmax", "ClientAliveCountMax", "3"),
		Expected: fmt.Sprintf("ClientAliveInterval of 1 to %d s and ClientAliveCountMax of at least 1, with interval × count at most %d s: an unresponsive session is dropped within %d minutes", maxAliveInterval, maxAliveTotal, maxAliveTotal/60),
		Source:   settingSource(v, "clientaliveinterval"),
	}
	var want [][2]string
	switch {
	case interval == 0:
		f.Observed += ": sessions are never checked for a live client"
		want = append(want, [2]string{"clientaliveinterval", "ClientAliveInterval 300"})
	case interval > maxAliveInterval:
		f.Observed += fmt.Sprintf(": %d s between checks", interval)
		want = append(want, [2]string{"clientaliveinterval", "ClientAliveInterval 300"})
		interval = 300
	}
	switch {
	case count == 0:
		f.Observed += ": a count of 0 never drops a session"
		want = append(want, [2]string{"clientalivecountmax", "ClientAliveCountMax 3"})
	case interval > 0 && interval*int64(count) > maxAliveTotal:
		f.Observed += fmt.Sprintf(": an unresponsive session lasts %d s", interval*int64(count))
		want = append(want, [2]string{"clientalivecountmax", fmt.Sprintf("ClientAliveCountMax %d", max(1, maxAliveTotal/interval))})
	}
	if len(want) == 0 {
		f.Status, f.Advice = Pass, "none"
		return f
	}
	f.Status, f.Advice = Fail, setAdvice(v, want...)
	f.Source = settingSource(v, want[0][0])
	return f
}

func accessLimitedCheck(v sshView) Finding {
	f := Finding{Expected: "AllowUsers or AllowGroups set: only the named administrators may try to log in"}
	var set []string
	for _, k := range []struct{ key, word string }{{"allowusers", "AllowUsers"}, {"allowgroups", "AllowGroups"}} {
		var names []string
		for _, s := range v.all[k.key] {
			names = append(names, s.Args...)
			if f.Source == "" {
				f.Source = s.Source
			}
		}
		if len(names) > 0 {
			set = append(set, k.word+" "+strings.Join(names, " "))
		}
	}
	if len(set) > 0 {
		f.Status, f.Observed, f.Advice = Pass, strings.Join(set, "; "), "none"
		return f
	}
	f.Status = Fail
	f.Observed = "neither AllowUsers nor AllowGroups is set: every account on the machine may try to log in"
	f.Advice = fmt.Sprintf("create a group for the administrators (`groupadd sshusers`, `usermod -aG sshusers NAME`) and set `AllowGroups sshusers` in %s before any Match line; %s", sshdConfigPath, reloadAdvice)
	return f
}

func maxAuthTriesCheck(v sshView) Finding {
	const key, word, def = "maxauthtries", "MaxAuthTries", "6"
	val := def
	if s, ok := v.get(key); ok {
		val = s.value()
	}
	n, err := strconv.Atoi(val)
	if err != nil || n < 0 {
		return invalid(v, key, word, "not a number of 0 or more")
	}
	f := Finding{Observed: describe(v, key, word, def), Source: settingSource(v, key),
		Expected: "MaxAuthTries 4 or less: a connection gets few guesses before it is cut"}
	if n <= 4 {
		f.Status, f.Advice = Pass, "none"
		return f
	}
	f.Status, f.Advice = Fail, setAdvice(v, [2]string{key, "MaxAuthTries 3"})
	return f
}

func loginGraceTimeCheck(v sshView) Finding {
	const key, word, def = "logingracetime", "LoginGraceTime", "120"
	val := def
	if s, ok := v.get(key); ok {
		val = s.value()
	}
	secs, err := parseSSHTime(val)
	if err != nil {
		return invalid(v, key, word, err.Error())
	}
	f := Finding{Observed: describe(v, key, word, def+" s"), Source: settingSource(v, key),
		Expected: "LoginGraceTime of 1 to 60 s: an unauthenticated connection does not hold a slot for long"}
	switch {
	case secs == 0:
		f.Observed += ": 0 means no limit"
	case secs > 60:
		if s, ok := v.get(key); ok && s.value() != strconv.FormatInt(secs, 10) {
			f.Observed += fmt.Sprintf(" (%d s)", secs)
		}
	default:
		f.Status, f.Advice = Pass, "none"
		return f
	}
	f.Status, f.Advice = Fail, setAdvice(v, [2]string{key, "LoginGraceTime 30"})
	return f
}
