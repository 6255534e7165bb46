package buffer

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary double as the child process of TestCrash.
func TestMain(m *testing.M) {
	if os.Getenv("BUFFER_CHILD") == "1" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

const crashWorkers = 4

// crashChild buffers packets from several goroutines until it is killed,
// printing "put <seq> <asset id>" after each Put returned and, with
// BUFFER_ACK=1, "ack <seq>" after each Ack returned.
func crashChild() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	key, err := hex.DecodeString(os.Getenv("BUFFER_KEY"))
	if err != nil {
		return fail(err)
	}
	s, err := newGCMSealer(key)
	if err != nil {
		return fail(err)
	}
	maxBytes, err := strconv.ParseInt(os.Getenv("BUFFER_MAX"), 10, 64)
	if err != nil {
		return fail(err)
	}
	b, err := Open(os.Getenv("BUFFER_PATH"), s, Options{MaxBytes: maxBytes})
	if err != nil {
		return fail(err)
	}
	errc := make(chan error, crashWorkers+1)
	var ids atomic.Uint64
	for range crashWorkers {
		go func() {
			for {
				id := ids.Add(1)
				seq, err := b.Put(id, packetBody(id, 400))
				if err != nil {
					errc <- err
					return
				}
				fmt.Printf("put %d %d\n", seq, id) // one write: lines do not interleave
			}
		}()
	}
	if os.Getenv("BUFFER_ACK") == "1" {
		go func() {
			after := uint64(0)
			for {
				es, err := b.Peek(after, 16)
				if err != nil {
					errc <- err
					return
				}
				if len(es) == 0 {
					<-b.Notify()
					continue
				}
				after = es[len(es)-1].Seq
				if err := b.Ack(seqsOf(es)...); err != nil {
					errc <- err
					return
				}
				for _, e := range es {
					fmt.Printf("ack %d\n", e.Seq)
				}
			}
		}()
	}
	return fail(<-errc)
}

// TestCrash SIGKILLs a process that is buffering packets and checks that
// every Put and Ack it saw return survived, and that nothing is corrupt.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const entry = 8 + elementHeader + 12 + 2 + 400 + 16 // asset ids up to 16383
	tests := []struct {
		name     string
		maxBytes int64
		ack      bool
		lines    int // output lines before the kill
	}{
		{"puts", 0, false, 600},
		{"puts and acks", 0, true, 1200},
		{"over budget", 100 * entry, false, 600},
		{"over budget with acks", 100 * entry, true, 1200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newKey(t)
			path := filepath.Join(t.TempDir(), "buffer.db")
			puts, acks := runCrashChild(t, path, key, tt.maxBytes, tt.ack, tt.lines)

			b, err := Open(path, newSealer(t, key), Options{MaxBytes: tt.maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			es := peekAll(t, b) // fails on any corrupt entry
			present := make(map[uint64]Entry, len(es))
			var maxSeq uint64
			for _, e := range es {
				if !checkBody(e) {
					t.Errorf("entry %d (asset %d) has a wrong body", e.Seq, e.AssetID)
				}
				present[e.Seq] = e
				maxSeq = max(maxSeq, e.Seq)
			}
			first := uint64(0)
			if len(es) > 0 {
				first = es[0].Seq
			}
			// Packets leave from the front only: the budget drops the
			// oldest, and the acker acknowledges in seq order (and may have
			// been killed between an Ack and its report).
			mayBeGone := func(seq uint64) bool { return (tt.maxBytes > 0 || tt.ack) && seq < first }
			unreportedAcks := 0
			for seq, id := range puts {
				maxSeq = max(maxSeq, seq)
				e, ok := present[seq]
				switch {
				case acks[seq]:
					if ok {
						t.Errorf("acknowledged seq %d is back", seq)
					}
				case !ok && !mayBeGone(seq):
					t.Errorf("committed seq %d is missing (first present %d)", seq, first)
				case !ok:
					unreportedAcks++
				case e.AssetID != id:
					t.Errorf("seq %d holds asset %d, want %d", seq, e.AssetID, id)
				}
			}
			if tt.maxBytes == 0 && unreportedAcks > 16 {
				t.Errorf("%d packets gone that were neither acknowledged nor dropped", unreportedAcks)
			}
			unreported := 0
			for seq := range present {
				if _, ok := puts[seq]; !ok {
					unreported++
				}
			}
			t.Logf("%d puts and %d acks reported; %d packets present (%d committed but not reported), %d dropped",
				len(puts), len(acks), len(es), unreported, b.Dropped())
			if unreported > crashWorkers*maxGroupRequests {
				t.Errorf("%d packets present that were never reported", unreported)
			}
			if !tt.ack && len(es) > 0 && es[len(es)-1].Seq-first+1 != uint64(len(es)) {
				t.Errorf("seqs %d..%d are not contiguous (%d packets)", first, es[len(es)-1].Seq, len(es))
			}
			if tt.maxBytes == 0 && b.Dropped() != 0 {
				t.Errorf("Dropped = %d without a budget", b.Dropped())
			}
			if tt.maxBytes > 0 {
				if b.Bytes() > tt.maxBytes {
					t.Errorf("Bytes = %d over the budget %d", b.Bytes(), tt.maxBytes)
				}
				if !tt.ack && b.Dropped() != first-1 {
					t.Errorf("Dropped = %d, want %d (everything before the first present seq)", b.Dropped(), first-1)
				}
			}
			if b.Len() != len(es) {
				t.Errorf("Len = %d, but %d packets present", b.Len(), len(es))
			}
			seq, err := b.Put(1, packetBody(1, 400))
			if err != nil {
				t.Fatal(err)
			}
			if seq <= maxSeq {
				t.Errorf("seq %d after the crash, want above %d", seq, maxSeq)
			}
		})
	}
}

// runCrashChild starts crashChild, kills it after it printed lines lines and
// returns the puts (seq → asset id) and acks it reported.
func runCrashChild(t *testing.T, path string, key []byte, maxBytes int64, ack bool, lines int) (map[uint64]uint64, map[uint64]bool) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$") // #nosec G204 -- re-executes this test binary
	cmd.Env = append(os.Environ(),
		"BUFFER_CHILD=1",
		"BUFFER_PATH="+path,
		"BUFFER_KEY="+hex.EncodeToString(key),
		"BUFFER_MAX="+strconv.FormatInt(maxBytes, 10),
		"BUFFER_ACK="+map[bool]string{true: "1", false: "0"}[ack],
	)
	var stderr bytes.Buffer // read only after Wait
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Kill() }) } // SIGKILL
	defer kill()
	timer := time.AfterFunc(30*time.Second, kill)
	defer timer.Stop()

	puts := map[uint64]uint64{}
	acks := map[uint64]bool{}
	sc := bufio.NewScanner(out)
	n := 0
	for sc.Scan() {
		var seq, id uint64
		if _, err := fmt.Sscanf(sc.Text(), "put %d %d", &seq, &id); err == nil {
			puts[seq] = id
		} else if _, err := fmt.Sscanf(sc.Text(), "ack %d", &seq); err == nil {
			acks[seq] = true
		} else {
			t.Errorf("child printed %q", sc.Text())
		}
		if n++; n == lines {
			kill()
			// Lines already in the pipe were printed before the kill.
		}
	}
	_ = cmd.Wait()
	if n < lines {
		t.Fatalf("child ended after %d lines: %s", n, stderr.String())
	}
	return puts, acks
}
