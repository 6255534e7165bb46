package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// DropPrivileges makes a process that was started as root run as the named
// user from now on: the state directory (created when missing) is handed to
// that user, then the supplementary groups, the group and the user are
// switched. Go applies the switch to every thread of the process. Started
// as any other user it does nothing: the agent needs no privilege at all.
func DropPrivileges(username, stateDir string) (dropped bool, err error) {
	if os.Geteuid() != 0 {
		return false, nil
	}
	u, err := user.Lookup(username)
	if err != nil {
		return false, fmt.Errorf("the agent was started as root and drops to user %q, which does not exist: create it (useradd --system --no-create-home %s) or give --user", username, username)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return false, fmt.Errorf("user %q has the non-numeric uid %q", username, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return false, fmt.Errorf("user %q has the non-numeric gid %q", username, u.Gid)
	}
	if uid == 0 {
		return false, fmt.Errorf("--user %q is root: name an unprivileged user", username)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return false, fmt.Errorf("creating state directory %s: %w", stateDir, err)
	}
	if err := handOver(stateDir, uid, gid); err != nil {
		return false, fmt.Errorf("giving state directory %s to user %s: %w", stateDir, username, err)
	}
	if err := syscall.Setgroups([]int{}); err != nil {
		return false, fmt.Errorf("dropping supplementary groups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return false, fmt.Errorf("switching to group %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return false, fmt.Errorf("switching to user %s: %w", username, err)
	}
	if err := syscall.Setuid(0); err == nil {
		return false, errors.New("dropping privileges failed: the process could become root again")
	}
	return true, nil
}

// handOver gives the state directory to uid:gid. The directory may hold
// what an earlier run as that user left, and that user may have put links
// there: root changes only the directory itself and what root created in
// it (an earlier run that never dropped), never a symbolic link, never a
// file with another hard link (it could be /etc/shadow), and never follows
// a link out of the directory (os.Root).
func handOver(stateDir string, uid, gid int) error {
	info, err := os.Lstat(stateDir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory (a link?)", stateDir)
	}
	root, err := os.OpenRoot(stateDir)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := root.Lstat(path)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0, !fi.Mode().IsRegular() && !fi.IsDir():
			return nil
		case fi.Mode().IsRegular() && st.Nlink != 1:
			return nil
		case st.Uid != 0 && path != ".":
			return nil // already the user's, or someone else's: leave it
		}
		return root.Lchown(path, uid, gid)
	})
}
