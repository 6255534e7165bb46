package buffer

import (
	"flag"
	"os"
	"strconv"
	"testing"
	"time"
)

// A million packets take about a minute to write and replay, so the default
// keeps `go test -bench .` quick; the figures in docs/PERFORMANCE.md use
// -buffer.replay=1000000.
var replayPackets = flag.Int("buffer.replay", 100_000, "packets BenchmarkReplay buffers and replays")

// benchBody is the size of a typical check-data packet body.
const benchBody = 400

// fill buffers n packets of size bytes in large batches.
func fill(tb testing.TB, b *Buffer, n, size int) {
	tb.Helper()
	batch := make([]Packet, 0, 1000)
	for i := range n {
		id := uint64(i + 1)
		batch = append(batch, Packet{AssetID: id, Body: packetBody(id, size)})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := b.PutBatch(batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// replay reads and acknowledges the whole queue in batches, checking order
// and bodies, and returns how many packets it saw.
func replay(tb testing.TB, b *Buffer, batch int) int {
	tb.Helper()
	n := 0
	after := uint64(0)
	seqs := make([]uint64, 0, batch)
	for {
		es, err := b.Peek(after, batch)
		if err != nil {
			tb.Fatal(err)
		}
		if len(es) == 0 {
			return n
		}
		seqs = seqs[:0]
		for _, e := range es {
			if e.Seq <= after || !checkBody(e) {
				tb.Fatalf("entry %d after %d: order or body wrong", e.Seq, after)
			}
			after = e.Seq
			seqs = append(seqs, e.Seq)
		}
		if err := b.Ack(seqs...); err != nil {
			tb.Fatal(err)
		}
		n += len(es)
	}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	st, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}

// BenchmarkPut measures durable (fsynced) Puts of 400-byte packets: one
// caller at a time, many concurrent callers sharing commits, and PutBatch.
func BenchmarkPut(b *testing.B) {
	body := packetBody(1, benchBody)
	b.Run("single", func(b *testing.B) {
		buf := openTest(b, Options{})
		b.SetBytes(benchBody)
		for b.Loop() {
			if _, err := buf.Put(7, body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	})
	b.Run("concurrent", func(b *testing.B) {
		buf := openTest(b, Options{})
		b.SetBytes(benchBody)
		b.SetParallelism(32) // callers per CPU, like a scheduler finishing many checks at once
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := buf.Put(7, body); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	})
	for _, n := range []int{16, 256} {
		b.Run("batch="+strconv.Itoa(n), func(b *testing.B) {
			buf := openTest(b, Options{})
			batch := make([]Packet, n)
			for i := range batch {
				batch[i] = Packet{AssetID: 7, Body: body}
			}
			b.SetBytes(int64(n * benchBody))
			for b.Loop() {
				if _, err := buf.PutBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// BenchmarkReplay buffers -buffer.replay packets of 400 bytes, reopens the
// file as after a restart and drains it with Peek(256) and Ack, reporting
// the replay rate and the file size against the raw packet bytes. Run it
// with -benchtime=1x.
func BenchmarkReplay(b *testing.B) {
	n := *replayPackets
	for b.Loop() {
		b.StopTimer()
		buf := openTest(b, Options{NoSync: true})
		fill(b, buf.Buffer, n, benchBody)
		buf.close(b)
		raw := float64(n * benchBody)
		size := fileSize(b, buf.path)

		buf.opts.NoSync = false
		start := time.Now()
		buf.reopen(b)
		open := time.Since(start)
		b.StartTimer()

		start = time.Now()
		if got := replay(b, buf.Buffer, 256); got != n {
			b.Fatalf("replayed %d packets, want %d", got, n)
		}
		took := time.Since(start)

		b.StopTimer()
		b.ReportMetric(float64(n)/took.Seconds(), "packets/s")
		b.ReportMetric(float64(size)/raw, "file/raw")
		b.ReportMetric(float64(size)/float64(n*(benchBody+16)), "file/framed")
		b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		b.ReportMetric(open.Seconds()*1000, "open-ms")
		buf.close(b)
		b.StartTimer()
	}
}
