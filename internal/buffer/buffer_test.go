package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// packetBody returns a deterministic body of n bytes (n >= 8) for packet i.
func packetBody(i uint64, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, i)
	x := i*0x9E3779B97F4A7C15 + 1
	for j := 8; j < n; j++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[j] = byte(x)
	}
	return b
}

// checkBody reports whether e is the packet putTestPackets made for its asset id.
func checkBody(e Entry) bool {
	return bytes.Equal(e.Body, packetBody(e.AssetID, len(e.Body)))
}

// putN buffers packets with asset ids from..from+n-1 and returns their seqs.
func putN(t testing.TB, b *Buffer, from uint64, n, size int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range n {
		id := from + uint64(i)
		seq, err := b.Put(id, packetBody(id, size))
		if err != nil {
			t.Fatalf("Put %d: %v", id, err)
		}
		seqs[i] = seq
	}
	return seqs
}

// peekAll reads the whole queue in small batches.
func peekAll(t testing.TB, b *Buffer) []Entry {
	t.Helper()
	var all []Entry
	after := uint64(0)
	for {
		es, err := b.Peek(after, 7)
		if err != nil {
			t.Fatalf("Peek(%d): %v", after, err)
		}
		if len(es) == 0 {
			return all
		}
		all = append(all, es...)
		after = es[len(es)-1].Seq
	}
}

func seqsOf(es []Entry) []uint64 {
	s := make([]uint64, len(es))
	for i, e := range es {
		s[i] = e.Seq
	}
	return s
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestPeek(t *testing.T) {
	b := openTest(t, Options{NoSync: true})
	putN(t, b.Buffer, 100, 10, 64) // seqs 1..10, asset ids 100..109
	if err := b.Ack(3, 4, 99); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		after uint64
		max   int
		want  []uint64
	}{
		{"from the start", 0, 100, []uint64{1, 2, 5, 6, 7, 8, 9, 10}},
		{"max", 0, 3, []uint64{1, 2, 5}},
		{"after an acked seq", 3, 2, []uint64{5, 6}},
		{"after the last", 10, 5, nil},
		{"after everything", ^uint64(0), 5, nil},
		{"one", 9, 1, []uint64{10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := b.Peek(tt.after, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqsOf(es); !slices.Equal(got, tt.want) {
				t.Errorf("Peek(%d, %d) = %v, want %v", tt.after, tt.max, got, tt.want)
			}
			for _, e := range es {
				if e.AssetID != 99+e.Seq || !checkBody(e) {
					t.Errorf("entry %d: asset %d, body %x…", e.Seq, e.AssetID, e.Body[:8])
				}
			}
		})
	}
	if _, err := b.Peek(0, 0); err == nil {
		t.Error("Peek with max 0: no error")
	}
	if got, want := b.Len(), 8; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
}

func TestPutBatch(t *testing.T) {
	b := openTest(t, Options{NoSync: true})
	putN(t, b.Buffer, 1, 2, 32)
	first, err := b.PutBatch([]Packet{
		{AssetID: 10, Body: packetBody(10, 50)},
		{AssetID: 11, Body: packetBody(11, 50)},
		{AssetID: 12, Body: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	if first != 3 {
		t.Errorf("PutBatch first = %d, want 3", first)
	}
	es := peekAll(t, b.Buffer)
	if got := seqsOf(es); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("seqs = %v", got)
	}
	if e := es[4]; e.AssetID != 12 || len(e.Body) != 0 {
		t.Errorf("empty body entry = %+v", e)
	}
	if first, err := b.PutBatch(nil); first != 0 || err != nil {
		t.Errorf("PutBatch(nil) = %d, %v", first, err)
	}
}

// TestReopen checks that seqs, counts and the dropped count survive a
// restart, also when everything was acknowledged.
func TestReopen(t *testing.T) {
	tests := []struct {
		name      string
		put, ack  int
		wantLen   int
		wantFirst uint64 // seq of the first Put after reopening
	}{
		{"empty", 0, 0, 0, 1},
		{"some left", 5, 2, 3, 6},
		{"all acknowledged", 5, 5, 0, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openTest(t, Options{})
			seqs := putN(t, b.Buffer, 1, tt.put, 100)
			if err := b.Ack(seqs[:tt.ack]...); err != nil {
				t.Fatal(err)
			}
			wantBytes := b.Bytes()
			b.close(t)
			b.reopen(t)
			if got := b.Len(); got != tt.wantLen {
				t.Errorf("Len = %d, want %d", got, tt.wantLen)
			}
			if got := b.Bytes(); got != wantBytes {
				t.Errorf("Bytes = %d, want %d", got, wantBytes)
			}
			if got := seqsOf(peekAll(t, b.Buffer)); !slices.Equal(got, seqs[tt.ack:]) {
				t.Errorf("seqs = %v, want %v", got, seqs[tt.ack:])
			}
			seq, err := b.Put(1, []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if seq != tt.wantFirst {
				t.Errorf("seq after reopen = %d, want %d", seq, tt.wantFirst)
			}
		})
	}
}

func TestBudget(t *testing.T) {
	const body = 200
	// The size of one entry: key, element header and the sealed value
	// (nonce, uvarint asset id below 128, body, tag).
	const entry = 8 + elementHeader + 12 + 1 + body + 16
	tests := []struct {
		name        string
		maxEntries  int64
		put         int
		ackFirst    int // acknowledged before the last put
		wantLen     int
		wantDropped uint64
	}{
		{"below", 10, 9, 0, 9, 0},
		{"exactly", 10, 10, 0, 10, 0},
		{"over by one", 10, 11, 0, 10, 1},
		{"far over", 10, 35, 0, 10, 25},
		{"one fits", 1, 5, 0, 1, 4},
		{"ack makes room", 10, 11, 1, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openTest(t, Options{MaxBytes: tt.maxEntries * entry, NoSync: true})
			putN(t, b.Buffer, 1, tt.put-1, body)
			if err := b.Ack(seqRange(1, uint64(tt.ackFirst))...); err != nil {
				t.Fatal(err)
			}
			putN(t, b.Buffer, uint64(tt.put), 1, body)
			check := func() {
				t.Helper()
				if got := b.Len(); got != tt.wantLen {
					t.Errorf("Len = %d, want %d", got, tt.wantLen)
				}
				if got := b.Dropped(); got != tt.wantDropped {
					t.Errorf("Dropped = %d, want %d", got, tt.wantDropped)
				}
				if got, want := b.Bytes(), int64(tt.wantLen)*entry; got != want {
					t.Errorf("Bytes = %d, want %d", got, want)
				}
				// The newest are kept.
				want := seqRange(uint64(tt.put-tt.wantLen+1), uint64(tt.put))
				if got := seqsOf(peekAll(t, b.Buffer)); !slices.Equal(got, want) {
					t.Errorf("seqs = %v, want %v", got, want)
				}
			}
			check()
			b.close(t)
			b.reopen(t)
			check()
		})
	}
}

func TestClearDropped(t *testing.T) {
	b := openTest(t, Options{MaxBytes: 1000, NoSync: true})
	putN(t, b.Buffer, 1, 20, 100) // 6 entries of 153 bytes fit
	reported := b.Dropped()
	if reported != 14 {
		t.Fatalf("Dropped = %d, want 14", reported)
	}
	putN(t, b.Buffer, 21, 2, 100) // dropped while the report was in flight
	for _, n := range []uint64{reported, 100} {
		if err := b.ClearDropped(n); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Dropped(); got != 0 {
		t.Errorf("Dropped after clearing too much = %d, want 0", got)
	}
	putN(t, b.Buffer, 23, 2, 100)
	if err := b.ClearDropped(1); err != nil {
		t.Fatal(err)
	}
	b.close(t)
	b.reopen(t)
	if got := b.Dropped(); got != 1 {
		t.Errorf("Dropped after reopening = %d, want 1", got)
	}
}

// tamper edits the closed buffer file's packets bucket directly.
func tamper(t *testing.T, path string, fn func(t *testing.T, packets *bolt.Bucket)) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		fn(t, tx.Bucket(packetsBucket))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustPut(t *testing.T, b *bolt.Bucket, seq uint64, v []byte) {
	t.Helper()
	if err := b.Put(seqKey(seq), v); err != nil {
		t.Fatal(err)
	}
}

func TestCorrupt(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, b *bolt.Bucket, key []byte)
		corrupt []uint64 // of seqs 1..6
	}{
		{"flipped bit", func(t *testing.T, b *bolt.Bucket, _ []byte) {
			v := bytes.Clone(b.Get(seqKey(3)))
			v[20] ^= 1
			mustPut(t, b, 3, v)
		}, []uint64{3}},
		{"truncated", func(t *testing.T, b *bolt.Bucket, _ []byte) {
			mustPut(t, b, 4, bytes.Clone(b.Get(seqKey(4))[:5]))
		}, []uint64{4}},
		{"empty", func(t *testing.T, b *bolt.Bucket, _ []byte) {
			mustPut(t, b, 1, nil)
		}, []uint64{1}},
		{"swapped", func(t *testing.T, b *bolt.Bucket, _ []byte) {
			v2, v5 := bytes.Clone(b.Get(seqKey(2))), bytes.Clone(b.Get(seqKey(5)))
			mustPut(t, b, 2, v5)
			mustPut(t, b, 5, v2)
		}, []uint64{2, 5}},
		{"moved to a new seq", func(t *testing.T, b *bolt.Bucket, _ []byte) {
			mustPut(t, b, 7, bytes.Clone(b.Get(seqKey(6))))
		}, []uint64{7}},
		{"sealed with another key", func(t *testing.T, b *bolt.Bucket, _ []byte) {
			other := newSealer(t, newKey(t))
			mustPut(t, b, 2, other.Seal(nil, []byte{1, 'x'}, appendAAD(nil, seqKey(2))))
		}, []uint64{2}},
		{"sealed without the prefix", func(t *testing.T, b *bolt.Bucket, key []byte) {
			s := newSealer(t, key)
			mustPut(t, b, 6, s.Seal(nil, []byte{1, 'x'}, seqKey(6)))
		}, []uint64{6}},
		{"malformed asset id", func(t *testing.T, b *bolt.Bucket, key []byte) {
			s := newSealer(t, key)
			mustPut(t, b, 3, s.Seal(nil, nil, appendAAD(nil, seqKey(3))))
		}, []uint64{3}},
		{"foreign key length skipped", func(t *testing.T, b *bolt.Bucket, _ []byte) {
			if err := b.Put([]byte("zzzzzzzzz"), []byte("junk")); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openTest(t, Options{NoSync: true})
			putN(t, b.Buffer, 1, 6, 64)
			b.close(t)
			tamper(t, b.path, func(t *testing.T, p *bolt.Bucket) { tt.tamper(t, p, b.key) })
			b.reopen(t)

			// The consumer's loop: send what Peek returns, drop what is corrupt.
			var good, dropped []uint64
			after := uint64(0)
			for range 20 {
				es, err := b.Peek(after, 100)
				var ce *CorruptError
				if errors.As(err, &ce) {
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("packet %d ", ce.Seq)) {
						t.Errorf("error %q does not name seq %d", err, ce.Seq)
					}
					if err := b.Drop(ce.Seq); err != nil {
						t.Fatal(err)
					}
					dropped = append(dropped, ce.Seq)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(es) == 0 {
					break
				}
				for _, e := range es {
					if !checkBody(e) {
						t.Errorf("entry %d has a wrong body", e.Seq)
					}
				}
				good = append(good, seqsOf(es)...)
				after = es[len(es)-1].Seq
			}
			if !slices.Equal(dropped, tt.corrupt) {
				t.Errorf("dropped %v, want %v", dropped, tt.corrupt)
			}
			var wantGood []uint64
			for s := uint64(1); s <= 6; s++ {
				if !slices.Contains(tt.corrupt, s) {
					wantGood = append(wantGood, s)
				}
			}
			if !slices.Equal(good, wantGood) {
				t.Errorf("good %v, want %v", good, wantGood)
			}
			if got := b.Dropped(); got != uint64(len(tt.corrupt)) {
				t.Errorf("Dropped = %d, want %d", got, len(tt.corrupt))
			}
			if seq, err := b.Put(1, []byte("after")); err != nil || seq <= 6 {
				t.Errorf("Put after tampering = %d, %v", seq, err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) // creates the file
		key     []byte                          // nil: the key that made the file
		opts    Options
		wantIs  error
		want    string
	}{
		{"wrong key", nil, newKey(t), Options{}, ErrWrongKey, "another key"},
		{"negative budget", nil, nil, Options{MaxBytes: -1}, nil, "MaxBytes must not be negative"},
		{"not a bbolt file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 1<<16), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil, Options{}, nil, "opening buffer"},
		{"foreign bbolt file", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket(packetsBucket)
				if err != nil {
					return err
				}
				return b.Put(seqKey(1), []byte("x"))
			})
			if err != nil {
				t.Fatal(err)
			}
		}, nil, Options{}, nil, "not a sonde buffer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			key := newKey(t)
			if tt.prepare != nil {
				tt.prepare(t, path)
			} else {
				b, err := Open(path, newSealer(t, key), Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				putN(t, b, 1, 3, 10)
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.key != nil {
				key = tt.key
			}
			b, err := Open(path, newSealer(t, key), tt.opts)
			if err == nil {
				_ = b.Close()
				t.Fatal("Open succeeded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "b.db"), nil, Options{}); err == nil {
		t.Error("Open without a sealer succeeded")
	}
}

func TestLocked(t *testing.T) {
	b := openTest(t, Options{NoSync: true})
	start := time.Now()
	_, err := Open(b.path, newSealer(t, b.key), Options{})
	if err == nil || !strings.Contains(err.Error(), "another sonde-appliance") {
		t.Errorf("second Open: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second Open took %v", d)
	}
}

func TestFileMode(t *testing.T) {
	b := openTest(t, Options{NoSync: true})
	b.close(t)
	st, err := os.Stat(b.path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("new file mode = %o, want 600", m)
	}
	if err := os.Chmod(b.path, 0o644); err != nil {
		t.Fatal(err)
	}
	b.reopen(t)
	if st, err = os.Stat(b.path); err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("reopened file mode = %o, want 600", m)
	}
}

// TestFailedPutKeepsBuffered checks that a Put that cannot be committed
// leaves what was buffered before intact and the buffer usable.
func TestFailedPutKeepsBuffered(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		size     int   // body size of the failing Put
		wantIs   error // what the failing Put wraps
		wantText string
	}{
		{"larger than the budget", Options{MaxBytes: 4096}, 5000, ErrTooLarge, "buffering check data: packet larger than the buffer's budget"},
		{"disk full", Options{maxFileSize: 256 << 10}, 400, ErrDiskFull, "buffering check data: disk full: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.NoSync = true
			b := openTest(t, tt.opts)
			var ok []uint64
			var err error
			for id := uint64(1); id < 100000; id++ {
				var seq uint64
				seq, err = b.Put(id, packetBody(id, min(tt.size, 400)))
				if err != nil {
					break
				}
				ok = append(ok, seq)
				if tt.wantIs == ErrTooLarge && len(ok) == 3 {
					_, err = b.Put(id+1, packetBody(id+1, tt.size))
					break
				}
			}
			if !errors.Is(err, tt.wantIs) || !strings.HasPrefix(err.Error(), tt.wantText) {
				t.Fatalf("failing Put: %v, want %v starting %q", err, tt.wantIs, tt.wantText)
			}
			t.Logf("%d packets buffered before: %v", len(ok), err)
			check := func() {
				t.Helper()
				es := peekAll(t, b.Buffer)
				if got := seqsOf(es); !slices.Equal(got, ok) {
					t.Fatalf("seqs %v…, want %v…", got[:min(len(got), 5)], ok[:min(len(ok), 5)])
				}
				for _, e := range es {
					if !checkBody(e) {
						t.Fatalf("entry %d has a wrong body", e.Seq)
					}
				}
				if b.Len() != len(ok) {
					t.Fatalf("Len = %d, want %d", b.Len(), len(ok))
				}
			}
			check()
			// Acknowledging frees pages that later Puts reuse.
			if err := b.Ack(ok[:len(ok)/2]...); err != nil {
				t.Fatal(err)
			}
			ok = ok[len(ok)/2:]
			seqs := putN(t, b.Buffer, 1_000_000, 2, 400)
			if seqs[0] <= ok[len(ok)-1] {
				t.Errorf("seq %d reused after a failed Put", seqs[0])
			}
			ok = append(ok, seqs...)
			check()
			b.close(t)
			b.reopen(t)
			check()
		})
	}
}

// TestConcurrent runs producers and a consumer together, as the appliance
// does: every packet is delivered once, in seq order.
func TestConcurrent(t *testing.T) {
	const producers, perProducer = 8, 200
	b := openTest(t, Options{})
	var wg sync.WaitGroup
	seqs := make([][]uint64, producers)
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				id := uint64(p*perProducer + i)
				var err error
				if i%10 == 0 {
					var first uint64
					first, err = b.PutBatch([]Packet{{id, packetBody(id, 300)}})
					seqs[p] = append(seqs[p], first)
				} else {
					var seq uint64
					seq, err = b.Put(id, packetBody(id, 300))
					seqs[p] = append(seqs[p], seq)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var got []Entry
	after := uint64(0)
	for finished := false; ; {
		es, err := b.Peek(after, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > 0 {
			got = append(got, es...)
			after = es[len(es)-1].Seq
			if err := b.Ack(seqsOf(es)...); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if finished {
			break
		}
		select {
		case <-b.Notify():
		case <-done:
			finished = true // one more Peek for what was committed last
		case <-time.After(10 * time.Second):
			t.Fatal("no notification")
		}
	}
	if len(got) != producers*perProducer {
		t.Fatalf("consumed %d packets, want %d", len(got), producers*perProducer)
	}
	for i, e := range got {
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Fatalf("seq %d after %d", e.Seq, got[i-1].Seq)
		}
		if !checkBody(e) {
			t.Fatalf("entry %d has a wrong body", e.Seq)
		}
	}
	for p := range producers {
		if !slices.IsSorted(seqs[p]) {
			t.Errorf("producer %d got seqs out of order", p)
		}
	}
	if b.Len() != 0 || b.Bytes() != 0 {
		t.Errorf("after acking everything: Len %d, Bytes %d", b.Len(), b.Bytes())
	}
}

func TestClose(t *testing.T) {
	b := openTest(t, Options{NoSync: true})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := uint64(0); ; i++ {
				if _, err := b.Put(i, []byte("x")); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Put during Close: %v", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	b.close(t)
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	calls := map[string]func() error{
		"Put":          func() error { _, err := b.Put(1, nil); return err },
		"Peek":         func() error { _, err := b.Peek(0, 1); return err },
		"Ack":          func() error { return b.Ack(1) },
		"Drop":         func() error { return b.Drop(1) },
		"ClearDropped": func() error { return b.ClearDropped(1) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	// Every Put that returned a seq is in the file.
	n := b.Len()
	b.reopen(t)
	if got := len(peekAll(t, b.Buffer)); got != n {
		t.Errorf("reopened with %d packets, Len said %d", got, n)
	}
}

func TestNotify(t *testing.T) {
	b := openTest(t, Options{NoSync: true})
	select {
	case <-b.Notify():
		t.Fatal("notification before any Put")
	default:
	}
	putN(t, b.Buffer, 1, 3, 10)
	select {
	case <-b.Notify():
	default:
		t.Fatal("no notification after Put")
	}
	select {
	case <-b.Notify():
		t.Fatal("notifications did not coalesce")
	default:
	}
	if err := b.Ack(1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Notify():
		t.Fatal("notification after Ack")
	default:
	}
}

// TestReplay drains a backlog the way the appliance does after a reconnect.
// BenchmarkReplay measures the same loop at a million packets.
func TestReplay(t *testing.T) {
	const n = 5000
	b := openTest(t, Options{})
	fill(t, b.Buffer, n, 400)
	start := time.Now()
	got := replay(t, b.Buffer, 256)
	if got != n {
		t.Fatalf("replayed %d packets, want %d", got, n)
	}
	t.Logf("replayed %d packets in %v", n, time.Since(start))
	if b.Len() != 0 {
		t.Errorf("Len after replay = %d", b.Len())
	}
}

// TestFailedGroup checks that a commit that fails as a group is retried
// request by request, so an Ack is not failed by a Put that does not fit.
func TestFailedGroup(t *testing.T) {
	b := openTest(t, Options{maxFileSize: 256 << 10, NoSync: true})
	var ok []uint64
	for id := uint64(1); ; id++ {
		seq, err := b.Put(id, packetBody(id, 400))
		if errors.Is(err, ErrDiskFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ok = append(ok, seq)
	}
	big := make([]Packet, 200)
	for i := range big {
		big[i] = Packet{AssetID: 1, Body: packetBody(1, 400)}
	}
	put := &request{puts: big, done: make(chan struct{})}
	ack := &request{acks: ok[:1], done: make(chan struct{})}
	// The writer goroutine is idle: commit as it would.
	b.commit([]*request{put, ack}, &dropLog{})
	<-put.done
	<-ack.done
	if !errors.Is(put.err, ErrDiskFull) {
		t.Errorf("put: %v, want ErrDiskFull", put.err)
	}
	if ack.err != nil {
		t.Errorf("ack: %v", ack.err)
	}
	if got := seqsOf(peekAll(t, b.Buffer)); !slices.Equal(got, ok[1:]) {
		t.Errorf("seqs %v, want %v", got, ok[1:])
	}
}

func TestIsDiskFull(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&os.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("sync: %w", syscall.EDQUOT), true},
		{berrors.ErrMaxSizeReached, true},
		{fmt.Errorf("file resize error: %s", syscall.ENOSPC), true}, // as bbolt's grow reports it
		{&os.PathError{Op: "write", Path: "/x", Err: syscall.EIO}, false},
		{berrors.ErrTxClosed, false},
	}
	for _, tt := range tests {
		if got := isDiskFull(tt.err); got != tt.want {
			t.Errorf("isDiskFull(%v) = %v, want %v", tt.err, got, tt.want)
		}
		if got := errors.Is(classify(tt.err), ErrDiskFull); got != tt.want {
			t.Errorf("classify(%v) is ErrDiskFull: %v, want %v", tt.err, got, tt.want)
		}
	}
}
