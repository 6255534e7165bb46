//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package vault

import "os"

// lockDir does not lock on this platform: the appliance runs on Linux, and
// elsewhere only one process should change the vault at a time.
func lockDir(string) (func(), error) { return func() {}, nil }

// matchDirOwner does nothing on this platform.
func matchDirOwner(*os.File, string) error { return nil }
