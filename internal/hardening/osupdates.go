package hardening

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// Debian and Ubuntu files the OS checks read.
const (
	debianVersionPath   = "/etc/debian_version"
	updatesStampPath    = "/var/lib/update-notifier/updates-available"
	aptConfDir          = "/etc/apt/apt.conf.d"
	unattendedConfPath  = "/etc/apt/apt.conf.d/50unattended-upgrades"
	rebootRequiredPath  = "/run/reboot-required"
	rebootRequiredOld   = "/var/run/reboot-required"
	maxRebootPkgsListed = 20
)

func (a *auditor) osFindings(ctx context.Context) []Finding {
	debian := a.exists(debianVersionPath)
	return []Finding{a.securityUpdates(ctx, debian), a.unattendedUpgrades(debian), a.rebootRequired(debian)}
}

const notDebian = "not a Debian or Ubuntu system (no " + debianVersionPath + "): the audit only knows their package tools"

func (a *auditor) securityUpdates(ctx context.Context, debian bool) Finding {
	f := Finding{Name: "os.security_updates", Severity: SeverityError,
		Expected: "no security update waiting to be installed"}
	advice := "install them: `apt-get update && apt-get upgrade` (or enable unattended-upgrades to have them installed daily)"
	if !debian {
		f.Status, f.Observed, f.Advice = Unknown, notDebian, "check for security updates with the system's package manager"
		return f
	}
	if b, err := a.readFile(updatesStampPath, maxConfigSize); err == nil {
		f.Source = updatesStampPath
		total, security, esm, err := parseUpdatesAvailable(string(b))
		if err != nil {
			f.Status, f.Observed, f.Advice = Unknown, fmt.Sprintf("%s: %v", updatesStampPath, err), "run `apt list --upgradable` and install the security updates"
			return f
		}
		f.Observed = fmt.Sprintf("%d updates can be applied, %d of them security updates (update-notifier)", total, security)
		if esm > 0 {
			f.Observed += fmt.Sprintf("; %d more security updates need Ubuntu Pro (ESM)", esm)
		}
		if security > 0 {
			f.Status, f.Advice = Fail, advice
		} else {
			f.Status, f.Advice = Pass, "none"
		}
		return f
	} else if !errors.Is(err, fs.ErrNotExist) {
		f.Status, f.Observed, f.Advice = Unknown, err.Error(), "make the file readable, or run `apt list --upgradable`"
		return f
	}
	if !a.live {
		f.Status, f.Advice = Unknown, "run the audit on the appliance itself"
		f.Observed = "no " + updatesStampPath + ", and apt-get is only asked when auditing the running system (root /)"
		return f
	}
	out, err := a.command(ctx, "apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade")
	if err != nil {
		f.Status, f.Advice = Unknown, "run `apt-get -s upgrade` by hand and install the security updates it lists"
		f.Observed = "running `apt-get -s upgrade`: " + err.Error()
		return f
	}
	total, security := parseAptSimulate(out)
	f.Source = "apt-get -s upgrade"
	f.Observed = fmt.Sprintf("%d packages can be upgraded, %d of them from a security archive (package lists as of the last `apt-get update`)", total, security)
	if security > 0 {
		f.Status, f.Advice = Fail, advice
	} else {
		f.Status, f.Advice = Pass, "none"
	}
	return f
}

var (
	// Ubuntu's update-notifier, old and new wordings:
	// "12 packages can be updated." / "5 updates can be applied immediately."
	notifierTotal = regexp.MustCompile(`(?m)^\s*(\d+) (?:packages?|updates?) can be (?:updated|applied|installed)`)
	// "5 updates are security updates." / "3 of these updates are standard security updates."
	// / "1 of these updates is a standard security update."
	notifierSecurity = regexp.MustCompile(`(?m)^\s*(\d+) (?:of these )?updates? (?:are|is) (?:a )?(?:standard )?security updates?`)
	// "7 additional security updates can be applied with ESM Apps."
	notifierESM = regexp.MustCompile(`(?m)^\s*(\d+) additional security updates? can be applied with ESM`)
)

// parseUpdatesAvailable reads update-notifier's stamp. An empty file means
// nothing to install.
func parseUpdatesAvailable(s string) (total, security, esm int, err error) {
	if strings.TrimSpace(s) == "" {
		return 0, 0, 0, nil
	}
	num := func(re *regexp.Regexp) (int, bool) {
		n := 0
		found := false
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			v, err := strconv.Atoi(m[1])
			if err == nil {
				n += v
				found = true
			}
		}
		return n, found
	}
	total, okTotal := num(notifierTotal)
	security, okSec := num(notifierSecurity)
	esm, okESM := num(notifierESM)
	if !okTotal && !okSec && !okESM {
		return 0, 0, 0, errors.New("the update count is in a wording the audit does not know")
	}
	return total, security, esm, nil
}

// parseAptSimulate counts the packages `apt-get -s upgrade` would install
// ("Inst name [old] (new origin [arch])") and those coming from a security
// archive (an origin such as Debian-Security:12/stable-security or
// Ubuntu:24.04/noble-security).
func parseAptSimulate(out []byte) (total, security int) {
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "Inst ") {
			continue
		}
		total++
		if i := strings.IndexByte(line, '('); i >= 0 && strings.Contains(strings.ToLower(line[i:]), "security") {
			security++
		}
	}
	return total, security
}

// aptUnattended finds `APT::Periodic::Unattended-Upgrade "N";` (the key is
// case-insensitive in apt's configuration).
var aptUnattended = regexp.MustCompile(`(?i)APT::Periodic::Unattended-Upgrade\s+"([^"]*)"\s*;`)

// aptIgnored are the suffixes apt skips in apt.conf.d
// (Dir::Ignore-Files-Silently).
func aptIgnored() []string {
	return []string{"~", ".disabled", ".bak", ".save", ".orig", ".distUpgrade", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".ucf-old", ".ucf-new", ".ucf-dist"}
}

func (a *auditor) unattendedUpgrades(debian bool) Finding {
	f := Finding{Name: "os.unattended_upgrades", Severity: SeverityWarning,
		Expected: `unattended-upgrades installed (` + unattendedConfPath + `) and APT::Periodic::Unattended-Upgrade "1" in ` + aptConfDir}
	if !debian {
		f.Status, f.Observed, f.Advice = Unknown, notDebian, "enable the system's automatic security updates"
		return f
	}
	val, src := "", ""
	for _, p := range a.glob(aptConfDir + "/*") {
		if !aptConfName(p) {
			continue
		}
		b, err := a.readFile(p, maxConfigSize)
		if err != nil {
			continue
		}
		for n, line := range strings.Split(string(b), "\n") {
			if c := strings.Index(line, "//"); c >= 0 {
				line = line[:c]
			}
			if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") {
				continue
			}
			for _, m := range aptUnattended.FindAllStringSubmatch(line, -1) {
				val, src = m[1], fmt.Sprintf("%s:%d", p, n+1) // the last one read wins
			}
		}
	}
	installed := a.exists(unattendedConfPath)
	enabled := val == "always"
	if n, err := strconv.Atoi(val); err == nil && n > 0 {
		enabled = true
	}
	f.Source = src
	switch {
	case enabled && installed:
		f.Status, f.Advice = Pass, "none"
		f.Observed = fmt.Sprintf(`APT::Periodic::Unattended-Upgrade "%s" and %s present`, val, unattendedConfPath)
		return f
	case !installed:
		f.Observed = "unattended-upgrades is not installed (no " + unattendedConfPath + ")"
	case src == "":
		f.Observed = "APT::Periodic::Unattended-Upgrade is not set in " + aptConfDir
	default:
		f.Observed = fmt.Sprintf(`APT::Periodic::Unattended-Upgrade "%s": automatic upgrades are off`, val)
	}
	f.Status = Fail
	f.Advice = "run `apt-get install unattended-upgrades` and `dpkg-reconfigure -plow unattended-upgrades`, which writes `APT::Periodic::Unattended-Upgrade \"1\";` to /etc/apt/apt.conf.d/20auto-upgrades"
	if src != "" {
		f.Advice = fmt.Sprintf("%s; or change %s to `APT::Periodic::Unattended-Upgrade \"1\";`", f.Advice, src)
	}
	return f
}

// aptConfName reports whether apt reads a file of apt.conf.d: names of
// letters, digits, '_', '-' and '.', without an ignored suffix.
func aptConfName(p string) bool {
	name := p[strings.LastIndexByte(p, '/')+1:]
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	for _, s := range aptIgnored() {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return name != ""
}

func (a *auditor) rebootRequired(debian bool) Finding {
	f := Finding{Name: "os.reboot_required", Severity: SeverityWarning,
		Expected: "no reboot pending: the updates installed are the ones running"}
	if !debian {
		f.Status, f.Observed, f.Advice = Unknown, notDebian, "check whether the installed kernel and libraries are the ones running"
		return f
	}
	for _, p := range []string{rebootRequiredPath, rebootRequiredOld} {
		if !a.exists(p) {
			continue
		}
		f.Status, f.Source = Fail, p
		f.Observed = "a reboot is required (" + p + ")"
		if b, err := a.readFile(p+".pkgs", maxConfigSize); err == nil {
			var pkgs []string
			seen := map[string]bool{}
			for _, l := range strings.Fields(string(b)) {
				if !seen[l] {
					seen[l] = true
					pkgs = append(pkgs, l)
				}
			}
			if len(pkgs) > maxRebootPkgsListed {
				pkgs = append(pkgs[:maxRebootPkgsListed], fmt.Sprintf("and %d more", len(pkgs)-maxRebootPkgsListed))
			}
			if len(pkgs) > 0 {
				f.Observed += " by the update of " + strings.Join(pkgs, ", ")
			}
		}
		f.Advice = "reboot the appliance at a quiet time (`systemctl reboot`); results wait in its buffer meanwhile"
		return f
	}
	f.Status, f.Observed, f.Advice = Pass, "no "+rebootRequiredPath, "none"
	return f
}
