// Package hostagent holds the Linux host agent's collectors: one check per
// file (system, cpu, memory, disk, filesystem, network, process), each
// reading /proc, /sys, /etc and /run through a root path so that tests run
// against fixture trees under testdata/. The agent posts every check under
// the collector key "linux".
//
// Each collector is a pure parse function, tested on literal strings and
// fuzzed, and a Collect that reads the files and builds the result.
// Collectors with rates keep their previous raw sample; the first run sends
// what needs no rate, and a counter that goes backwards (a reboot, a wrap, a
// device re-created) gives no rate for that interval rather than a wrong
// one. Malformed lines are skipped and reported in the check's error; a
// file that cannot be read at all fails the check with a HIGH error. Sizes
// are bytes, rates per second, percentages floats from 0 to 100.
//
// # Types and metrics
//
//	check       type        item                     metrics
//	system      system      "system"                 hostname, kernel (strings); uptime (float, s);
//	                                                 bootTime (Unix s); load1, load5, load15 (floats);
//	                                                 processes, threads, tasksRunning, tasksBlocked,
//	                                                 users (ints)
//	cpu         cpu         "all", "cpu0", "cpu1"…   cpus (int, on "all" only); percentUser, percentNice,
//	                                                 percentSystem, percentIdle, percentIowait, percentIrq,
//	                                                 percentSoftirq, percentSteal (floats)
//	memory      memory      "memory"                 total, free, available, used, buffers, cached,
//	                                                 swapTotal, swapFree, swapUsed (bytes);
//	                                                 percentUsed, percentSwapUsed (floats)
//	disk        disk        device ("sda", "sda1")   ioInProgress (int); readsPerSecond, writesPerSecond,
//	                                                 readBytesPerSecond, writeBytesPerSecond,
//	                                                 percentBusy, msPerRead, msPerWrite (floats)
//	filesystem  filesystem  mount point ("/boot")    device, fsType (strings); readOnly (bool);
//	                                                 size, used, available, inodes, inodesUsed (ints);
//	                                                 percentUsed, percentInodesUsed (floats);
//	                                                 error (string, when statfs failed or hung)
//	network     network     interface ("eth0")       operState (string); speed (int, Mbit/s);
//	                                                 rxBytesPerSecond, txBytesPerSecond,
//	                                                 rxPacketsPerSecond, txPacketsPerSecond,
//	                                                 rxErrorsPerSecond, txErrorsPerSecond,
//	                                                 rxDropsPerSecond, txDropsPerSecond (floats)
//	process     topCpu,     rank ("1" uses most)     processName, user (strings); pid, rss (bytes),
//	            topMemory                            threads (ints); percentCpu (float)
//
// A metric that cannot be known this time is left out rather than sent as
// zero: the cpu percentages, disk and network rates and percentCpu on the
// first run; available and the swap metrics when the kernel does not say
// them; speed on virtual interfaces; users when the host keeps no
// /run/utmp; inode metrics on filesystems without an inode count (btrfs).
// There is no clock offset metric: reading it would take adjtimex(2).
//
// # Choices
//
//   - system: the item is always named "system" (not the host name) so its
//     series survive a rename; hostname is a metric. processes counts
//     /proc/[pid] directories, threads is the task count of /proc/loadavg,
//     tasksRunning and tasksBlocked are procs_running and procs_blocked of
//     /proc/stat (both count threads). users counts USER_PROCESS records of
//     /run/utmp, as uptime(1) does.
//   - cpu: percentages are shares of the ticks between two runs (no clock
//     needed); guest time is already in user and nice. A CPU that just came
//     online, or whose counters went backwards, has no item that run.
//   - memory: used is total − available. Kernels before 3.14 have no
//     MemAvailable; it is then estimated as free + buffers + cached.
//   - disk: whole disks and partitions are both reported (so are dm-* and
//     md* devices); loop, ram, zram and fd devices that never did any I/O
//     are left out. Bytes are sectors × 512 whatever the device's sector
//     size; percentBusy is io_ticks over the interval, capped at 100.
//     msPerRead and msPerWrite are iostat's r_await and w_await.
//   - filesystem: pseudo filesystems (proc, sysfs, cgroup, devpts,
//     devtmpfs, debugfs, …), read-only images that are always full
//     (squashfs, iso9660, erofs), overlay (except as "/", a container's
//     root) and mounts under /dev, /proc, /sys, /run/credentials and the
//     container runtimes' and kubelet's directories are left out. tmpfs is
//     kept: a full /run or /tmp breaks services. A mount point mounted over
//     is reported once. percentUsed is df's: used / (used + available), so
//     the root reserve counts as full. Each statfs runs in its own
//     goroutine under Options.FilesystemTimeout; a mount that does not
//     answer (a dead NFS server) gets an error item and a MEDIUM error,
//     and no new statfs is started for it until the hung one returns.
//     Under a root other than "/", the mount table is init's
//     (/proc/1/mounts), the host's rather than the agent's container's.
//   - network: every interface but lo. operState is
//     /sys/class/net/<if>/operstate ("up", "down", "unknown"…).
//   - process: the processes using most CPU (since the previous run, 100%
//     = one core; only those that used any) and most resident memory.
//     Items are named by rank so the number of series stays bounded while
//     processes come and go; processName is the kernel's name of the
//     process (/proc/[pid]/stat), user the effective user's name from
//     /etc/passwd, or the uid when it has none there. A process started
//     since the previous run is ranked by all its CPU time. The command
//     line (/proc/[pid]/cmdline) is never read: it can hold passwords.
package hostagent
