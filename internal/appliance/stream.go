package appliance

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/buffer"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// streamIdle is how long the stream may stay silent: the hub asks for the
// appliance's info every 30 s by default.
const streamIdle = 2 * time.Minute

// maxHubBody bounds what the hub may send in one packet: the asset lists
// are the largest.
const maxHubBody = 64 << 20

// refusedError is the hub's refusal of an announce.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return "the hub refused the appliance: " + e.msg }

// disowned says whether the hub no longer knows the appliance as it is:
// revoked, unknown, or its certificate replaced.
func (e *refusedError) disowned() bool {
	return strings.Contains(e.msg, "revoked") || strings.Contains(e.msg, "enroll it again") || strings.Contains(e.msg, "enroll the appliance again")
}

// session runs one stream to the current hub of the list: enroll if
// needed, announce, then send the buffer and follow the hub's
// configuration until the stream breaks.
func (a *Appliance) session(ctx context.Context) error {
	hub := a.currentHub()
	id, ok, err := loadIdentity(a.cfg.DataDir, a.keySealer)
	if err != nil {
		return err
	}
	if !ok {
		if id, err = a.enroll(ctx, hub); err != nil {
			return err
		}
	}
	conn, err := a.dial(ctx, &id, hub)
	if err != nil {
		return err
	}
	defer conn.Close()
	s := &stream{a: a, hub: hub, conn: conn, inflight: map[uint16]uint64{}, acked: make(chan struct{}, 1), done: make(chan struct{}),
		ackSig: make(chan struct{}, 1)}
	return s.run(ctx, id)
}

// stream is one connection to the hub. Its in-flight packets stay in the
// buffer until the hub answers them: when the stream breaks, the next
// stream (to this hub or another) sends them again, and the hub's
// idempotent insert keeps them from counting twice.
type stream struct {
	a    *Appliance
	hub  string // HOST:PORT dialled
	conn *tls.Conn

	wmu sync.Mutex // one packet at a time
	pid uint16     // last pid used, under wmu

	mu       sync.Mutex
	inflight map[uint16]uint64 // pid → buffer seq of a data packet awaiting its answer
	oldest   time.Time         // when the oldest in-flight packet was sent
	acked    chan struct{}
	done     chan struct{}
	doneOnce sync.Once

	// Answered packets are removed from the buffer in batches: each
	// removal is a synced commit, and one per packet would cap replay at
	// the disk's sync rate.
	ackMu  sync.Mutex
	toAck  []uint64
	ackSig chan struct{}

	// renewKey is the new key of a renewal awaiting the hub's answer.
	renewKey *ecdsa.PrivateKey
}

// close ends the stream for good: it closes the TCP connection under the
// TLS one, so that no later deadline (the read loop sets one before every
// read) can bring it back, and no close_notify waits on a stuck peer.
func (s *stream) close() {
	s.doneOnce.Do(func() {
		close(s.done)
		s.conn.NetConn().Close()
	})
}

func (s *stream) write(p wire.Packet) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.conn.SetWriteDeadline(time.Now().Add(requestTimeout)); err != nil {
		return err
	}
	return wire.WritePacket(s.conn, p)
}

func (s *stream) run(ctx context.Context, id identity) error {
	a := s.a
	body, err := wire.MarshalAnnounce(wire.Announce{ApplianceID: uint64(id.id), Name: a.cfg.Name, Zone: a.cfg.Zone}) // #nosec G115 -- ids are positive
	if err != nil {
		return err
	}
	if err := s.write(wire.Packet{PID: 0, Type: wire.TypeAnnounce, Body: body}); err != nil {
		return fmt.Errorf("announcing: %w", err)
	}
	rd := wire.NewReader(bufio.NewReaderSize(s.conn, 64<<10), maxHubBody)
	if err := s.conn.SetReadDeadline(time.Now().Add(requestTimeout)); err != nil {
		return err
	}
	p, err := rd.ReadPacket()
	if err != nil {
		return fmt.Errorf("announcing: no answer from the hub: %w", err)
	}
	switch p.Type {
	case wire.TypeAnnounceReply:
		r, err := wire.UnmarshalAnnounceReply(p.Body)
		if err != nil {
			return fmt.Errorf("announcing: %w", err)
		}
		a.setAssets(r.Appliances, r.Assets)
		a.setConnected(s.hub)
		defer a.setConnected("")
		a.log.Info("connected to the hub", "hub", s.hub, "appliance_id", id.id, "assets", len(r.Assets), "buffered", a.buf.Len())
	case wire.TypeError:
		msg, _ := wire.UnmarshalErrorBody(p.Body)
		return &refusedError{msg: msg}
	default:
		return fmt.Errorf("announcing: the hub answered a %s packet", p.Type)
	}

	if left := time.Until(id.leaf.NotAfter); left < renewBefore(id.leaf) {
		key, body, err := a.renewRequest()
		if err != nil {
			return err
		}
		s.renewKey = key
		if err := s.write(wire.Packet{PID: 0, Type: wire.TypeRenew, Body: body}); err != nil {
			return fmt.Errorf("asking to renew the certificate: %w", err)
		}
		a.log.Info("the appliance certificate expires soon; asked the hub for a new one", "not_after", id.leaf.NotAfter)
	}

	sendErr := make(chan error, 1)
	go func() { sendErr <- s.send(ctx) }()
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		s.acker()
	}()
	readErr := s.read(ctx, rd)
	s.close()
	if err := <-sendErr; err != nil && readErr == nil {
		readErr = err
	}
	<-ackDone
	return readErr
}

// read follows the hub's packets until the stream breaks.
func (s *stream) read(ctx context.Context, rd *wire.Reader) error {
	a := s.a
	stop := context.AfterFunc(ctx, s.close)
	defer stop()
	for {
		select {
		case <-s.done:
			return ctx.Err()
		default:
		}
		if err := s.conn.SetReadDeadline(time.Now().Add(streamIdle)); err != nil {
			return err
		}
		p, err := rd.ReadPacket()
		if err != nil {
			select {
			case <-s.done:
				return ctx.Err()
			default:
			}
			return fmt.Errorf("reading from the hub: %w", err)
		}
		switch p.Type {
		case wire.TypeOK, wire.TypeError:
			if p.PID == 0 && p.Type == wire.TypeError && s.renewKey != nil {
				msg, _ := wire.UnmarshalErrorBody(p.Body)
				a.log.Error("the hub refused to renew the appliance certificate", "reason", msg)
				s.renewKey = nil
				continue
			}
			s.answer(p)
		case wire.TypeSetAssets:
			sa, err := wire.UnmarshalSetAssets(p.Body)
			if err != nil {
				return err
			}
			a.setAssets(sa.Appliances, sa.Assets)
			a.log.Info("the hub changed the assets", "assets", len(sa.Assets))
		case wire.TypeUpsertAsset:
			as, err := wire.UnmarshalUpsertAsset(p.Body)
			if err != nil {
				return err
			}
			a.upsertAsset(as)
			a.log.Info("the hub changed an asset", "asset_id", as.ID)
		case wire.TypeUnsetAssets:
			ids, err := wire.UnmarshalUnsetAssets(p.Body)
			if err != nil {
				return err
			}
			a.unsetAssets(ids)
			a.log.Info("the hub removed assets", "assets", ids)
		case wire.TypeEnrollReply:
			if s.renewKey == nil {
				return errors.New("the hub sent a certificate nobody asked for")
			}
			r, err := wire.UnmarshalEnrollReply(p.Body)
			if err != nil {
				return err
			}
			id, err := a.keepIdentity(r, s.renewKey)
			if err != nil {
				return fmt.Errorf("renewing the certificate: %w", err)
			}
			s.renewKey = nil
			a.log.Info("renewed the appliance certificate", "not_after", id.leaf.NotAfter)
		case wire.TypeInfo:
			if err := s.write(wire.Packet{PID: p.PID, Type: wire.TypeInfoReply, Body: a.info()}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %s packet from the hub", p.Type)
		}
	}
}

// info is the appliance's answer to the hub's heartbeat.
func (a *Appliance) info() []byte {
	r := wire.InfoReply{
		Missing:   a.missingProbes(),
		Timestamp: float64(time.Now().UnixNano()) / 1e9,
		Version:   a.cfg.Version,
		HasCounts: true,
		Buffered:  int64(a.buf.Len()),
		Dropped:   int64(min(a.buf.Dropped(), 1<<62)), // #nosec G115 -- bounded
	}
	for _, k := range a.probes.Keys() {
		r.Probes = append(r.Probes, wire.InfoProbe{Key: k, Version: a.cfg.Version})
	}
	return wire.MarshalInfoReply(r)
}

// answer settles a data packet: ok removes it from the buffer; an error
// means the hub refused it for good, so it is removed too, and logged.
func (s *stream) answer(p wire.Packet) {
	s.mu.Lock()
	seq, ok := s.inflight[p.PID]
	delete(s.inflight, p.PID)
	if len(s.inflight) == 0 {
		s.oldest = time.Time{}
	} else {
		s.oldest = time.Now()
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	if p.Type == wire.TypeError {
		msg, _ := wire.UnmarshalErrorBody(p.Body)
		s.a.mu.Lock()
		s.a.refused++
		s.a.mu.Unlock()
		s.a.log.Warn("the hub refused a result; it is dropped", "seq", seq, "reason", msg)
	}
	s.ackMu.Lock()
	s.toAck = append(s.toAck, seq)
	s.ackMu.Unlock()
	select {
	case s.ackSig <- struct{}{}:
	default:
	}
	select {
	case s.acked <- struct{}{}:
	default:
	}
}

// acker removes answered packets from the buffer, as many per commit as
// were answered meanwhile, until the stream ends (then once more).
func (s *stream) acker() {
	flush := func() {
		s.ackMu.Lock()
		seqs := s.toAck
		s.toAck = nil
		s.ackMu.Unlock()
		if len(seqs) == 0 {
			return
		}
		if err := s.a.buf.Ack(seqs...); err != nil {
			s.a.log.Error("removing sent results from the buffer failed; they will be sent again", "results", len(seqs), "err", err)
		}
	}
	for {
		select {
		case <-s.ackSig:
			flush()
		case <-s.done:
			flush()
			return
		}
	}
}

// send sends the buffer oldest first, keeping up to Window packets
// awaiting an answer. A packet unanswered for requestTimeout closes the
// stream: the next one sends it again, and the hub's idempotent insert
// keeps it from counting twice.
func (s *stream) send(ctx context.Context) error {
	a := s.a
	var after uint64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.mu.Lock()
		room := a.cfg.Window - len(s.inflight)
		oldest := s.oldest
		s.mu.Unlock()
		if !oldest.IsZero() && time.Since(oldest) > requestTimeout {
			s.close()
			return errors.New("the hub did not answer a data packet in time")
		}
		sent := 0
		if room > 0 {
			entries, err := a.buf.Peek(after, room)
			var ce *buffer.CorruptError
			if errors.As(err, &ce) {
				a.log.Error("a buffered result cannot be read (altered on disk?); dropping it", "seq", ce.Seq, "err", ce.Err)
				if err := a.buf.Drop(ce.Seq); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if len(entries) > 0 {
				if err := s.sendEntries(entries); err != nil {
					return err
				}
				after = entries[len(entries)-1].Seq
				sent = len(entries)
			}
		}
		if sent > 0 {
			continue
		}
		select {
		case <-s.done:
			return nil
		case <-ctx.Done():
			return nil
		case <-a.buf.Notify():
		case <-s.acked:
		case <-tick.C:
		}
	}
}

// sendEntries sends buffered packets in one write, so that the hub
// receives them together and stores them in one commit.
func (s *stream) sendEntries(entries []buffer.Entry) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var out []byte
	s.mu.Lock()
	for _, e := range entries {
		for {
			s.pid++ // pid 0 is the announce's and the renewal's
			if _, busy := s.inflight[s.pid]; !busy && s.pid != 0 {
				break
			}
		}
		s.inflight[s.pid] = e.Seq
		out = wire.AppendPacket(out, wire.Packet{PartID: e.AssetID, PID: s.pid, Type: wire.TypeData, Body: e.Body})
	}
	if s.oldest.IsZero() {
		s.oldest = time.Now()
	}
	s.mu.Unlock()
	if err := s.conn.SetWriteDeadline(time.Now().Add(requestTimeout)); err != nil {
		return err
	}
	if _, err := s.conn.Write(out); err != nil {
		return fmt.Errorf("sending results: %w", err)
	}
	return nil
}
