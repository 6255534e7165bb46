package remote

// The queue on disk.
//
// The directory holds segment files named by a zero-padded sequence number
// (00000000000000000001.seg, …), written in order, and the file "ack" that
// says how far the oldest segment was delivered. A segment is a sequence of
// records, each framed as
//
//	length   uint32, little-endian, the payload's size
//	checksum uint32, little-endian, CRC-32C of the 4 length bytes and the payload
//	payload  length bytes
//
// The checksum covers the length so that a run of zeros (what some file
// systems leave after a power loss) is not read as empty records.
//
// Segments are only ever appended to by the process that created them:
// OpenQueue starts a new one, so what a crash left in the old ones never
// has new records written after it. The ack file holds the sequence number
// and offset of the oldest record not yet acknowledged, and a CRC-32C of
// both; it is replaced atomically (temporary file, fsync, rename) by the
// background sync, not on every Ack. Segments wholly before that position
// are deleted at once on Ack: a stale ack file naming a deleted segment
// means "start at the oldest segment there is", which resends but never
// skips.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of QueueOptions.
const (
	DefaultQueueMaxBytes     int64 = 1 << 30
	DefaultQueueSegmentBytes int64 = 64 << 20
	DefaultQueueSyncInterval       = time.Second
)

// MaxQueueRecordBytes is the size of the largest record Append takes.
const MaxQueueRecordBytes = 64 << 20

// recordHeaderSize is the framing before each record's payload.
const recordHeaderSize = 8

const (
	segmentSuffix = ".seg"
	ackFileName   = "ack"
	ackTempName   = "ack.tmp"
	ackFileSize   = 20
)

// ErrQueueFull is wrapped by Append when the records would take the queue
// past QueueOptions.MaxBytes.
var ErrQueueFull = errors.New("the remote-write queue is full: the remote TSDB is down or slower than ingest; results are refused until it catches up")

// ErrQueueClosed is returned by the Queue's methods once Close was called.
var ErrQueueClosed = errors.New("the remote-write queue is closed")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// QueueOptions configures OpenQueue. The zero value is ready to use.
type QueueOptions struct {
	// MaxBytes bounds the bytes of the records not yet acknowledged, as
	// they are on disk (8 bytes of framing each); zero means
	// DefaultQueueMaxBytes (1 GiB).
	MaxBytes int64
	// SegmentBytes is the size past which a segment file is closed and a
	// new one started; zero means DefaultQueueSegmentBytes (64 MiB). One
	// Append call's records always go to one segment, so a segment can
	// be larger when a call is.
	SegmentBytes int64
	// SyncInterval is how often written data and the acknowledged
	// position are fsynced; zero means DefaultQueueSyncInterval (1s).
	// Append hands its records to the operating system before it returns,
	// so a crash of the process loses nothing; a power loss can lose what
	// was appended in the last interval, as with Prometheus' WAL.
	SyncInterval time.Duration
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultQueueMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultQueueSegmentBytes
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultQueueSyncInterval
	}
	return o
}

// Validate reports the first option that is out of range.
func (o QueueOptions) Validate() error {
	switch {
	case o.MaxBytes < 0:
		return fmt.Errorf("queue MaxBytes is %d: it must be positive (or zero for the default)", o.MaxBytes)
	case o.SegmentBytes < 0:
		return fmt.Errorf("queue SegmentBytes is %d: it must be positive (or zero for the default)", o.SegmentBytes)
	case o.SyncInterval < 0:
		return fmt.Errorf("queue SyncInterval is %s: it must be positive (or zero for the default)", o.SyncInterval)
	}
	return nil
}

// QueueStats describes what a Queue holds.
type QueueStats struct {
	// Records is the number of records not yet acknowledged.
	Records int64
	// Bytes is their size on disk, framing included.
	Bytes int64
	// Segments is the number of segment files.
	Segments int
}

// Queue is a bounded, durable FIFO queue of byte records in a directory:
// many goroutines Append, one consumer reads the oldest records with Peek
// and forgets them with Ack once they are delivered. Delivery is at least
// once: after a crash, records acknowledged in the last SyncInterval can be
// returned again, but an unacknowledged record is never skipped (unless it
// is damaged on disk, which is logged).
type Queue struct {
	dir    string
	opts   QueueOptions
	logger *slog.Logger
	unlock func() // releases the directory's lock
	ready  chan struct{}
	stop   chan struct{}
	done   chan struct{}

	// mu guards what follows up to rmu.
	mu      sync.Mutex
	closed  bool
	segs    []segment // oldest first; the last one is being written to when w != nil
	ack     position  // the oldest record not acknowledged; ack.seq is segs[0].seq when there are segments
	nextSeq uint64
	records int64
	bytes   int64
	w       *os.File   // the segment being written to, nil until the first Append
	wbuf    []byte     // encoding buffer for Append
	wdirty  bool       // w has data not yet fsynced
	closing []*os.File // segments rotated out, fsynced and closed by the next sync
	dirty   bool       // the directory has entries not yet fsynced
	saved   position   // the position the ack file holds

	// rmu guards the consumer's state. Peek and Ack hold it, then mu for
	// short moments; never the other way round.
	rmu   sync.Mutex
	rf    *os.File // the segment being read, opened read-only
	rseq  uint64
	rbuf  []byte    // the records Peek returned point into it
	recs  [][]byte  // Peek's result, reused
	ends  []peekEnd // where each record Peek returned ends
	rsegs []segment // Peek's copy of segs
}

// segment is one file of the queue, as far as it holds valid records.
type segment struct {
	seq     uint64
	size    int64 // bytes of valid records
	records int64
}

// position is a place in the queue: an offset in a segment, and how many
// records come before it in that segment.
type position struct {
	seq uint64
	off int64
	idx int64
}

// peekEnd is where a record returned by Peek ends, and the framed bytes
// from the acknowledged position up to there.
type peekEnd struct {
	pos   position
	bytes int64
}

// OpenQueue opens the queue in dir, creating the directory (mode 0700) if
// it does not exist. Records an earlier run did not acknowledge are kept; a
// record torn by a crash at the end of a segment is cut off, and the rest
// of a segment after a damaged record is skipped, both logged. logger may
// be nil.
//
// Opening reads every pending record once to check it, which takes about
// as long as reading the pending bytes from disk.
func OpenQueue(dir string, opts QueueOptions, logger *slog.Logger) (*Queue, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	q := &Queue{
		dir:    dir,
		opts:   opts.withDefaults(),
		logger: logger.With("queue", dir),
		ready:  make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the remote-write queue directory: %w", err)
	}
	// Samples of every tenant: owner only, even when the directory
	// existed with a looser mode.
	if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- a directory needs its x bit
		return nil, fmt.Errorf("restricting the remote-write queue directory to its owner: %w", err)
	}
	unlock, err := lockQueueDir(dir)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	q.unlock = func() { once.Do(unlock) }
	if err := q.recover(); err != nil {
		unlock()
		return nil, fmt.Errorf("opening the remote-write queue in %s: %w", dir, err)
	}
	q.logger.Info("opened the remote-write queue", "records", q.records, "bytes", q.bytes, "segments", len(q.segs))
	if q.records > 0 {
		q.ready <- struct{}{}
	}
	go q.syncLoop()
	return q, nil
}

// recover reads the ack file and the segments, cuts torn tails and deletes
// what was acknowledged.
func (q *Queue) recover() error {
	ack, err := q.readAckFile()
	if err != nil {
		return err
	}
	q.saved = ack
	_ = os.Remove(filepath.Join(q.dir, ackTempName))

	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("listing segments: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)

	// New segments are numbered after both the files and the ack file, so
	// that a position in the ack file never names a segment written later.
	q.nextSeq = ack.seq + 1
	if len(seqs) > 0 {
		q.nextSeq = max(q.nextSeq, seqs[len(seqs)-1]+1)
	}
	if q.nextSeq == 0 {
		return errors.New("segment numbers are exhausted: move the directory away to start an empty queue")
	}

	for i, seq := range seqs {
		if seq < ack.seq {
			if err := os.Remove(q.segmentPath(seq)); err != nil {
				return fmt.Errorf("deleting acknowledged segment: %w", err)
			}
			continue
		}
		target := int64(-1)
		if seq == ack.seq {
			target = ack.off
		}
		s, at, err := q.checkSegment(seq, i == len(seqs)-1, target)
		if err != nil {
			return err
		}
		if seq == ack.seq {
			q.ack = at
		}
		q.segs = append(q.segs, s)
	}
	if len(q.segs) == 0 || q.segs[0].seq != ack.seq {
		q.ack = ack
	}
	for _, s := range q.segs {
		q.records += s.records
		q.bytes += s.size
	}
	if len(q.segs) > 0 && q.ack.seq == q.segs[0].seq {
		q.records -= q.ack.idx
		q.bytes -= q.ack.off
	}
	for _, path := range q.advanceLocked() {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("deleting acknowledged segment: %w", err)
		}
	}
	return nil
}

// checkSegment reads a segment's records and checks their checksums. The
// first one that is torn or damaged ends the segment: in the last segment
// that is what a crash leaves, and the file is truncated there; in an
// earlier one the rest is lost and logged. If target is not negative, it
// returns the last record boundary at or before it.
func (q *Queue) checkSegment(seq uint64, last bool, target int64) (segment, position, error) {
	path := q.segmentPath(seq)
	f, err := os.OpenFile(path, os.O_RDWR, 0) // #nosec G304 -- a segment name the queue made, in its own directory
	if err != nil {
		return segment{}, position{}, fmt.Errorf("opening segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, position{}, fmt.Errorf("reading segment: %w", err)
	}
	fileSize := fi.Size()

	s := segment{seq: seq}
	at := position{seq: seq}
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [recordHeaderSize]byte
	var payload []byte
	var damage string
	for {
		if target >= 0 && s.size <= target {
			at.off, at.idx = s.size, s.records
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				break
			}
			if err == io.ErrUnexpectedEOF {
				damage = "torn record header"
				break
			}
			return segment{}, position{}, fmt.Errorf("reading segment: %w", err)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[:4]))
		if n > MaxQueueRecordBytes {
			damage = "record length out of range"
			break
		}
		if s.size+recordHeaderSize+n > fileSize {
			damage = "torn record"
			break
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return segment{}, position{}, fmt.Errorf("reading segment: %w", err)
		}
		if binary.LittleEndian.Uint32(hdr[4:]) != recordChecksum(hdr[:4], payload) {
			damage = "checksum mismatch"
			break
		}
		s.size += recordHeaderSize + n
		s.records++
	}
	if damage == "" {
		return s, at, nil
	}
	lost := fileSize - s.size
	if !last {
		q.logger.Error("damaged record in the remote-write queue: the rest of the segment is skipped and lost",
			"segment", path, "offset", s.size, "problem", damage, "lost_bytes", lost)
		return s, at, nil
	}
	q.logger.Warn("cut a torn record off the end of the remote-write queue, left by a crash",
		"segment", path, "offset", s.size, "problem", damage, "dropped_bytes", lost)
	if err := f.Truncate(s.size); err != nil {
		return segment{}, position{}, fmt.Errorf("truncating a torn segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return segment{}, position{}, fmt.Errorf("truncating a torn segment: %w", err)
	}
	return s, at, nil
}

// readAckFile returns the position the ack file holds, or the zero
// position (the oldest segment there is) when it is missing or damaged.
func (q *Queue) readAckFile() (position, error) {
	b, err := os.ReadFile(filepath.Join(q.dir, ackFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("reading the acknowledged position: %w", err)
	}
	if len(b) != ackFileSize || binary.LittleEndian.Uint32(b[16:]) != crc32.Checksum(b[:16], castagnoli) {
		q.logger.Warn("the acknowledged position of the remote-write queue is damaged: starting from the oldest segment, delivered records may be sent again",
			"file", filepath.Join(q.dir, ackFileName))
		return position{}, nil
	}
	p := position{seq: binary.LittleEndian.Uint64(b), off: int64(binary.LittleEndian.Uint64(b[8:]))}
	if p.off < 0 || p.seq == ^uint64(0) {
		q.logger.Warn("the acknowledged position of the remote-write queue is out of range: starting from the oldest segment",
			"file", filepath.Join(q.dir, ackFileName))
		return position{}, nil
	}
	return p, nil
}

// writeAckFile replaces the ack file with one holding p, durably.
func (q *Queue) writeAckFile(p position) error {
	var b [ackFileSize]byte
	binary.LittleEndian.PutUint64(b[:], p.seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(p.off))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	tmp := filepath.Join(q.dir, ackTempName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // #nosec G304 -- the queue's fixed file name, in its own directory
	if err != nil {
		return fmt.Errorf("saving the acknowledged position: %w", err)
	}
	_, err = f.Write(b[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(q.dir, ackFileName))
	}
	if err == nil {
		err = syncDir(q.dir)
	}
	if err != nil {
		return fmt.Errorf("saving the acknowledged position: %w", err)
	}
	return nil
}

// Append adds the records to the queue, all or none, in order. It returns
// once they are written to the operating system (see
// QueueOptions.SyncInterval). When they would take the queue past its
// bound it fails at once with an error wrapping ErrQueueFull. Append is
// safe for concurrent use; the records are copied, the caller keeps them.
func (q *Queue) Append(recs ...[]byte) error {
	if len(recs) == 0 {
		return nil
	}
	var size int64
	for _, r := range recs {
		if len(r) > MaxQueueRecordBytes {
			return fmt.Errorf("a record of %d bytes is larger than the remote-write queue takes (%d bytes): send smaller batches",
				len(r), MaxQueueRecordBytes)
		}
		size += recordHeaderSize + int64(len(r))
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrQueueClosed
	}
	if size > q.opts.MaxBytes {
		return fmt.Errorf("%d records of %s are more than the remote-write queue in %s holds (%s): send smaller batches",
			len(recs), formatBytes(size), q.dir, formatBytes(q.opts.MaxBytes))
	}
	if q.bytes+size > q.opts.MaxBytes {
		return fmt.Errorf("appending to %s (%s pending): %w", q.dir, formatBytes(q.bytes), ErrQueueFull)
	}
	if q.w == nil || (q.segs[len(q.segs)-1].size > 0 && q.segs[len(q.segs)-1].size+size > q.opts.SegmentBytes) {
		if err := q.rotateLocked(); err != nil {
			return err
		}
	}

	b := q.wbuf[:0]
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = binary.LittleEndian.AppendUint32(b, recordChecksum(b[len(b)-4:], r))
		b = append(b, r...)
	}
	if cap(b) <= 4<<20 {
		q.wbuf = b
	}
	last := &q.segs[len(q.segs)-1]
	if _, err := q.w.Write(b); err != nil {
		// Part of the records may be in the file. Cut them off, and if
		// that fails, leave the segment: it ends where its valid
		// records do, and what follows is never read.
		if terr := q.w.Truncate(last.size); terr != nil {
			q.closing = append(q.closing, q.w)
			q.w = nil
		}
		return fmt.Errorf("writing to the remote-write queue in %s: %w", q.dir, err)
	}
	last.size += size
	last.records += int64(len(recs))
	q.bytes += size
	q.records += int64(len(recs))
	q.wdirty = true
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return nil
}

// rotateLocked starts a new segment. The one it replaces is fsynced and
// closed by the next sync, so that Append does not wait for the disk.
func (q *Queue) rotateLocked() error {
	path := q.segmentPath(q.nextSeq)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600) // #nosec G304 -- a segment name the queue made, in its own directory
	if err != nil {
		return fmt.Errorf("starting a segment of the remote-write queue: %w", err)
	}
	if q.w != nil {
		q.closing = append(q.closing, q.w)
	}
	q.w = f
	q.wdirty = false
	q.dirty = true
	q.segs = append(q.segs, segment{seq: q.nextSeq})
	q.nextSeq++
	// The segment rotated out may be delivered already.
	for _, path := range q.advanceLocked() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.logger.Error("deleting a delivered segment of the remote-write queue", "err", err)
		}
	}
	return nil
}

// advanceLocked moves the acknowledged position to the next segment while
// it is at the end of one that is no longer written to, and returns the
// paths of the segments it passed, for the caller to delete.
func (q *Queue) advanceLocked() []string {
	var done []string
	for len(q.segs) > 0 {
		s := q.segs[0]
		if q.ack.seq < s.seq {
			q.ack = position{seq: s.seq}
		}
		writing := q.w != nil && len(q.segs) == 1
		if q.ack.seq > s.seq || (q.ack.off >= s.size && !writing) {
			done = append(done, q.segmentPath(s.seq))
			q.segs = q.segs[1:]
			continue
		}
		break
	}
	return done
}

// Peek returns the oldest records not yet acknowledged: at least one if
// there is any, even when it alone is larger than maxBytes, at most
// maxRecords, and no more than about maxBytes (8 bytes of framing count
// for each). It returns the same records again until Ack, possibly
// followed by more. It returns (nil, nil) when the queue is empty.
//
// The returned slices point into a buffer of the Queue: they stay valid
// until the next call of Peek or Ack, and must not be modified.
//
// A record found damaged (the disk changed after OpenQueue) ends its
// segment: the rest of it is logged as lost and Peek goes on with the next
// one. Only one goroutine may call Peek and Ack.
func (q *Queue) Peek(maxBytes int, maxRecords int) ([][]byte, error) {
	if maxBytes <= 0 || maxRecords <= 0 {
		return nil, fmt.Errorf("peeking at the remote-write queue with maxBytes %d and maxRecords %d: both must be positive", maxBytes, maxRecords)
	}
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, ErrQueueClosed
	}
	segs := append(q.rsegs[:0], q.segs...)
	p := q.ack
	q.mu.Unlock()
	q.rsegs = segs

	buf, recs, ends := q.rbuf[:0], q.recs[:0], q.ends[:0]
	defer func() {
		q.rbuf, q.recs, q.ends = buf[:0], recs[:0], ends
	}()
	var total int64
	need := 0 // when the first record does not fit in maxBytes: its size
	for i := 0; i < len(segs) && len(recs) < maxRecords; {
		s := segs[i]
		if p.seq != s.seq {
			p = position{seq: s.seq}
		}
		left := s.size - p.off
		if left <= 0 {
			i++
			continue
		}
		room := maxBytes - len(buf)
		if len(recs) > 0 && room < recordHeaderSize {
			break
		}
		n := int(min(left, int64(max(room, recordHeaderSize, need))))
		start := len(buf)
		buf = slices.Grow(buf, n)[:start+n]
		chunk := buf[start:]
		if err := q.readAt(s.seq, chunk, p.off); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("reading the remote-write queue in %s: %w", q.dir, err)
			}
			q.loseRest(p, fmt.Sprintf("segment shorter than expected: %v", err))
			buf = buf[:start]
			i++
			continue
		}
		var damage string
		for len(recs) < maxRecords && len(chunk) >= recordHeaderSize {
			size := int64(binary.LittleEndian.Uint32(chunk))
			if size > MaxQueueRecordBytes || recordHeaderSize+size > left {
				damage = "record length out of range"
				break
			}
			end := recordHeaderSize + int(size)
			if end > len(chunk) {
				if len(recs) == 0 {
					need = end
				}
				break
			}
			rec := chunk[recordHeaderSize:end]
			if binary.LittleEndian.Uint32(chunk[4:]) != recordChecksum(chunk[:4], rec) {
				damage = "checksum mismatch"
				break
			}
			recs = append(recs, rec[:len(rec):len(rec)])
			total += int64(end)
			left -= int64(end)
			p.off += int64(end)
			p.idx++
			ends = append(ends, peekEnd{pos: p, bytes: total})
			chunk = chunk[end:]
		}
		if damage == "" && len(chunk) > 0 && len(chunk) < recordHeaderSize && int64(len(chunk)) == left {
			damage = "torn record header"
		}
		buf = buf[:len(buf)-len(chunk)]
		if damage != "" {
			q.loseRest(p, damage)
			i++
			continue
		}
		if need > 0 && len(recs) == 0 {
			continue // read again, the whole first record
		}
		if left > 0 {
			break // maxBytes or maxRecords reached
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return recs, nil
}

// readAt fills b from the segment seq at off.
func (q *Queue) readAt(seq uint64, b []byte, off int64) error {
	if q.rf == nil || q.rseq != seq {
		if q.rf != nil {
			q.rf.Close()
			q.rf = nil
		}
		f, err := os.Open(q.segmentPath(seq))
		if err != nil {
			return err
		}
		q.rf, q.rseq = f, seq
	}
	_, err := q.rf.ReadAt(b, off)
	return err
}

// loseRest ends the segment at p: what follows cannot be read. It is
// logged and no longer counted as pending.
func (q *Queue) loseRest(p position, problem string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.IndexFunc(q.segs, func(s segment) bool { return s.seq == p.seq })
	if i < 0 {
		return
	}
	s := &q.segs[i]
	lostBytes, lostRecords := s.size-p.off, s.records-p.idx
	if lostBytes <= 0 {
		return
	}
	q.logger.Error("damaged record in the remote-write queue: the rest of the segment is skipped and lost",
		"segment", q.segmentPath(p.seq), "offset", p.off, "problem", problem,
		"lost_bytes", lostBytes, "lost_records", lostRecords)
	s.size, s.records = p.off, p.idx
	q.bytes -= lostBytes
	q.records -= lostRecords
	if i == len(q.segs)-1 && q.w != nil {
		// Never write after the damage: the next Append starts a new
		// segment.
		q.closing = append(q.closing, q.w)
		q.w = nil
	}
	for _, path := range q.advanceLocked() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.logger.Error("deleting a delivered segment of the remote-write queue", "err", err)
		}
	}
}

// Ack forgets the n oldest records, which must have been returned by the
// last Peek: they are delivered. Segments it leaves behind are deleted.
// The position is saved by the background sync, so after a crash the
// records acknowledged in the last SyncInterval come back.
func (q *Queue) Ack(n int) error {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	if n < 0 || n > len(q.ends) {
		return fmt.Errorf("acknowledging %d records of the remote-write queue: the last Peek returned %d", n, len(q.ends))
	}
	if n == 0 {
		return nil
	}
	end := q.ends[n-1]
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrQueueClosed
	}
	if q.ack.seq > end.pos.seq || (q.ack.seq == end.pos.seq && q.ack.off > end.pos.off) {
		q.mu.Unlock()
		return fmt.Errorf("acknowledging %d records of the remote-write queue: they were acknowledged already", n)
	}
	q.ack = end.pos
	q.bytes -= end.bytes
	q.records -= int64(n)
	done := q.advanceLocked()
	ack := q.ack
	q.mu.Unlock()

	// The records after the n acknowledged ones are read again by the
	// next Peek; their ends are no longer valid.
	q.ends = q.ends[:0]
	if q.rf != nil && q.rseq < ack.seq {
		q.rf.Close()
		q.rf = nil
	}
	var errs []error
	for _, path := range done {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("deleting a delivered segment of the remote-write queue: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Ready returns a channel that receives after Append adds records (and at
// OpenQueue when records are pending). It holds one signal at most: the
// consumer should Peek until the queue is empty before it waits again.
func (q *Queue) Ready() <-chan struct{} {
	return q.ready
}

// Stats returns what the queue holds.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{Records: q.records, Bytes: q.bytes, Segments: len(q.segs)}
}

// Close fsyncs the queue, saves the acknowledged position and closes the
// files. Later calls of any method return ErrQueueClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrQueueClosed
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	<-q.done

	q.rmu.Lock()
	if q.rf != nil {
		q.rf.Close()
		q.rf = nil
	}
	q.rmu.Unlock()

	var errs []error
	if err := q.sync(); err != nil {
		errs = append(errs, err)
	}
	q.mu.Lock()
	w := q.w
	q.w = nil
	done := q.advanceLocked()
	ack := q.ack
	q.mu.Unlock()
	if w != nil {
		if err := w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the remote-write queue: %w", err))
		}
	}
	for _, path := range done {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("deleting a delivered segment of the remote-write queue: %w", err))
		}
	}
	if ack != q.saved {
		if err := q.writeAckFile(ack); err != nil {
			errs = append(errs, err)
		}
	}
	q.unlock()
	return errors.Join(errs...)
}

// syncLoop fsyncs every SyncInterval until Close.
func (q *Queue) syncLoop() {
	defer close(q.done)
	t := time.NewTicker(q.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-t.C:
			if err := q.sync(); err != nil {
				q.logger.Error("syncing the remote-write queue: records appended lately may be lost at a power failure", "err", err)
			}
		}
	}
}

// sync fsyncs the data written so far, then saves the acknowledged
// position as it was before: the ack file never points past data that
// is not on disk.
func (q *Queue) sync() error {
	q.mu.Lock()
	ack := q.ack
	var w *os.File
	if q.wdirty {
		w = q.w
		q.wdirty = false
	}
	closing := q.closing
	q.closing = nil
	dirty := q.dirty
	q.dirty = false
	q.mu.Unlock()

	var errs []error
	for _, f := range closing {
		if err := f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("fsyncing segment %s: %w", f.Name(), err))
		}
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing segment %s: %w", f.Name(), err))
		}
	}
	if w != nil {
		if err := w.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("fsyncing segment %s: %w", w.Name(), err))
		}
	}
	if dirty {
		if err := syncDir(q.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && ack != q.saved {
		if err := q.writeAckFile(ack); err != nil {
			errs = append(errs, err)
		} else {
			q.saved = ack
		}
	}
	return errors.Join(errs...)
}

func (q *Queue) segmentPath(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", seq, segmentSuffix))
}

// parseSegmentName returns the sequence number a segment file's name holds.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

func recordChecksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

func syncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- the queue's own directory
	if err != nil {
		return fmt.Errorf("fsyncing directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsyncing directory %s: %w", dir, err)
	}
	return nil
}

// formatBytes writes n for an operator: "1.0 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
