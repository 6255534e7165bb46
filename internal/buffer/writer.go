package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Group commit: one writer goroutine owns every write transaction. It takes
// the first queued request, adds whatever else queued up meanwhile (callers
// that arrived during the previous fsync), and commits them together, so the
// cost of an fsync is shared without waiting on a timer.
const (
	maxGroupRequests = 256
	maxGroupItems    = 4096 // packets and seqs in one transaction
	dropLogInterval  = time.Minute
)

// request is one caller's Put, Ack, Drop or ClearDropped.
type request struct {
	puts         []Packet
	acks         []uint64
	drops        []uint64
	clearDropped uint64

	sealed [][]byte // puts, sealed for their seqs
	first  uint64   // seq of puts[0]
	err    error
	done   chan struct{}
}

func (r *request) items() int { return len(r.puts) + len(r.acks) + len(r.drops) + 1 }

// do hands r to the writer and waits for its commit.
func (b *Buffer) do(r *request) error {
	r.done = make(chan struct{})
	select {
	case b.reqs <- r:
	case <-b.quit:
		return ErrClosed
	}
	select {
	case <-r.done:
		return r.err
	case <-b.writerDone:
		select {
		case <-r.done:
			return r.err
		default: // queued after Close drained the queue
			return ErrClosed
		}
	}
}

func (b *Buffer) writer() {
	defer close(b.writerDone)
	var (
		group []*request
		drops dropLog
	)
	for {
		select {
		case r := <-b.reqs:
			group = b.collect(append(group[:0], r), -1)
			b.commit(group, &drops)
		case <-b.quit:
			// Commit what was queued before Close; later callers get ErrClosed.
			for pending := len(b.reqs); pending > 0; {
				group = b.collect(group[:0], pending)
				if len(group) == 0 {
					break
				}
				pending -= len(group)
				b.commit(group, &drops)
			}
			drops.flush(b, true)
			return
		}
	}
}

// collect adds queued requests to group without waiting, up to the group
// limits and, if limit >= 0, up to limit requests in all.
func (b *Buffer) collect(group []*request, limit int) []*request {
	n := 0
	for _, r := range group {
		n += r.items()
	}
	for len(group) < maxGroupRequests && n < maxGroupItems && (limit < 0 || len(group) < limit) {
		select {
		case r := <-b.reqs:
			group = append(group, r)
			n += r.items()
		default:
			return group
		}
	}
	return group
}

// commit writes group in one transaction and answers its requests.
func (b *Buffer) commit(group []*request, drops *dropLog) {
	b.mu.Lock()
	st := b.st
	b.mu.Unlock()

	valid := make([]*request, 0, len(group))
	next := st.next
	for _, r := range group {
		r.err = nil
		if len(r.puts) > 0 {
			if err := b.seal(r, next); err != nil {
				finish(r, err)
				continue
			}
			next += uint64(len(r.puts))
		}
		valid = append(valid, r)
	}
	if len(valid) == 0 {
		return
	}

	var (
		nst     state
		evicted uint64
	)
	err := b.db.Update(func(tx *bolt.Tx) error {
		var err error
		nst, evicted, err = b.apply(tx, st, valid)
		return err
	})
	if err != nil {
		if len(valid) > 1 {
			// One request must not fail the others: on a full disk an
			// Ack, which frees pages, can still succeed without the Puts,
			// and the Puts then get their chance at the freed pages.
			for _, puts := range []bool{false, true} {
				for _, r := range valid {
					if (len(r.puts) > 0) == puts {
						b.commit([]*request{r}, drops)
					}
				}
			}
			return
		}
		finish(valid[0], classify(err))
		return
	}

	b.mu.Lock()
	b.st = nst
	b.mu.Unlock()
	for _, r := range valid {
		if len(r.puts) > 0 {
			// Before Put returns, so a sender that checks after it sees it.
			select {
			case b.notify <- struct{}{}:
			default:
			}
			break
		}
	}
	for _, r := range valid {
		r.sealed = nil
		finish(r, nil)
	}
	if evicted > 0 {
		drops.add(evicted, nst.dropped)
	}
	drops.flush(b, false)
}

// seal assigns r's puts the seqs from first on and seals them.
func (b *Buffer) seal(r *request, first uint64) error {
	r.first = first
	r.sealed = make([][]byte, len(r.puts))
	var (
		key [8]byte
		aad [len(aadPrefix) + 8]byte
		pt  []byte
	)
	for i, p := range r.puts {
		binary.BigEndian.PutUint64(key[:], first+uint64(i))
		pt = binary.AppendUvarint(pt[:0], p.AssetID)
		pt = append(pt, p.Body...)
		v := b.sealer.Seal(nil, pt, appendAAD(aad[:0], key[:]))
		if size := entrySize(key[:], v); size > b.maxBytes {
			r.sealed = nil
			return fmt.Errorf("%w: %d bytes stored, budget %d", ErrTooLarge, size, b.maxBytes)
		}
		r.sealed[i] = v
	}
	clear(pt) // the plaintext copy does not linger until the next GC
	return nil
}

// apply performs the requests in tx, deletions first so that the space they
// free serves the puts, and returns the new state and how many old packets
// the budget evicted.
func (b *Buffer) apply(tx *bolt.Tx, st state, reqs []*request) (state, uint64, error) {
	packets := tx.Bucket(packetsBucket)
	packets.FillPercent = 1.0 // append-only: full pages, no half-empty splits
	remove := func(seq uint64) (bool, error) {
		k := seqKey(seq)
		v := packets.Get(k)
		if v == nil {
			return false, nil
		}
		st.sub(entrySize(k, v))
		return true, packets.Delete(k)
	}
	for _, r := range reqs {
		for _, seq := range r.acks {
			if _, err := remove(seq); err != nil {
				return st, 0, err
			}
		}
		for _, seq := range r.drops {
			ok, err := remove(seq)
			if err != nil {
				return st, 0, err
			}
			if ok {
				st.dropped++
			}
		}
		st.dropped -= min(r.clearDropped, st.dropped)
	}

	var evicted uint64
	c := packets.Cursor()
	for _, r := range reqs {
		keys := make([]byte, 8*len(r.sealed)) // bbolt keeps key slices until commit
		for i, v := range r.sealed {
			k := binary.BigEndian.AppendUint64(keys[8*i:8*i], r.first+uint64(i))
			size := entrySize(k, v)
			for st.bytes+size > b.maxBytes && st.count > 0 {
				ok, err := evictOldest(c, &st)
				if err != nil {
					return st, 0, err
				}
				if !ok {
					break
				}
				evicted++
			}
			if err := packets.Put(k, v); err != nil {
				return st, 0, err
			}
			st.count++
			st.bytes += size
		}
		if n := uint64(len(r.sealed)); n > 0 {
			st.next = r.first + n
		}
	}
	return st, evicted, putState(tx.Bucket(metaBucket), st)
}

func evictOldest(c *bolt.Cursor, st *state) (bool, error) {
	k, v := c.First()
	if k == nil {
		st.count, st.bytes = 0, 0
		return false, nil
	}
	st.sub(entrySize(k, v))
	st.dropped++
	return true, c.Delete()
}

// sub removes one entry of the given size from the bookkeeping.
func (st *state) sub(size int64) {
	st.count -= min(st.count, 1)
	st.bytes = max(st.bytes-size, 0)
}

func finish(r *request, err error) {
	r.err = err
	close(r.done)
}

// classify marks errors that mean the disk is full.
func classify(err error) error {
	if isDiskFull(err) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, berrors.ErrMaxSizeReached) ||
		// bbolt formats some file errors with %s, which loses the errno.
		strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// dropLog logs budget evictions at most once per dropLogInterval: once the
// budget is reached nearly every commit evicts.
type dropLog struct {
	pending uint64
	total   uint64
	last    time.Time
}

func (d *dropLog) add(n, total uint64) {
	d.pending += n
	d.total = total
}

func (d *dropLog) flush(b *Buffer, force bool) {
	if d.pending == 0 || (!force && time.Since(d.last) < dropLogInterval) {
		return
	}
	b.log.Warn("buffer budget reached, dropped the oldest packets",
		"dropped", d.pending, "dropped_unreported", d.total, "max_bytes", b.maxBytes)
	d.pending = 0
	d.last = time.Now()
}
