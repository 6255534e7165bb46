package hardening

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
)

// mountEntry is one line of /proc/mounts.
type mountEntry struct {
	Device, Point, FSType string
}

// parseMounts reads /proc/mounts (fields separated by spaces, with spaces
// and other bytes in names escaped as \ooo octal).
func parseMounts(b []byte) []mountEntry {
	var out []mountEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		out = append(out, mountEntry{Device: unescapeMount(f[0]), Point: unescapeMount(f[1]), FSType: f[2]})
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountOf returns the mount holding p: the longest mount point that is p or
// a parent of it; the last such line when one is mounted over another.
func mountOf(mounts []mountEntry, p string) (mountEntry, bool) {
	var best mountEntry
	found := false
	for _, m := range mounts {
		mp := path.Clean(m.Point)
		if !(mp == "/" || p == mp || strings.HasPrefix(p, mp+"/")) {
			continue
		}
		if !found || len(mp) >= len(path.Clean(best.Point)) {
			best, found = m, true
		}
	}
	return best, found
}

// cryptTypes names the device-mapper UUID prefixes cryptsetup gives
// encrypting targets. CRYPT-VERITY, CRYPT-INTEGRITY and CRYPT-SUBDEV are
// cryptsetup's too, but they protect integrity only.
func cryptTypes() map[string]string {
	return map[string]string{
		"LUKS1": "LUKS1", "LUKS2": "LUKS2", "PLAIN": "plain dm-crypt", "LOOPAES": "loop-AES",
		"TCRYPT": "TrueCrypt/VeraCrypt", "BITLK": "BitLocker", "FVAULT2": "FileVault2",
	}
}

// maxBlockDepth bounds the walk down a stack of block devices.
const maxBlockDepth = 16

// diskEncryption checks that the filesystem holding the data directory sits
// on dm-crypt all the way down: the device itself, or every device under it
// (LVM on LUKS, RAID of LUKS devices).
func (a *auditor) diskEncryption() Finding {
	f := Finding{Name: "disk.data_encrypted", Severity: SeverityWarning,
		Expected: "the data directory on an encrypted block device (LUKS/dm-crypt, also under LVM or RAID), so a stolen disk reveals nothing"}
	unknown := func(why, advice string) Finding {
		f.Status, f.Observed, f.Advice = Unknown, why, advice
		return f
	}
	if a.o.DataDir == "" {
		return unknown("no data directory given to the audit", "run the audit with the appliance's --data directory")
	}
	dir := path.Clean("/" + a.o.DataDir)
	if r, err := a.resolve(dir); err == nil {
		dir = r
	}
	b, err := a.readFile("/proc/mounts", maxConfigSize)
	if err != nil {
		return unknown("cannot list the mounts: "+err.Error(), "run the audit on the appliance with /proc mounted")
	}
	m, ok := mountOf(parseMounts(b), dir)
	if !ok {
		return unknown("no mount in /proc/mounts holds "+dir, "run the audit on the appliance itself")
	}
	where := fmt.Sprintf("%s is on %s (%s, mounted at %s)", dir, m.Device, m.FSType, m.Point)
	f.Source = "/proc/mounts"
	switch m.FSType {
	case "tmpfs", "ramfs":
		return unknown(where+": data on tmpfs is in memory (and lost at reboot), not on a disk",
			"give the appliance a --data directory on persistent, encrypted storage")
	case "zfs":
		return unknown(where+": ZFS native encryption is not checked by the audit", "check with `zfs get encryption "+m.Device+"`")
	case "nfs", "nfs4", "cifs", "smb3", "fuse.sshfs", "9p", "virtiofs":
		return unknown(where+": a network or shared filesystem; its encryption is the server's", "keep the data directory on a local encrypted disk")
	case "overlay", "aufs":
		return unknown(where+": a container's overlay filesystem; the host's disk holds the data", "check the encryption of the container host's disk")
	}
	dev, err := a.blockDevice(m.Device)
	if err != nil {
		return unknown(where+": "+err.Error(), "check with `lsblk -o NAME,TYPE,FSTYPE,MOUNTPOINTS` that the data directory is on a crypt device")
	}
	enc, chain, err := a.encrypted(dev, 0)
	if err != nil {
		return unknown(where+": "+err.Error(), "check with `lsblk -o NAME,TYPE,FSTYPE,MOUNTPOINTS` that the data directory is on a crypt device")
	}
	if enc {
		f.Status, f.Observed, f.Advice = Pass, where+", encrypted: "+chain, "none"
		return f
	}
	f.Status, f.Observed = Fail, where+", not encrypted: "+chain
	f.Advice = "move the data directory to a LUKS-encrypted volume (`cryptsetup luksFormat`, then the appliance's --data on it), or reinstall the appliance with an encrypted disk"
	return f
}

// blockDevice finds the kernel name (sda1, dm-0) of a mount's device:
// /dev/NAME, a link such as /dev/mapper/NAME or /dev/disk/by-uuid/…, or a
// device-mapper name found in /sys/class/block/*/dm/name.
func (a *auditor) blockDevice(dev string) (string, error) {
	if !strings.HasPrefix(dev, "/dev/") {
		return "", fmt.Errorf("%s is not a block device", dev)
	}
	if r, err := a.resolve(dev); err == nil && a.isBlock(path.Base(r)) {
		return path.Base(r), nil
	}
	if base := path.Base(dev); a.isBlock(base) && !strings.HasPrefix(dev, "/dev/mapper/") {
		return base, nil
	}
	if name, ok := strings.CutPrefix(dev, "/dev/mapper/"); ok {
		for _, p := range a.glob("/sys/class/block/*/dm/name") {
			if b, err := a.readFile(p, 4096); err == nil && strings.TrimSpace(string(b)) == name {
				return path.Base(path.Dir(path.Dir(p))), nil
			}
		}
	}
	return "", fmt.Errorf("cannot find %s under /sys/class/block", dev)
}

func (a *auditor) isBlock(name string) bool {
	return name != "" && name != "." && name != ".." && a.exists("/sys/class/block/"+name)
}

// encrypted reports whether block device dev is a crypt target, or stands
// on crypt targets only, and describes the chain it walked.
func (a *auditor) encrypted(dev string, depth int) (bool, string, error) {
	if depth > maxBlockDepth {
		return false, "", fmt.Errorf("block devices stacked more than %d deep", maxBlockDepth)
	}
	label := dev
	if b, err := a.readFile("/sys/class/block/"+dev+"/dm/name", 4096); err == nil {
		if n := strings.TrimSpace(string(b)); n != "" {
			label = fmt.Sprintf("%s (%s)", dev, n)
		}
	}
	if b, err := a.readFile("/sys/class/block/"+dev+"/dm/uuid", 4096); err == nil {
		uuid := strings.TrimSpace(string(b))
		if rest, ok := strings.CutPrefix(uuid, "CRYPT-"); ok {
			kind, _, _ := strings.Cut(rest, "-")
			if name, ok := cryptTypes()[kind]; ok {
				return true, label + " is " + name, nil
			}
		}
	}
	entries, err := os.ReadDir(a.hostPath("/sys/class/block/" + dev + "/slaves"))
	if err != nil || len(entries) == 0 {
		return false, label + " is a plain device", nil
	}
	parts := make([]string, 0, len(entries))
	all := true
	for _, e := range entries {
		enc, chain, err := a.encrypted(e.Name(), depth+1)
		if err != nil {
			return false, "", err
		}
		all = all && enc
		parts = append(parts, chain)
	}
	return all, label + " on " + strings.Join(parts, ", "), nil
}
