package hardening

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
)

// throttling checks that something slows down password guessing against
// sshd: fail2ban with its sshd jail enabled, sshguard, or an nftables or
// iptables rule limiting the rate of connections to the SSH port. The
// service's running state is not checked, only its installation and
// configuration.
func (a *auditor) throttling(global sshView, haveGlobal bool) Finding {
	ports := []string{"22"}
	if haveGlobal {
		if ps := global.all["port"]; len(ps) > 0 {
			ports = ports[:0]
			for _, p := range ps {
				ports = append(ports, p.Args...)
			}
		}
	}
	f := Finding{Name: "ssh.throttling", Severity: SeverityWarning,
		Expected: "fail2ban with its sshd jail enabled, sshguard, or a firewall rate limit on the SSH port (" + strings.Join(ports, ", ") + ")"}

	var notes []string
	if found, src, note := a.fail2ban(); found {
		f.Status, f.Observed, f.Source, f.Advice = Pass, "fail2ban's sshd jail is enabled", src, "none"
		return f
	} else if note != "" {
		notes = append(notes, note)
	}
	for _, p := range []string{"/usr/sbin/sshguard", "/etc/sshguard"} {
		if a.exists(p) {
			f.Status, f.Observed, f.Source, f.Advice = Pass, "sshguard is installed ("+p+")", p, "none"
			return f
		}
	}
	if src, ok := a.firewallLimit("/etc/nftables.conf", nftLimit, ports); ok {
		f.Status, f.Observed, f.Source, f.Advice = Pass, "an nftables rule limits the rate of connections to the SSH port", src, "none"
		return f
	}
	if src, ok := a.firewallLimit("/etc/iptables/rules.v4", iptLimit, ports); ok {
		f.Status, f.Observed, f.Source, f.Advice = Pass, "an iptables rule limits the rate of connections to the SSH port", src, "none"
		return f
	}
	f.Status = Fail
	f.Observed = "nothing slows down password guessing: no fail2ban sshd jail, no sshguard, no rate limit on the SSH port in /etc/nftables.conf or /etc/iptables/rules.v4"
	if len(notes) > 0 {
		f.Observed += " (" + strings.Join(notes, "; ") + ")"
	}
	f.Advice = "install fail2ban (`apt-get install fail2ban`: Debian enables its sshd jail in /etc/fail2ban/jail.d/defaults-debian.conf) or sshguard, or add a rule such as `tcp dport 22 ct state new limit rate over 10/minute drop` to /etc/nftables.conf"
	return f
}

// fail2ban reads the jail configuration in fail2ban's order (jail.conf,
// jail.d/*.conf, jail.local, jail.d/*.local; a later value wins) and reports
// whether the sshd jail (or its old name, ssh) is enabled, and where.
func (a *auditor) fail2ban() (bool, string, string) {
	files := []string{"/etc/fail2ban/jail.conf"}
	files = append(files, a.glob("/etc/fail2ban/jail.d/*.conf")...)
	files = append(files, "/etc/fail2ban/jail.local")
	files = append(files, a.glob("/etc/fail2ban/jail.d/*.local")...)

	var jail, deflt, src, defSrc string
	read := false
	for _, p := range files {
		b, err := a.readFile(p, maxConfigSize)
		if err != nil {
			continue
		}
		read = true
		section := ""
		for n, line := range strings.Split(string(b), "\n") {
			line = strings.TrimRight(line, "\r")
			t := strings.TrimSpace(line)
			if t == "" || t[0] == '#' || t[0] == ';' || line[0] == ' ' || line[0] == '\t' {
				continue // blank, comment, or continuation of a value
			}
			if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
				section = strings.TrimSpace(t[1 : len(t)-1])
				continue
			}
			k, v, ok := strings.Cut(t, "=")
			if !ok {
				k, v, ok = strings.Cut(t, ":")
			}
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "enabled") {
				continue
			}
			v = strings.TrimSpace(v)
			here := fmt.Sprintf("%s:%d", p, n+1)
			switch section {
			case "sshd", "ssh":
				jail, src = v, here
			case "DEFAULT":
				deflt, defSrc = v, here
			}
		}
	}
	if !read {
		return false, "", ""
	}
	if jail == "" {
		jail, src = deflt, defSrc
	}
	if !iniTrue(jail) {
		return false, "", "fail2ban is configured but its sshd jail is not enabled"
	}
	if !a.exists("/usr/bin/fail2ban-server") {
		return false, "", "fail2ban's configuration enables the sshd jail but /usr/bin/fail2ban-server is missing (package removed?)"
	}
	return true, src, ""
}

// iniTrue is Python's ConfigParser.getboolean, which fail2ban uses.
func iniTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// glob lists the files matching pattern under Root, sorted; nothing on
// error.
func (a *auditor) glob(pattern string) []string {
	m, err := fs.Glob(os.DirFS(a.root), strings.TrimPrefix(path.Clean(pattern), "/"))
	if err != nil {
		return nil
	}
	sort.Strings(m)
	for i := range m {
		m[i] = "/" + m[i]
	}
	return m
}

var (
	// nftDport finds the destination ports of an nftables TCP rule:
	// `tcp dport 22`, `tcp dport { 22, 2222 }`, `tcp dport ssh`.
	nftDport = regexp.MustCompile(`\btcp\s+dport\s+(\{[^}]*\}|[^\s{]+)`)
	// iptDport finds `--dport 22` and `--dports 22,80`.
	iptDport = regexp.MustCompile(`--dports?\s+(\S+)`)
)

// nftLimit reports the ports of an nftables rule that limits a rate.
func nftLimit(line string) []string {
	if !strings.Contains(line, "limit rate") && !strings.Contains(line, "ct count") {
		return nil
	}
	var ports []string
	for _, m := range nftDport.FindAllStringSubmatch(line, -1) {
		ports = append(ports, splitPorts(strings.Trim(m[1], "{}"))...)
	}
	return ports
}

// iptLimit reports the ports of an iptables rule that limits a rate
// (-m recent with --hitcount, -m hashlimit, -m limit, -m connlimit).
func iptLimit(line string) []string {
	if !strings.Contains(line, "--hitcount") && !strings.Contains(line, "hashlimit") &&
		!strings.Contains(line, "-m limit") && !strings.Contains(line, "connlimit") {
		return nil
	}
	var ports []string
	for _, m := range iptDport.FindAllStringSubmatch(line, -1) {
		ports = append(ports, splitPorts(m[1])...)
	}
	return ports
}

func splitPorts(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// firewallLimit looks for a rate-limiting rule on one of the SSH ports in a
// firewall file (comments dropped, backslash continuations joined).
func (a *auditor) firewallLimit(p string, limit func(string) []string, sshPorts []string) (string, bool) {
	b, err := a.readFile(p, maxConfigSize)
	if err != nil {
		return "", false
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		start := i
		line := lines[i]
		for strings.HasSuffix(strings.TrimRight(line, " \t\r"), `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(strings.TrimRight(line, " \t\r"), `\`) + " " + lines[i]
		}
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		for _, port := range limit(line) {
			if portMatches(port, sshPorts) {
				return fmt.Sprintf("%s:%d", p, start+1), true
			}
		}
	}
	return "", false
}

// portMatches reports whether a firewall port (22, ssh, 20-25, 20:25)
// covers one of the SSH ports.
func portMatches(port string, sshPorts []string) bool {
	port = strings.TrimSpace(port)
	for _, want := range sshPorts {
		if port == want || want == "22" && port == "ssh" {
			return true
		}
		lo, hi, ok := strings.Cut(port, "-")
		if !ok {
			lo, hi, ok = strings.Cut(port, ":")
		}
		if ok {
			var l, h, w int
			if _, err := fmt.Sscanf(lo+" "+hi+" "+want, "%d %d %d", &l, &h, &w); err == nil && l <= w && w <= h {
				return true
			}
		}
	}
	return false
}
