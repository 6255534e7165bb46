package hostagent

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseNumbers(t *testing.T) {
	uints := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999999", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"0x10", 0, false},
		{"00012", 12, true},
	}
	for _, tt := range uints {
		got, ok := parseUint([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseUint(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	ints := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"-1", -1, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775808", math.MinInt64, true},
		{"-9223372036854775809", 0, false},
		{"-", 0, false},
		{"--1", 0, false},
	}
	for _, tt := range ints {
		got, ok := parseInt([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	floats := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.52", 0.52, true},
		{"12345.67", 12345.67, true},
		{"-5", 0, false},
		{"1e400", 0, false},
		{"NaN", 0, false},
		{"inf", 0, false},
		{"1.2.3", 0, false},
		{"", 0, false},
	}
	for _, tt := range floats {
		got, ok := parseFloat([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseFloat(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFields(t *testing.T) {
	var f [3][]byte
	tests := []struct {
		in   string
		n    int
		want []string
	}{
		{"", 0, nil},
		{"   ", 0, nil},
		{"a", 1, []string{"a"}},
		{"  a \t b  ", 2, []string{"a", "b"}},
		{"a b c d e", 5, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		n := fields([]byte(tt.in), f[:])
		var got []string
		for i := 0; i < min(n, len(f)); i++ {
			got = append(got, string(f[i]))
		}
		if n != tt.n || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("fields(%q) = %d %q, want %d %q", tt.in, n, got, tt.n, tt.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr string
	}{
		{
			name: "usual",
			in: "cpu  10 1 5 100 2 0 1 0 0 0\ncpu0 4 1 2 50 1 0 1 0 0 0\ncpu1 6 0 3 50 1 0 0 0 0 0\n" +
				"intr 1 2 3\nctxt 5\nbtime 1700000000\nprocesses 9\nprocs_running 2\nprocs_blocked 0\n",
			want: procStat{
				total: cpuTimes{10, 1, 5, 100, 2, 0, 1, 0}, hasTotal: true,
				cpus:     []cpuLine{{0, cpuTimes{4, 1, 2, 50, 1, 0, 1, 0}}, {1, cpuTimes{6, 0, 3, 50, 1, 0, 0, 0}}},
				bootTime: 1700000000, procsRunning: 2, hasBootTime: true, hasRunning: true, hasBlocked: true,
			},
		},
		{
			name: "offline CPUs leave gaps; extra columns ignored",
			in:   "cpu 1 2 3 4 5 6 7 8\ncpu2 1 2 3 4 5 6 7 8 9 10 11 12\n",
			want: procStat{total: cpuTimes{1, 2, 3, 4, 5, 6, 7, 8}, hasTotal: true, cpus: []cpuLine{{2, cpuTimes{1, 2, 3, 4, 5, 6, 7, 8}}}},
		},
		{
			name:    "no total",
			in:      "cpu0 1 2 3 4 5 6 7 8\nbtime 5\n",
			want:    procStat{cpus: []cpuLine{{0, cpuTimes{1, 2, 3, 4, 5, 6, 7, 8}}}, bootTime: 5, hasBootTime: true},
			wantErr: `no "cpu" line`,
		},
		{
			name:    "old kernel without steal",
			in:      "cpu 1 2 3 4 5 6 7\n",
			wantErr: "want at least 9",
		},
		{
			name:    "repeated and bad lines",
			in:      "cpu 1 2 3 4 5 6 7 8\ncpu 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\ncpu7 0 0 0 0 0 0 0 0\ncpu3 0 0 0 0 0 0 0 0\ncpu7 1 1 1 1 1 1 1 1\ncpuz 1 2 3 4 5 6 7 8\ncpu99999999 1 2 3 4 5 6 7 8\nbtime x\nprocs_running -1\n",
			want:    procStat{total: cpuTimes{1, 2, 3, 4, 5, 6, 7, 8}, hasTotal: true, cpus: []cpuLine{{0, cpuTimes{1, 2, 3, 4, 5, 6, 7, 8}}, {7, cpuTimes{}}, {3, cpuTimes{}}}},
			wantErr: "repeated cpu line",
		},
		{
			name:    "huge",
			in:      "cpu 18446744073709551615 0 0 0 0 0 0 0\ncpu0 18446744073709551616 0 0 0 0 0 0 0\n",
			want:    procStat{total: cpuTimes{math.MaxUint64}, hasTotal: true},
			wantErr: "bad number",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got procStat
			err := parseStat([]byte(tt.in), &got)
			checkErr(t, err, tt.wantErr)
			if len(got.cpus) == 0 {
				got.cpus = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCPUPercents(t *testing.T) {
	prev := cpuTimes{100, 0, 100, 1000, 10, 0, 0, 0}
	tests := []struct {
		name string
		cur  cpuTimes
		want []string
	}{
		{"usual", cpuTimes{150, 0, 125, 1020, 15, 0, 0, 0},
			[]string{"percentUser=50", "percentNice=0", "percentSystem=25", "percentIdle=20", "percentIowait=5", "percentIrq=0", "percentSoftirq=0", "percentSteal=0"}},
		{"no tick", prev, nil},
		{"iowait went backwards", cpuTimes{150, 0, 125, 1020, 9, 0, 0, 0}, nil},
		{"reboot", cpuTimes{1, 0, 1, 10, 0, 0, 0, 0}, nil},
	}
	for _, tt := range tests {
		var m metrics
		ok := m.cpuPercents(tt.cur, prev)
		if got := metricStrings(m); !reflect.DeepEqual(got, tt.want) || ok != (tt.want != nil) {
			t.Errorf("%s: got %v %v, want %v", tt.name, got, ok, tt.want)
		}
	}
	// Counters near the top of uint64 whose sum overflows give nothing.
	var m metrics
	if m.cpuPercents(cpuTimes{math.MaxUint64, math.MaxUint64}, cpuTimes{}) {
		t.Errorf("overflowing total gave %v", metricStrings(m))
	}
}

func TestPerSecond(t *testing.T) {
	tests := []struct {
		cur, prev uint64
		secs      float64
		want      float64
		ok        bool
	}{
		{130, 100, 30, 1, true},
		{100, 100, 30, 0, true},
		{99, 100, 30, 0, false},
		{math.MaxUint64, 0, 1, math.MaxUint64, true},
		{130, 100, 0, 0, false},
		{130, 100, -1, 0, false},
		{130, 100, math.NaN(), 0, false},
	}
	for _, tt := range tests {
		got, ok := perSecond(tt.cur, tt.prev, tt.secs)
		if got != tt.want || ok != tt.ok {
			t.Errorf("perSecond(%d, %d, %v) = %v %v, want %v %v", tt.cur, tt.prev, tt.secs, got, ok, tt.want, tt.ok)
		}
	}
	base := time.Unix(1000, 0)
	for _, tt := range []struct {
		now, prev time.Time
		want      float64
	}{
		{base.Add(30 * time.Second), base, 30},
		{base, time.Time{}, 0},
		{base, base, 0},
		{base, base.Add(time.Second), 0},
	} {
		if got := interval(tt.now, tt.prev); got != tt.want {
			t.Errorf("interval(%v, %v) = %v, want %v", tt.now, tt.prev, got, tt.want)
		}
	}
}

func TestParseLoadavg(t *testing.T) {
	tests := []struct {
		in      string
		want    loadavg
		wantErr string
	}{
		{"0.15 0.89 1.83 1/90 32585\n", loadavg{0.15, 0.89, 1.83, 1, 90}, ""},
		{"12.00 3.00 1.00 100/4000 1", loadavg{12, 3, 1, 100, 4000}, ""},
		{"0.15 0.89 1.83", loadavg{}, "want at least 4"},
		{"0.15 x 1.83 1/90 1", loadavg{}, "bad load average"},
		{"0.15 0.89 1.83 190 1", loadavg{}, "bad task counts"},
		{"0.15 0.89 1.83 1/-90 1", loadavg{}, "bad task counts"},
		{"0.15 0.89 1.83 1/99999999999999999999 1", loadavg{}, "bad task counts"},
		{"", loadavg{}, "want at least 4"},
	}
	for _, tt := range tests {
		got, err := parseLoadavg([]byte(tt.in))
		checkErr(t, err, tt.wantErr)
		if got != tt.want {
			t.Errorf("parseLoadavg(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseUptime(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"12345.67 2345.67\n", 12345.67, ""},
		{"5", 5, ""},
		{"", 0, "empty"},
		{"-5 1", 0, "bad uptime"},
		{"1e999 1", 0, "bad uptime"},
	}
	for _, tt := range tests {
		got, err := parseUptime([]byte(tt.in))
		checkErr(t, err, tt.wantErr)
		if got != tt.want {
			t.Errorf("parseUptime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	const kB = 1024
	tests := []struct {
		name    string
		in      string
		want    meminfo
		wantErr string
	}{
		{
			name: "usual",
			in:   "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\nBuffers: 10 kB\nCached: 200 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 0\nActive(anon): 5 kB\n",
			want: meminfo{total: 1000 * kB, free: 100 * kB, available: 500 * kB, buffers: 10 * kB, cached: 200 * kB,
				has: hasMemTotal | hasMemFree | hasMemAvailable | hasBuffers | hasCached | hasSwapTotal | hasSwapFree},
		},
		{
			name:    "no MemTotal",
			in:      "MemFree: 100 kB\n",
			want:    meminfo{free: 100 * kB, has: hasMemFree},
			wantErr: "no MemTotal",
		},
		{
			name:    "malformed lines skipped",
			in:      "MemTotal: 1000 kB\nMemFree 100 kB\nCached: x kB\nBuffers: 5 MB\nSwapTotal: 18014398509481984 kB\nMemTotal: 5 kB\nMemAvailable: 7\n",
			want:    meminfo{total: 1000 * kB, has: hasMemTotal},
			wantErr: "no colon",
		},
		{
			name: "largest size",
			in:   "MemTotal: 9007199254740991 kB\n",
			want: meminfo{total: 9007199254740991 * kB, has: hasMemTotal},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMeminfo([]byte(tt.in))
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseDiskstats(t *testing.T) {
	type disk struct {
		name                                              string
		reads, readSectors, readTicks                     uint64
		writes, writeSectors, writeTicks, inProg, ioTicks uint64
	}
	tests := []struct {
		name    string
		in      string
		want    []disk
		wantErr string
	}{
		{
			name: "kernel 5.5 (20 columns)",
			in:   " 254 0 vda 610561 53718 17792002 996726 210325 443923 70255808 671641 0 230404 1775039 265494 60 224076304 69283 22195 37389\n",
			want: []disk{{"vda", 610561, 17792002, 996726, 210325, 70255808, 671641, 0, 230404}},
		},
		{
			name: "kernel 4.4 (14 columns) and a partition",
			in:   "8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 1 sda1 1 0 8 1 0 0 0 0 0 1 1\n",
			want: []disk{{"sda", 1, 3, 4, 5, 7, 8, 9, 10}, {"sda1", 1, 8, 1, 0, 0, 0, 0, 1}},
		},
		{
			name:    "2.6 partition line (7 columns), non-numbers, negative",
			in:      "8 1 sda1 1 2 3 4\n8 2 sda2 a 2 3 4 5 6 7 8 9 10 11\n8 3 sda3 -1 2 3 4 5 6 7 8 9 10 11\nx 4 sda4 1 2 3 4 5 6 7 8 9 10 11\n\n",
			wantErr: "7 columns",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := parseDiskstats([]byte(tt.in), nil)
			checkErr(t, err, tt.wantErr)
			var got []disk
			for _, d := range lines {
				got = append(got, disk{string(d.name), d.reads, d.readSectors, d.readTicks, d.writes, d.writeSectors, d.writeTicks, d.inProgress, d.ioTicks})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDiskRates(t *testing.T) {
	prev := diskLine{reads: 100, readSectors: 1000, readTicks: 50, writes: 10, writeSectors: 80, writeTicks: 20, ioTicks: 1000}
	tests := []struct {
		name string
		cur  diskLine
		want []string
	}{
		{"usual", diskLine{reads: 130, readSectors: 1600, readTicks: 80, writes: 10, writeSectors: 80, writeTicks: 20, ioTicks: 16000},
			[]string{"readsPerSecond=1", "writesPerSecond=0", "readBytesPerSecond=10240", "writeBytesPerSecond=0", "percentBusy=50", "msPerRead=1"}},
		{"busy capped at 100%", diskLine{reads: 100, readSectors: 1000, readTicks: 50, writes: 10, writeSectors: 80, writeTicks: 20, ioTicks: 32000},
			[]string{"readsPerSecond=0", "writesPerSecond=0", "readBytesPerSecond=0", "writeBytesPerSecond=0", "percentBusy=100"}},
		{"device replaced", diskLine{reads: 1, readSectors: 8, writes: 1, writeSectors: 8, ioTicks: 1}, nil},
		{"32-bit wrap of one counter", diskLine{reads: 5, readSectors: 1600, readTicks: 80, writes: 13, writeSectors: 104, writeTicks: 23, ioTicks: 4000},
			[]string{"writesPerSecond=0.1", "readBytesPerSecond=10240", "writeBytesPerSecond=409.6", "percentBusy=10", "msPerWrite=1"}},
	}
	for _, tt := range tests {
		var m metrics
		m.diskRates(&tt.cur, &prev, 30)
		if got := metricStrings(m); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	type iface struct {
		name                                  string
		rxBytes, rxPackets, rxErrors, rxDrops uint64
		txBytes, txPackets, txErrors, txDrops uint64
	}
	const header = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	tests := []struct {
		name    string
		in      string
		want    []iface
		wantErr string
	}{
		{
			name: "usual",
			in: header + "    lo: 2816910379 7074052    0    0    0     0          0         0 2816910379 7074052    0    0    0     0       0          0\n" +
				"  eth0: 1030743618   50627    1    2    0     0          0         0  5111041   44691    3    4    0     0       0          0\n",
			want: []iface{
				{"lo", 2816910379, 7074052, 0, 0, 2816910379, 7074052, 0, 0},
				{"eth0", 1030743618, 50627, 1, 2, 5111041, 44691, 3, 4},
			},
		},
		{
			name: "old kernels: no space after the colon",
			in:   header + "eth0:123 1 0 0 0 0 0 0 456 2 0 0 0 0 0 0\n",
			want: []iface{{"eth0", 123, 1, 0, 0, 456, 2, 0, 0}},
		},
		{
			name:    "bad lines",
			in:      header + "eth0: 1 2 3\nno colon here\n../x: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\naveryveryverylongname: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\nok: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			want:    []iface{{"ok", 1, 2, 3, 4, 9, 10, 11, 12}},
			wantErr: "3 counters",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := parseNetDev([]byte(tt.in), nil)
			checkErr(t, err, tt.wantErr)
			var got []iface
			for _, d := range lines {
				got = append(got, iface{string(d.name), d.rxBytes, d.rxPackets, d.rxErrors, d.rxDrops, d.txBytes, d.txPackets, d.txErrors, d.txDrops})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePidStat(t *testing.T) {
	const tail = " S 1 1 1 0 -1 4194560 100 0 2 0 120 30 0 0 20 0 7 0 5000 123456789 2500 18446744073709551615 1 1 0"
	tests := []struct {
		name     string
		in       string
		wantComm string
		want     pidStat
		wantErr  string
	}{
		{"usual", "42 (postgres)" + tail, "postgres", pidStat{utime: 120, stime: 30, threads: 7, start: 5000, rss: 2500}, ""},
		{"name with spaces and parentheses", "42 (a) (b c)" + tail, "a) (b c", pidStat{utime: 120, stime: 30, threads: 7, start: 5000, rss: 2500}, ""},
		{"empty name", "42 ()" + tail, "", pidStat{utime: 120, stime: 30, threads: 7, start: 5000, rss: 2500}, ""},
		{"truncated", "42 (postgres) S 1 1 1", "", pidStat{}, "want at least 22"},
		{"no name", "42 postgres" + tail, "", pidStat{}, "no (name)"},
		{"reversed parentheses", "42 )x(" + tail, "", pidStat{}, "no (name)"},
		{"negative rss", "42 (x) S 1 1 1 0 -1 4194560 100 0 2 0 120 30 0 0 20 0 7 0 5000 123456789 -5", "", pidStat{}, "bad number"},
		{"not a number", "42 (x) S 1 1 1 0 -1 4194560 100 0 2 0 abc 30 0 0 20 0 7 0 5000 123456789 5", "", pidStat{}, "bad number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePidStat([]byte(tt.in))
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if string(got.comm) != tt.wantComm {
				t.Errorf("name %q, want %q", got.comm, tt.wantComm)
			}
			got.comm = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePID(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "4242": 4242, "2147483647": math.MaxInt32} {
		if got, ok := parsePID([]byte(in)); !ok || got != want {
			t.Errorf("parsePID(%q) = %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "0", "01", "self", "thread-self", "12a", "2147483648", "99999999999", "-1"} {
		if got, ok := parsePID([]byte(in)); ok {
			t.Errorf("parsePID(%q) = %d, want not a pid", in, got)
		}
	}
}

func TestParseStatusUID(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"Name:\tx\nUid:\t1000\t1001\t1000\t1000\nGid:\t0\t0\t0\t0\n", 1001, true},
		{"Uid:\t0\t0\t0\t0", 0, true},
		{"Name:\tx\n", 0, false},
		{"Uid:\t5\n", 0, false},
		{"Uid:\t5\t4294967296\t0\t0\n", 0, false},
		{"Uid: a b c d\n", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseStatusUID([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseStatusUID(%q) = %d %v, want %d %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLookupUsers(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/bash\n# comment\n+nisuser::::::\nbroken\n:x:5:5::/:\nalias:x:0:0::/:\nbob:x:1000:1000::/home/bob:/bin/sh\nbad:x:-1:0::/:\nhuge:x:4294967296:0::/:\n"
	names := map[int64]string{0: "", 1000: "", 5: "", 4242: ""}
	lookupUsers([]byte(passwd), names)
	want := map[int64]string{0: "root", 1000: "bob", 5: "", 4242: ""}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
}

// utmpRecord makes one utmp record as glibc writes it.
func utmpRecord(typ int16, user string) []byte {
	rec := make([]byte, utmpRecordSize)
	binary.NativeEndian.PutUint16(rec, uint16(typ))
	copy(rec[utmpUserOffset:], user)
	return rec
}

func TestParseUtmp(t *testing.T) {
	cat := func(recs ...[]byte) []byte {
		var b []byte
		for _, r := range recs {
			b = append(b, r...)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		want    int64
		wantErr string
	}{
		{"empty", nil, 0, ""},
		{"sessions", cat(utmpRecord(2, "reboot"), utmpRecord(7, "alice"), utmpRecord(6, "LOGIN"), utmpRecord(7, "root"), utmpRecord(8, "")), 2, ""},
		{"a session without user", cat(utmpRecord(7, "")), 0, ""},
		{"partial record", cat(utmpRecord(7, "alice"), []byte{7, 0, 0}), 1, "3 bytes of a partial record"},
		{"too short", []byte{7, 0}, 0, "partial record"},
	}
	for _, tt := range tests {
		got, err := parseUtmp(tt.in)
		checkErr(t, err, tt.wantErr)
		if got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestProblems(t *testing.T) {
	var p problems
	if p.checkError() != nil {
		t.Fatal("no problem gave an error")
	}
	p.addf(2, "a")
	p.addf(1, "b\nc")
	for i := 0; i < 5; i++ {
		p.addf(2, "x%d", i)
	}
	ce := p.checkError()
	if ce.Severity != 1 || ce.Message != "a; b; c; x0; x1; x2 (and 2 more)" {
		t.Errorf("got %+v", ce)
	}
	if q := quote([]byte(strings.Repeat("y", 100))); len(q) > 80 {
		t.Errorf("quote not shortened: %s", q)
	}
}

func TestMetricsDropWhatTheHubRefuses(t *testing.T) {
	var m metrics
	m.float("nan", math.NaN())
	m.float("inf", math.Inf(1))
	m.uint("huge", math.MaxUint64)
	m.uint("big", math.MaxInt64)
	m.str("long", strings.Repeat("x", 100000))
	if len(m) != 2 || m[0].Name != "big" || m[1].Name != "long" || len(m[1].Value.Str) != maxString {
		t.Errorf("got %v", metricStrings(m)[:len(m)-1])
	}
}
