// Package buffer is the appliance's durable, encrypted queue of check-data
// packets.
//
// Every packet is written here, sealed and fsynced, before it is sent to the
// hub, and deleted only after the hub's ok, so a lost connection or an
// appliance restart (SIGKILL included) loses nothing: the sender replays the
// queue in order with Peek and deletes what the hub accepted with Ack.
//
// The queue is one bbolt file (mode 0600). Keys are big-endian sequence
// numbers, monotonic across restarts; values are sealed by the Sealer with the
// key in the additional data, so a value moved to another key, altered or
// truncated is detected when it is read. Concurrent Put callers share one
// transaction and one fsync (group commit).
//
// A budget (Options.MaxBytes, 1 GiB by default) bounds what is kept: when a
// Put would exceed it, the oldest packets are dropped and counted; the count
// survives restarts so it can be reported to the hub. bbolt files never
// shrink, but the pages freed by Ack and by dropping are reused, so the file
// stays bounded by the budget plus bbolt's page overhead (see Options).
package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Sealer seals and opens values. The appliance passes one derived from its
// vault's data key. Seal's output carries whatever nonce Open needs; a Sealer
// must be safe for concurrent use and must keep its nonces unique for as many
// values as the appliance will ever buffer under one key (a random prefix and
// a counter, or XChaCha20-Poly1305's random 24-byte nonces).
type Sealer interface {
	// Seal appends the sealed plaintext to dst and returns the result.
	Seal(dst, plaintext, additionalData []byte) []byte
	// Open appends the opened ciphertext to dst and returns the result, or
	// an error when the ciphertext or the additional data was altered.
	Open(dst, ciphertext, additionalData []byte) ([]byte, error)
}

// DefaultMaxBytes is the budget used when Options.MaxBytes is zero: 1 GiB.
const DefaultMaxBytes int64 = 1 << 30

// Options configures Open. The zero value is ready to use.
//
// MaxBytes bounds Bytes, the space the packets take in the file's pages
// (sealed value, key and bbolt's 16-byte element header). The file itself is
// larger: bbolt fills each page with whole entries and keeps branch pages and
// a free-page list, and it grows in steps of up to 16 MiB. Measured with
// ~400-byte packets the file stays below 1.1 × MaxBytes + 16 MiB.
type Options struct {
	// MaxBytes is the budget; zero means DefaultMaxBytes.
	MaxBytes int64
	// NoSync skips fsync on commit. It is for tests and benchmarks only:
	// with it a power loss can lose or corrupt buffered packets.
	NoSync bool
	// Logger receives a summary at Open and the drops; nil discards.
	Logger *slog.Logger

	// maxFileSize caps the file like a full disk would (tests only).
	maxFileSize int
	// pageSize overrides the page size of a new file (benchmarks only).
	pageSize int
}

// Entry is one buffered packet.
type Entry struct {
	// Seq orders the queue; it is never reused, also across restarts.
	Seq uint64
	// AssetID is the packet's partid (the asset the check data is about).
	AssetID uint64
	// Body is the packet body, the MessagePack check data.
	Body []byte
}

// Packet is one packet to buffer with PutBatch.
type Packet struct {
	// AssetID is the packet's partid.
	AssetID uint64
	// Body is the packet body; Put does not keep a reference to it.
	Body []byte
}

var (
	// ErrClosed is returned by calls on a closed Buffer.
	ErrClosed = errors.New("buffer is closed")
	// ErrDiskFull is wrapped by errors from a commit that failed because the
	// disk (or the file's size limit) is full. What was buffered before is
	// kept; free disk space or lower the budget.
	ErrDiskFull = errors.New("disk full")
	// ErrTooLarge is returned by Put for a packet that alone exceeds the budget.
	ErrTooLarge = errors.New("packet larger than the buffer's budget")
	// ErrCorrupt is wrapped by CorruptError.
	ErrCorrupt = errors.New("buffered packet is corrupt")
	// ErrWrongKey is returned by Open when the file was sealed with another
	// key than the Sealer's: its packets cannot be read. Move the file aside
	// (or restore the vault's key) before starting again.
	ErrWrongKey = errors.New("buffer was sealed with another key")
)

// CorruptError reports a buffered packet that could not be opened: altered on
// disk, moved to another key, or sealed with another key. Drop it (the queue
// does not move past it by itself) and carry on.
type CorruptError struct {
	// Seq is the corrupt packet's sequence number.
	Seq uint64
	// Err says what failed.
	Err error
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("buffered packet %d is corrupt: %v", e.Seq, e.Err)
}

// Unwrap returns ErrCorrupt and the cause, for errors.Is.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Buffer is the durable packet queue. Its methods are safe for concurrent use.
type Buffer struct {
	db       *bolt.DB
	path     string
	sealer   Sealer
	maxBytes int64
	log      *slog.Logger

	mu sync.Mutex // guards st
	st state      // what is committed; written only by the writer goroutine

	reqs       chan *request
	quit       chan struct{}
	writerDone chan struct{}
	notify     chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// state is the persisted bookkeeping, mirrored in memory.
type state struct {
	next    uint64 // seq of the next packet
	count   uint64 // packets buffered
	bytes   int64  // their size, see entrySize
	dropped uint64 // packets dropped and not yet reported (ClearDropped)
}

const (
	formatVersion = 1
	// elementHeader is what bbolt stores per leaf entry besides key and value.
	elementHeader = 16
	// defaultPageSize holds 35 sealed ~400-byte packets per page where 4 KiB
	// holds 8, which keeps the file within 1.3 × the packet bytes.
	defaultPageSize = 16 << 10
	lockTimeout     = 2 * time.Second
)

var (
	packetsBucket = []byte("packets")
	metaBucket    = []byte("meta")

	keyVersion = []byte("version")
	keyNext    = []byte("next")
	keyCount   = []byte("count")
	keyBytes   = []byte("bytes")
	keyDropped = []byte("dropped")
	keyCheck   = []byte("check")

	checkValue = []byte("sonde buffer key check")
)

// aadPrefix separates the buffer's additional data from that of other values
// sealed under a key derived from the same vault key.
const aadPrefix = "sonde/buffer/v1\x00"

// Open opens the buffer at path, creating it (mode 0600) if needed. It fails
// with ErrWrongKey when the file was sealed under another key.
func Open(path string, s Sealer, opts Options) (*Buffer, error) {
	if s == nil {
		return nil, errors.New("opening buffer: no sealer")
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("opening buffer: Options.MaxBytes must not be negative, got %d", opts.MaxBytes)
	}
	maxBytes := opts.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pageSize := opts.pageSize
	if pageSize == 0 {
		pageSize = defaultPageSize
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      lockTimeout,
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
		PageSize:     pageSize,
		MaxSize:      opts.maxFileSize,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening buffer %s: file is locked; is another sonde-appliance running? %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening buffer %s: %w", path, err)
	}
	// bbolt creates the file 0600 but keeps the mode of an existing one.
	if err := os.Chmod(path, 0o600); err != nil { // #nosec G703 -- path is the buffer file the operator configured
		_ = db.Close()
		return nil, fmt.Errorf("opening buffer %s: %w", path, err)
	}

	b := &Buffer{
		db:         db,
		path:       path,
		sealer:     s,
		maxBytes:   maxBytes,
		log:        log,
		reqs:       make(chan *request, 256),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		notify:     make(chan struct{}, 1),
	}
	if err := db.Update(b.init); err != nil {
		_ = db.Close()
		if errors.Is(err, ErrWrongKey) {
			return nil, fmt.Errorf("opening buffer %s: %w; restore the vault key it was sealed with, or move the file aside to start an empty buffer", path, err)
		}
		return nil, fmt.Errorf("opening buffer %s: %w", path, classify(err))
	}
	log.Info("buffer opened", "path", path, "packets", b.st.count, "bytes", b.st.bytes,
		"max_bytes", maxBytes, "dropped", b.st.dropped)
	go b.writer()
	return b, nil
}

// init creates the buckets of a new file or checks and loads an existing one.
func (b *Buffer) init(tx *bolt.Tx) error {
	packets, err := tx.CreateBucketIfNotExists(packetsBucket)
	if err != nil {
		return err
	}
	meta, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return err
	}
	checkAAD := []byte(aadPrefix + string(keyCheck))
	if v := meta.Get(keyVersion); v == nil {
		if k, _ := packets.Cursor().First(); k != nil {
			return errors.New("file has packets but no format version; it is not a sonde buffer")
		}
		if err := meta.Put(keyVersion, []byte{formatVersion}); err != nil {
			return err
		}
		if err := meta.Put(keyCheck, b.sealer.Seal(nil, checkValue, checkAAD)); err != nil {
			return err
		}
		b.st = state{next: 1}
		return putState(meta, b.st)
	} else if len(v) != 1 || v[0] != formatVersion {
		return fmt.Errorf("unknown format version %x; was it written by a newer sonde-appliance?", v)
	}
	if _, err := b.sealer.Open(nil, meta.Get(keyCheck), checkAAD); err != nil {
		return ErrWrongKey
	}
	st, err := getState(meta)
	if err != nil {
		return err
	}
	// Never hand out a seq that is already on disk, whatever meta says.
	if k, _ := packets.Cursor().Last(); len(k) == 8 {
		if last := binary.BigEndian.Uint64(k); last >= st.next {
			st.next = last + 1
		}
	}
	if st.next == 0 {
		st.next = 1
	}
	b.st = st
	return nil
}

func putState(meta *bolt.Bucket, st state) error {
	for _, kv := range []struct {
		k []byte
		v uint64
	}{
		{keyNext, st.next},
		{keyCount, st.count},
		{keyBytes, uint64(st.bytes)}, // #nosec G115 -- bytes is never negative
		{keyDropped, st.dropped},
	} {
		if err := meta.Put(kv.k, binary.BigEndian.AppendUint64(nil, kv.v)); err != nil {
			return err
		}
	}
	return nil
}

func getState(meta *bolt.Bucket) (state, error) {
	var vals [4]uint64
	for i, k := range [][]byte{keyNext, keyCount, keyBytes, keyDropped} {
		v := meta.Get(k)
		if len(v) != 8 {
			return state{}, fmt.Errorf("meta %q is malformed", k)
		}
		vals[i] = binary.BigEndian.Uint64(v)
	}
	if vals[2] > 1<<62 {
		return state{}, fmt.Errorf("meta %q is malformed", keyBytes)
	}
	// #nosec G115 -- checked against 1<<62 above
	return state{next: vals[0], count: vals[1], bytes: int64(vals[2]), dropped: vals[3]}, nil
}

// Put buffers one packet and returns its seq once it is on disk (fsynced).
// Concurrent callers share a commit.
func (b *Buffer) Put(assetID uint64, body []byte) (uint64, error) {
	return b.PutBatch([]Packet{{AssetID: assetID, Body: body}})
}

// PutBatch buffers packets in one commit and returns the seq of the first;
// the others follow it consecutively. Either all are buffered or none.
func (b *Buffer) PutBatch(packets []Packet) (first uint64, err error) {
	if len(packets) == 0 {
		return 0, nil
	}
	r := &request{puts: packets}
	if err := b.do(r); err != nil {
		return 0, fmt.Errorf("buffering check data: %w", err)
	}
	return r.first, nil
}

// Peek returns up to max packets with a seq greater than after, oldest
// first. It stops before a corrupt packet; when the first packet it would
// return is corrupt, it returns a *CorruptError naming it, which the caller
// logs and passes to Drop so the queue moves on.
func (b *Buffer) Peek(after uint64, max int) ([]Entry, error) {
	if max <= 0 {
		return nil, fmt.Errorf("reading buffered packets: max must be positive, got %d", max)
	}
	if after == ^uint64(0) {
		return nil, nil
	}
	var out []Entry
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(packetsBucket).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			if len(k) != 8 {
				// Not written by this package: bbolt's own structures
				// were edited. Skip it rather than block the queue.
				continue
			}
			e, err := b.decode(k, v)
			if err != nil {
				if len(out) > 0 {
					return nil
				}
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, fmt.Errorf("reading buffered packets: %w", err)
	}
	return out, nil
}

// decode opens a value read under key k; v is only valid in the transaction.
func (b *Buffer) decode(k, v []byte) (Entry, error) {
	seq := binary.BigEndian.Uint64(k)
	var aad [len(aadPrefix) + 8]byte
	pt, err := b.sealer.Open(nil, v, appendAAD(aad[:0], k))
	if err != nil {
		return Entry{}, &CorruptError{Seq: seq, Err: err}
	}
	assetID, n := binary.Uvarint(pt)
	if n <= 0 {
		return Entry{}, &CorruptError{Seq: seq, Err: errors.New("malformed asset id")}
	}
	return Entry{Seq: seq, AssetID: assetID, Body: pt[n:]}, nil
}

// Ack deletes packets the hub accepted. Unknown seqs (already acknowledged
// or dropped) are ignored. It returns once the deletion is on disk;
// concurrent calls and Puts share a commit, and acknowledging in batches is
// cheaper than one at a time.
func (b *Buffer) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := b.do(&request{acks: seqs}); err != nil {
		return fmt.Errorf("deleting acknowledged packets: %w", err)
	}
	return nil
}

// Drop deletes packets that will never be sent, such as the one a
// CorruptError names, and counts them in Dropped.
func (b *Buffer) Drop(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := b.do(&request{drops: seqs}); err != nil {
		return fmt.Errorf("dropping buffered packets: %w", err)
	}
	b.log.Warn("dropped buffered packets", "count", len(seqs))
	return nil
}

// ClearDropped subtracts n from Dropped once n drops have been reported to
// the hub; drops counted in the meantime stay counted.
func (b *Buffer) ClearDropped(n uint64) error {
	if n == 0 {
		return nil
	}
	if err := b.do(&request{clearDropped: n}); err != nil {
		return fmt.Errorf("clearing the dropped count: %w", err)
	}
	return nil
}

// Len returns the number of buffered packets.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int(b.st.count) // #nosec G115 -- bounded by the budget
}

// Bytes returns the space the buffered packets take in the file's pages,
// which MaxBytes bounds.
func (b *Buffer) Bytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st.bytes
}

// Dropped returns how many packets were dropped (budget exceeded, corrupt)
// and not yet cleared with ClearDropped. It survives restarts.
func (b *Buffer) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st.dropped
}

// Notify returns a channel that receives after a commit that buffered
// packets. Notifications coalesce (at most one is pending), so it suits one
// sender goroutine that then Peeks until the queue is drained.
func (b *Buffer) Notify() <-chan struct{} { return b.notify }

// Close commits the requests already queued, stops the writer and closes the
// file. Calls after Close return ErrClosed.
func (b *Buffer) Close() error {
	b.closeOnce.Do(func() {
		close(b.quit)
		<-b.writerDone
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("closing buffer %s: %w", b.path, err)
		}
	})
	return b.closeErr
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func appendAAD(dst, key []byte) []byte { return append(append(dst, aadPrefix...), key...) }

// entrySize is what an entry takes in a leaf page, the unit of the budget.
func entrySize(k, v []byte) int64 { return int64(elementHeader + len(k) + len(v)) }
