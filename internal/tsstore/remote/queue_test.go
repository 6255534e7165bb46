package remote

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects a queue's log lines for the assertions on what it
// reports.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openTestQueue opens a queue in dir that syncs only on Close, so tests
// decide when the ack file is written.
func openTestQueue(t testing.TB, dir string, opts QueueOptions) (*Queue, *logBuffer) {
	t.Helper()
	if opts.SyncInterval == 0 {
		opts.SyncInterval = time.Hour
	}
	logs := &logBuffer{}
	q, err := OpenQueue(dir, opts, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q, logs
}

// testRecord is record i: its number and a padding whose length varies.
func testRecord(i int) []byte {
	return fmt.Appendf(nil, "record %d %s", i, strings.Repeat("x", i%37))
}

func appendRecords(t testing.TB, q *Queue, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Append(testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// drain reads and acknowledges everything, in batches of the given limits,
// and returns copies of the records.
func drain(t testing.TB, q *Queue, maxBytes, maxRecords int) [][]byte {
	t.Helper()
	var got [][]byte
	for range 1_000_000 {
		recs, err := q.Peek(maxBytes, maxRecords)
		if err != nil {
			t.Fatal(err)
		}
		if recs == nil {
			return got
		}
		size := 0
		for _, r := range recs {
			got = append(got, bytes.Clone(r))
			size += recordHeaderSize + len(r)
		}
		if len(recs) > maxRecords || (len(recs) > 1 && size > maxBytes) {
			t.Fatalf("Peek(%d, %d) returned %d records of %d bytes", maxBytes, maxRecords, len(recs), size)
		}
		if err := q.Ack(len(recs)); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the queue does not run empty")
	return nil
}

func wantRecords(t testing.TB, got [][]byte, from, to int) {
	t.Helper()
	var want [][]byte
	for i := from; i < to; i++ {
		want = append(want, testRecord(i))
	}
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("got %d records %q…, want %d records %d to %d", len(got), head(got), len(want), from, to-1)
	}
}

func head(recs [][]byte) [][]byte {
	return recs[:min(len(recs), 3)]
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestQueueOrderAcrossSegments(t *testing.T) {
	tests := []struct {
		name         string
		segmentBytes int64
		maxBytes     int
		maxRecords   int
	}{
		{"one record at a time", 512, 1 << 20, 1},
		{"small byte limit", 512, 100, 1000},
		{"byte limit below one record", 512, 1, 1000},
		{"big batches", 512, 1 << 20, 1000},
		{"one segment", 1 << 20, 300, 7},
		{"a segment per record", 1, 1 << 20, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q, _ := openTestQueue(t, dir, QueueOptions{SegmentBytes: tt.segmentBytes})
			appendRecords(t, q, 0, 100)
			if err := q.Append(testRecord(100), testRecord(101), testRecord(102)); err != nil {
				t.Fatal(err)
			}
			st := q.Stats()
			if st.Records != 103 || st.Segments != len(segmentFiles(t, dir)) {
				t.Fatalf("Stats = %+v with %d segment files, want 103 records", st, len(segmentFiles(t, dir)))
			}

			// Peek returns the same records until Ack.
			first, err := q.Peek(tt.maxBytes, tt.maxRecords)
			if err != nil {
				t.Fatal(err)
			}
			first = slices.Clone(first)
			again, err := q.Peek(tt.maxBytes, tt.maxRecords)
			if err != nil {
				t.Fatal(err)
			}
			if len(first) == 0 || len(first) > tt.maxRecords || !slices.EqualFunc(first, again, bytes.Equal) {
				t.Fatalf("Peek returned %d records, then %d", len(first), len(again))
			}

			wantRecords(t, drain(t, q, tt.maxBytes, tt.maxRecords), 0, 103)
			if st := q.Stats(); st.Records != 0 || st.Bytes != 0 || st.Segments > 1 {
				t.Fatalf("Stats after draining = %+v, want nothing pending and at most the segment written to", st)
			}
			if n := len(segmentFiles(t, dir)); n > 1 {
				t.Fatalf("%d segment files after draining, want at most 1", n)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(segmentFiles(t, dir)); n != 0 {
				t.Fatalf("%d segment files after Close of an empty queue, want 0", n)
			}
		})
	}
}

func TestQueuePeekByteLimit(t *testing.T) {
	q, _ := openTestQueue(t, t.TempDir(), QueueOptions{})
	big := bytes.Repeat([]byte("b"), 10_000)
	if err := q.Append(big, []byte("small 1"), []byte("small 2")); err != nil {
		t.Fatal(err)
	}
	recs, err := q.Peek(100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !bytes.Equal(recs[0], big) {
		t.Fatalf("Peek(100, 10) returned %d records, want the one larger than the limit", len(recs))
	}
	if err := q.Ack(1); err != nil {
		t.Fatal(err)
	}
	recs, err = q.Peek(100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("Peek(100, 10) returned %d records, want the 2 small ones", len(recs))
	}
	if err := q.Ack(3); err == nil {
		t.Fatal("Ack(3) after a Peek of 2 records succeeded")
	}
	if _, err := q.Peek(0, 10); err == nil {
		t.Fatal("Peek(0, 10) succeeded")
	}
}

func TestQueueReopen(t *testing.T) {
	tests := []struct {
		name  string
		acked int
	}{
		{"nothing acknowledged", 0},
		{"some acknowledged", 23},
		{"a whole segment acknowledged", 60},
		{"all acknowledged", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := QueueOptions{SegmentBytes: 1024}
			q, _ := openTestQueue(t, dir, opts)
			appendRecords(t, q, 0, 100)
			for acked := 0; acked < tt.acked; {
				recs, err := q.Peek(1<<20, tt.acked-acked)
				if err != nil {
					t.Fatal(err)
				}
				if err := q.Ack(len(recs)); err != nil {
					t.Fatal(err)
				}
				acked += len(recs)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); !errors.Is(err, ErrQueueClosed) {
				t.Fatalf("second Close: %v, want ErrQueueClosed", err)
			}
			if err := q.Append([]byte("late")); !errors.Is(err, ErrQueueClosed) {
				t.Fatalf("Append after Close: %v, want ErrQueueClosed", err)
			}
			if _, err := q.Peek(1, 1); !errors.Is(err, ErrQueueClosed) {
				t.Fatalf("Peek after Close: %v, want ErrQueueClosed", err)
			}

			q, _ = openTestQueue(t, dir, opts)
			if st := q.Stats(); st.Records != int64(100-tt.acked) {
				t.Fatalf("Stats after reopening = %+v, want %d records", st, 100-tt.acked)
			}
			appendRecords(t, q, 100, 110)
			wantRecords(t, drain(t, q, 4096, 10), tt.acked, 110)
		})
	}
}

// TestQueueCrashBeforeAckSaved opens the directory again while the first
// queue still runs, as after a SIGKILL: appended records are there, and the
// acknowledged ones the ack file does not cover yet come again, in order.
func TestQueueCrashBeforeAckSaved(t *testing.T) {
	dir := t.TempDir()
	opts := QueueOptions{SegmentBytes: 1024}
	q, _ := openTestQueue(t, dir, opts)
	appendRecords(t, q, 0, 100)
	// Acknowledge 10 and save that, then 30 more that are not saved.
	drainN(t, q, 10)
	if err := q.sync(); err != nil {
		t.Fatal(err)
	}
	// The process dies (the operating system releases its lock); another
	// opens the queue, and dies too.
	q.unlock()
	saved, _ := openTestQueue(t, dir, opts)
	saved.unlock()
	if st := saved.Stats(); st.Records != 90 {
		t.Fatalf("Stats after a crash = %+v, want the 90 records not acknowledged", st)
	}
	drainN(t, q, 30)

	crashed, _ := openTestQueue(t, dir, opts)
	got := drain(t, crashed, 1<<20, 1000)
	if len(got) < 60 || len(got) > 90 {
		t.Fatalf("got %d records after the crash, want the 60 not acknowledged and at most the 30 not saved", len(got))
	}
	wantRecords(t, got, 100-len(got), 100)
}

func drainN(t testing.TB, q *Queue, n int) {
	t.Helper()
	for n > 0 {
		recs, err := q.Peek(1<<20, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(len(recs)); err != nil {
			t.Fatal(err)
		}
		n -= len(recs)
	}
}

// writeQueueDir writes a segment and, if ack is not nil, an ack file, as a
// crash could leave them.
func writeQueueDir(t testing.TB, seg, ack []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), seg, 0o600); err != nil {
		t.Fatal(err)
	}
	if ack != nil {
		if err := os.WriteFile(filepath.Join(dir, "ack"), ack, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// closedSegment returns the bytes of a segment holding records from to to,
// and the offset where each record ends.
func closedSegment(t testing.TB, from, to int) ([]byte, []int) {
	t.Helper()
	dir := t.TempDir()
	q, _ := openTestQueue(t, dir, QueueOptions{})
	var ends []int
	end := 0
	for i := from; i < to; i++ {
		if err := q.Append(testRecord(i)); err != nil {
			t.Fatal(err)
		}
		end += recordHeaderSize + len(testRecord(i))
		ends = append(ends, end)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(dir, "00000000000000000001.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return seg, ends
}

func TestQueueTornTail(t *testing.T) {
	seg, ends := closedSegment(t, 0, 5)
	// Cut at every byte of the last two records.
	for cut := ends[2]; cut <= len(seg); cut++ {
		complete := 0
		for complete < len(ends) && ends[complete] <= cut {
			complete++
		}
		dir := writeQueueDir(t, seg[:cut], nil)
		q, logs := openTestQueue(t, dir, QueueOptions{})
		if fi, err := os.Stat(filepath.Join(dir, "00000000000000000001.seg")); err != nil || fi.Size() != int64(ends[complete-1]) {
			t.Fatalf("cut at %d: the segment is not cut to %d bytes at open: %v, %v", cut, ends[complete-1], fi.Size(), err)
		}
		wantRecords(t, drain(t, q, 1<<20, 1000), 0, complete)
		torn := cut != ends[complete-1]
		if logged := strings.Contains(logs.String(), fmt.Sprintf("dropped_bytes=%d", cut-ends[complete-1])); torn && !logged {
			t.Fatalf("cut at %d: the log does not report the dropped bytes:\n%s", cut, logs)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueGarbageAfterTail(t *testing.T) {
	seg, _ := closedSegment(t, 0, 5)
	tests := []struct {
		name string
		tail []byte
	}{
		{"zeros", make([]byte, 4096)},
		{"ones", bytes.Repeat([]byte{0xff}, 100)},
		{"text", []byte("garbage that is not a record at all")},
		{"header of a huge record", []byte{0xff, 0xff, 0xff, 0x0f, 1, 2, 3, 4}},
		{"header of a record longer than the file", []byte{100, 0, 0, 0, 1, 2, 3, 4, 'a'}},
		{"short header", []byte{1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeQueueDir(t, append(slices.Clip(seg), tt.tail...), nil)
			q, logs := openTestQueue(t, dir, QueueOptions{})
			if !strings.Contains(logs.String(), fmt.Sprintf("dropped_bytes=%d", len(tt.tail))) {
				t.Errorf("the log does not report %d dropped bytes:\n%s", len(tt.tail), logs)
			}
			appendRecords(t, q, 5, 7)
			wantRecords(t, drain(t, q, 1<<20, 1000), 0, 7)
		})
	}
}

func TestQueueCorruptRecord(t *testing.T) {
	tests := []struct {
		name      string
		segment   int  // 0 to 2; 2 is the one written to
		whileOpen bool // damage the file after OpenQueue, before Peek
	}{
		{"found at open", 1, false},
		{"found by Peek", 1, true},
		{"found at open in the last segment", 2, false},
		{"found by Peek in the segment written to", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := QueueOptions{SegmentBytes: 200}
			q, _ := openTestQueue(t, dir, opts)
			// Each segment holds records 10k to 10k+9.
			for s := range 3 {
				recs := make([][]byte, 10)
				for i := range recs {
					recs[i] = testRecord(10*s + i)
				}
				if err := q.Append(recs...); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.whileOpen {
				if err := q.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// Damage the second record of the segment: the eight after
			// it are lost, and in the segment written to there is room
			// for more after it.
			damaged := 10*tt.segment + 1
			segs := segmentFiles(t, dir)
			if len(segs) != 3 {
				t.Fatalf("%d segments, want 3", len(segs))
			}
			b, err := os.ReadFile(segs[tt.segment])
			if err != nil {
				t.Fatal(err)
			}
			at := bytes.Index(b, testRecord(damaged))
			b[at+3] ^= 0x40
			if err := os.WriteFile(segs[tt.segment], b, 0o600); err != nil {
				t.Fatal(err)
			}

			logs := &logBuffer{}
			if !tt.whileOpen {
				q, logs = openTestQueue(t, dir, opts)
			} else {
				q.logger = slog.New(slog.NewTextHandler(logs, nil))
			}
			got := drain(t, q, 1<<20, 1000)
			// Records appended after the damage are read.
			appendRecords(t, q, 30, 33)
			got = append(got, drain(t, q, 1<<20, 1000)...)
			if len(got) != 33-9 {
				t.Fatalf("got %d records, want %d", len(got), 33-9)
			}
			wantRecords(t, got[:damaged], 0, damaged)
			wantRecords(t, got[damaged:], damaged+9, 33)
			if !strings.Contains(logs.String(), "lost_bytes=") && !strings.Contains(logs.String(), "dropped_bytes=") {
				t.Fatalf("the loss is not logged:\n%s", logs)
			}
			if st := q.Stats(); st.Records != 0 || st.Bytes != 0 {
				t.Fatalf("Stats after draining = %+v, want nothing pending", st)
			}
		})
	}
}

func TestQueueFull(t *testing.T) {
	dir := t.TempDir()
	q, _ := openTestQueue(t, dir, QueueOptions{MaxBytes: 1000, SegmentBytes: 300})
	rec := bytes.Repeat([]byte("r"), 92) // 100 bytes with the framing
	for range 10 {
		if err := q.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	err := q.Append(rec)
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Append to a full queue: %v, want ErrQueueFull", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("the error %q does not name the directory", err)
	}
	if st := q.Stats(); st.Records != 10 || st.Bytes != 1000 {
		t.Fatalf("Stats = %+v, want 10 records of 1000 bytes", st)
	}

	// Free two records: a batch of three is refused as a whole, two fit.
	drainN(t, q, 2)
	if err := q.Append(rec, rec, rec); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Append of 3 records with room for 2: %v, want ErrQueueFull", err)
	}
	if err := q.Append(rec, rec); err != nil {
		t.Fatalf("Append after Ack freed room: %v", err)
	}
	if st := q.Stats(); st.Records != 10 {
		t.Fatalf("Stats = %+v, want 10 records", st)
	}

	// Batches that can never fit are not ErrQueueFull: retrying is futile.
	if err := q.Append(make([]byte, 2000)); err == nil || errors.Is(err, ErrQueueFull) {
		t.Fatalf("Append of a batch above the bound: %v, want another error", err)
	}
	if err := q.Append(make([]byte, MaxQueueRecordBytes+1)); err == nil || errors.Is(err, ErrQueueFull) {
		t.Fatalf("Append of a record above the limit: %v, want another error", err)
	}
}

func TestQueueSegmentsDeleted(t *testing.T) {
	dir := t.TempDir()
	q, _ := openTestQueue(t, dir, QueueOptions{SegmentBytes: 100})
	appendRecords(t, q, 0, 40)
	before := segmentFiles(t, dir)
	if len(before) < 5 {
		t.Fatalf("%d segments, want several", len(before))
	}
	drainN(t, q, 20)
	after := segmentFiles(t, dir)
	if len(after) >= len(before) || after[0] == before[0] || after[len(after)-1] != before[len(before)-1] {
		t.Fatalf("segments after acknowledging half: %v, want the oldest of %v gone", after, before)
	}
	if st := q.Stats(); st.Segments != len(after) {
		t.Fatalf("Stats = %+v, want %d segments", st, len(after))
	}
	for _, name := range after {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}

func TestQueueConcurrentProducers(t *testing.T) {
	const producers, perProducer = 8, 300
	q, _ := openTestQueue(t, t.TempDir(), QueueOptions{SegmentBytes: 4096, SyncInterval: time.Millisecond})
	var wg sync.WaitGroup
	defer wg.Wait()
	for p := range producers {
		wg.Go(func() {
			for i := 0; i < perProducer; {
				// Every tenth call appends two records.
				batch := [][]byte{fmt.Appendf(nil, "%d %d", p, i)}
				if i%10 == 0 && i+1 < perProducer {
					batch = append(batch, fmt.Appendf(nil, "%d %d", p, i+1))
				}
				if err := q.Append(batch...); err != nil {
					t.Error(err)
					return
				}
				i += len(batch)
			}
		})
	}

	next := make([]int, producers)
	timeout := time.After(10 * time.Second)
	for got := 0; got < producers*perProducer; {
		recs, err := q.Peek(2048, 100)
		if err != nil {
			t.Fatal(err)
		}
		if recs == nil {
			select {
			case <-q.Ready():
			case <-timeout:
				t.Fatalf("got %d records, then none", got)
			}
			continue
		}
		for _, r := range recs {
			var p, i int
			if _, err := fmt.Sscanf(string(r), "%d %d", &p, &i); err != nil {
				t.Fatal(err)
			}
			if i != next[p] {
				t.Fatalf("producer %d: got record %d, want %d", p, i, next[p])
			}
			next[p] = i + 1
		}
		got += len(recs)
		if err := q.Ack(len(recs)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if recs, err := q.Peek(1<<20, 100); recs != nil || err != nil {
		t.Fatalf("Peek after every record was read: %d records, %v", len(recs), err)
	}
}

func TestQueueReady(t *testing.T) {
	dir := t.TempDir()
	q, _ := openTestQueue(t, dir, QueueOptions{})
	select {
	case <-q.Ready():
		t.Fatal("an empty queue is ready")
	default:
	}
	appendRecords(t, q, 0, 3)
	select {
	case <-q.Ready():
	default:
		t.Fatal("Ready is not signalled after Append")
	}
	select {
	case <-q.Ready():
		t.Fatal("Ready is signalled twice")
	default:
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, _ = openTestQueue(t, dir, QueueOptions{})
	select {
	case <-q.Ready():
	default:
		t.Fatal("Ready is not signalled at open when records are pending")
	}
}

func TestQueueOptionsValidate(t *testing.T) {
	tests := []struct {
		opts  QueueOptions
		field string
	}{
		{QueueOptions{MaxBytes: -1}, "MaxBytes"},
		{QueueOptions{SegmentBytes: -1}, "SegmentBytes"},
		{QueueOptions{SyncInterval: -time.Second}, "SyncInterval"},
	}
	for _, tt := range tests {
		_, err := OpenQueue(t.TempDir(), tt.opts, nil)
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("OpenQueue with %+v: %v, want an error naming %s", tt.opts, err, tt.field)
		}
	}
}

func TestQueueDirectoryMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue")
	q, err := OpenQueue(dir, QueueOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("the directory has mode %v, want 0700", fi.Mode().Perm())
	}
}

func FuzzQueueOpen(f *testing.F) {
	seg, _ := closedSegment(f, 0, 3)
	f.Add(seg, []byte(nil))
	f.Add(seg[:len(seg)-3], []byte{1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte("not an ack file"))
	f.Fuzz(func(t *testing.T, seg, ack []byte) {
		dir := writeQueueDir(t, seg, ack)
		q, err := OpenQueue(dir, QueueOptions{SyncInterval: time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		drain(t, q, 1<<10, 10)
		if err := q.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		recs, err := q.Peek(1<<10, 10)
		if err != nil || len(recs) != 1 || string(recs[0]) != "after" {
			t.Fatalf("Peek after draining and Append: %q, %v", recs, err)
		}
	})
}

// BenchmarkQueueAppend measures producers appending one record per call,
// with the default options; nothing is read.
func BenchmarkQueueAppend(b *testing.B) {
	for _, size := range []int{1024, 4096} {
		b.Run(fmt.Sprintf("record=%d", size), func(b *testing.B) {
			q, _ := openTestQueue(b, b.TempDir(), QueueOptions{MaxBytes: 1 << 40, SyncInterval: time.Second})
			rec := bytes.Repeat([]byte("s"), size)
			b.SetBytes(int64(size))
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.Append(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkQueueRoundTrip measures records going through the queue: two
// producers append while one consumer peeks batches of up to 4 MiB and
// acknowledges them, as the remote-write sender does.
func BenchmarkQueueRoundTrip(b *testing.B) {
	for _, size := range []int{1024, 4096} {
		b.Run(fmt.Sprintf("record=%d", size), func(b *testing.B) {
			q, _ := openTestQueue(b, b.TempDir(), QueueOptions{SyncInterval: time.Second})
			rec := bytes.Repeat([]byte("s"), size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range 2 {
				wg.Go(func() {
					for i := p; i < b.N; i += 2 {
						for {
							err := q.Append(rec)
							if err == nil {
								break
							}
							if !errors.Is(err, ErrQueueFull) {
								b.Error(err)
								return
							}
							time.Sleep(time.Millisecond)
						}
					}
				})
			}
			for got := 0; got < b.N; {
				recs, err := q.Peek(4<<20, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				if recs == nil {
					<-q.Ready()
					continue
				}
				got += len(recs)
				if err := q.Ack(len(recs)); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
