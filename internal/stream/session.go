package stream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// session is one connected appliance.
type session struct {
	srv        *Server
	conn       *tls.Conn
	app        state.Appliance
	log        *slog.Logger
	infraSonar bool // token announce: an unchanged InfraSonar appliance
	// cert is the client certificate presented; currentCert says it is
	// the appliance's current one (not the one from before a renewal).
	cert        *x509.Certificate
	currentCert bool
	renewed     bool // read and written by the session's reader only
	// token is what a token-announced appliance authenticated with; it is
	// checked again at every heartbeat.
	token secret.Secret
	// logs limits what the appliance can make the hub log.
	logs *rateLimit

	closeOnce sync.Once
	closed    chan struct{}

	wmu sync.Mutex // one packet at a time on the stream
	pid uint16     // next pid of a hub request, under wmu

	mu          sync.Mutex
	infoPending map[uint16]bool // pids of info requests not answered yet
	live        Live
	announce    uint16            // pid of the announce, answered by the reply
	announced   bool              // the announce reply was sent
	listKey     string            // the appliance list last sent
	sent        map[uint64][]byte // asset id → the upsert body last sent
	targets     map[uint64]ingest.Target
	lastInfo    time.Time
}

func newSession(s *Server, conn *tls.Conn, app state.Appliance, announcePID uint16, remote string, infraSonar bool, now time.Time) *session {
	return &session{
		srv: s, conn: conn, app: app, infraSonar: infraSonar, announce: announcePID,
		log:    s.log.With("appliance_id", app.ID, "remote", remote),
		closed: make(chan struct{}),
		live:   Live{ConnectedSince: now, RemoteAddr: remote},
		sent:   map[uint64][]byte{}, targets: map[uint64]ingest.Target{}, infoPending: map[uint16]bool{},
		lastInfo: now, logs: s.logLimit(app.ID),
	}
}

func (ss *session) close() {
	ss.closeOnce.Do(func() {
		close(ss.closed)
		ss.conn.SetDeadline(time.Now())
		ss.conn.Close()
	})
}

func (ss *session) snapshot() Live {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	l := ss.live
	l.Probes = append([]ProbeInfo(nil), l.Probes...)
	l.Missing = append([]string(nil), l.Missing...)
	l.Assets = len(ss.sent)
	return l
}

// write sends one packet; a hub request (pid < 0) gets the next pid.
func (ss *session) write(p wire.Packet, request bool) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if request {
		ss.pid++
		p.PID = ss.pid
	}
	if err := ss.conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	return wire.WritePacket(ss.conn, p)
}

// writePID sends one packet with the pid it already has.
func (ss *session) writePID(p wire.Packet) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if err := ss.conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	return wire.WritePacket(ss.conn, p)
}

// push sends the appliance its assets: the announce reply the first time,
// the whole list when the container's appliances changed, and upserts and
// unsets for what changed otherwise.
func (ss *session) push(zones []wire.ApplianceZone, listKey string, assets []wire.Asset) error {
	bodies := make(map[uint64][]byte, len(assets))
	for _, a := range assets {
		b, err := wire.MarshalUpsertAsset(a)
		if err != nil {
			return err
		}
		bodies[a.ID] = b
	}
	ss.mu.Lock()
	first, listChanged := !ss.announced, ss.listKey != listKey
	prev := ss.sent
	ss.announced, ss.listKey, ss.sent = true, listKey, bodies
	// Check ids resolve again against the new plan.
	clear(ss.targets)
	ss.mu.Unlock()
	ss.srv.markServed(ss.app.ID, prev, bodies)
	switch {
	case first:
		body, err := wire.MarshalAnnounceReply(wire.AnnounceReply{ApplianceID: uint64(ss.app.ID), Appliances: zones, Assets: assets}) // #nosec G115 -- ids are positive
		if err != nil {
			return err
		}
		ss.log.Debug("sent the announce reply", "assets", len(assets))
		return ss.write(wire.Packet{PID: ss.announce, Type: wire.TypeAnnounceReply, Body: body}, false)
	case listChanged:
		body, err := wire.MarshalSetAssets(wire.SetAssets{Appliances: zones, Assets: assets})
		if err != nil {
			return err
		}
		ss.log.Debug("sent all assets", "assets", len(assets))
		return ss.write(wire.Packet{Type: wire.TypeSetAssets, Body: body}, true)
	}
	var gone []uint64
	for id := range prev {
		if _, ok := bodies[id]; !ok {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		body, err := wire.MarshalUnsetAssets(gone)
		if err != nil {
			return err
		}
		if err := ss.write(wire.Packet{Type: wire.TypeUnsetAssets, Body: body}, true); err != nil {
			return err
		}
		ss.log.Debug("unset assets", "assets", gone)
	}
	for _, a := range assets {
		if bytes.Equal(prev[a.ID], bodies[a.ID]) {
			continue
		}
		if err := ss.write(wire.Packet{Type: wire.TypeUpsertAsset, Body: bodies[a.ID]}, true); err != nil {
			return err
		}
		ss.log.Debug("upserted an asset", "asset_id", a.ID)
	}
	return nil
}

// run reads the appliance's packets until the stream ends.
func (ss *session) run(ctx context.Context) {
	defer ss.srv.remove(ss)
	defer ss.close()
	defer ss.log.Info("appliance disconnected")
	hb := ss.srv.cfg.Heartbeat
	go ss.heartbeat(ctx, hb)
	br := bufio.NewReaderSize(ss.conn, 64<<10)
	rd := wire.NewReader(br, ss.srv.cfg.MaxBody)
	read := func() (wire.Packet, bool) {
		if err := ss.conn.SetReadDeadline(time.Now().Add(3 * hb)); err != nil {
			return wire.Packet{}, false
		}
		p, err := rd.ReadPacket()
		if err == nil {
			return p, true
		}
		select {
		case <-ss.closed:
			return p, false
		default:
		}
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF):
		case errors.As(err, &ne) && ne.Timeout():
			ss.log.Warn("the appliance went silent; closing its stream")
		default:
			ss.log.Warn("protocol error from the appliance; closing its stream", "err", err)
		}
		return p, false
	}
	var batch []wire.Packet
	for {
		p, ok := read()
		if !ok {
			return
		}
		if p.Type != wire.TypeData {
			if err := ss.handle(ctx, p); err != nil {
				ss.log.Warn("closing the appliance's stream", "err", err)
				return
			}
			continue
		}
		// Data packets already received are stored together: one
		// commit for many results while a buffer replays.
		batch = append(batch[:0], p)
		var other *wire.Packet
		size := len(p.Body)
		for len(batch) < maxBatch && size < maxBatchBytes && br.Buffered() > 0 {
			q, ok := read()
			if !ok {
				return
			}
			if q.Type != wire.TypeData {
				other = &q
				break
			}
			batch = append(batch, q)
			size += len(q.Body)
		}
		if err := ss.data(ctx, batch); err != nil {
			ss.log.Warn("closing the appliance's stream", "err", err)
			return
		}
		if other != nil {
			if err := ss.handle(ctx, *other); err != nil {
				ss.log.Warn("closing the appliance's stream", "err", err)
				return
			}
		}
	}
}

// maxBatch and maxBatchBytes bound the data packets stored in one commit.
const (
	maxBatch      = 256
	maxBatchBytes = 4 << 20
)

// data stores a batch of data packets and answers each, in one write.
func (ss *session) data(ctx context.Context, batch []wire.Packet) error {
	answers, retry := ss.srv.dataBatch(ctx, ss, batch)
	ss.mu.Lock()
	ss.live.LastData = ss.srv.cfg.Now()
	ss.mu.Unlock()
	var out []byte
	for _, a := range answers {
		if a.Type == wire.TypeError && ss.logs.allow() {
			msg, _ := wire.UnmarshalErrorBody(a.Body)
			ss.log.Info("refused check data", "reason", msg)
		}
		out = wire.AppendPacket(out, a)
	}
	if len(out) > 0 {
		ss.wmu.Lock()
		err := ss.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err == nil {
			_, err = ss.conn.Write(out)
		}
		ss.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("answering check data: %w", err)
		}
	}
	if retry != nil {
		return fmt.Errorf("storing check data failed (the appliance will send it again): %w", retry)
	}
	return nil
}

// handle acts on one packet; an error closes the stream.
func (ss *session) handle(ctx context.Context, p wire.Packet) error {
	switch p.Type {
	case wire.TypeData:
		return ss.data(ctx, []wire.Packet{p})
	case wire.TypeInfoReply:
		ss.mu.Lock()
		asked := ss.infoPending[p.PID]
		delete(ss.infoPending, p.PID)
		ss.mu.Unlock()
		if !asked {
			return nil // an answer nobody asked for costs nothing
		}
		info, err := wire.UnmarshalInfoReply(p.Body)
		if err != nil {
			return err
		}
		if ss.infraSonar {
			if _, err := ss.srv.authToken(ctx, ss.token.Reveal()); err != nil {
				return fmt.Errorf("the appliance's token is no longer valid: %w", err)
			}
		}
		now := ss.srv.cfg.Now()
		ss.mu.Lock()
		ss.live.Version = info.Version
		ss.live.Missing = info.Missing
		ss.live.Probes = ss.live.Probes[:0]
		for _, pr := range info.Probes {
			ss.live.Probes = append(ss.live.Probes, ProbeInfo{Key: pr.Key, Version: pr.Version})
		}
		if info.HasCounts {
			ss.live.Buffered, ss.live.Dropped = info.Buffered, info.Dropped
		}
		if info.Timestamp > 0 {
			ss.live.ClockSkew = time.Duration((info.Timestamp - float64(now.UnixNano())/1e9) * float64(time.Second))
		}
		ss.lastInfo = now
		dropped, missing := ss.live.Dropped, slices.Clone(ss.live.Missing)
		ss.mu.Unlock()
		if err := ss.srv.cfg.State.RecordApplianceInfo(ctx, ss.app.ID, now, dropped, missing); err != nil {
			if errors.Is(err, state.ErrNotFound) {
				return errors.New("the appliance was revoked")
			}
			return err
		}
		return nil
	case wire.TypeAuditLog:
		l, err := wire.UnmarshalAuditLog(p.Body)
		if err != nil {
			return err
		}
		// The same limit bounds the audit log: an appliance cannot flood it.
		if !ss.logs.allow() {
			return nil
		}
		ss.log.Info("appliance audit log", "event_id", l.EventID, "message", shorten(l.Message))
		err = ss.srv.cfg.State.AppendAudit(ctx, audit.Entry{At: ss.srv.cfg.Now(), ContainerID: ss.app.ContainerID,
			ActorKind: audit.ActorAppliance, ActorID: ss.app.ID, Action: "appliance audit event",
			Address: hostOf(ss.conn.RemoteAddr().String()), Detail: fmt.Sprintf("event %v: %s", l.EventID, shorten(l.Message))})
		if err != nil {
			ss.log.Error("writing an appliance audit event to the audit log failed", "err", err)
		}
		return nil
	case wire.TypeRenew:
		return ss.srv.renew(ctx, ss, p)
	case wire.TypeOK, wire.TypeError:
		return nil // answers to the hub's pushes
	}
	return fmt.Errorf("unexpected %s packet from the appliance", p.Type)
}

// heartbeat asks for the appliance's info every interval.
func (ss *session) heartbeat(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	ask := func() bool {
		ss.wmu.Lock()
		ss.pid++
		pid := ss.pid
		ss.wmu.Unlock()
		ss.mu.Lock()
		if len(ss.infoPending) > 8 {
			clear(ss.infoPending) // an appliance that never answers
		}
		ss.infoPending[pid] = true
		ss.mu.Unlock()
		if err := ss.writePID(wire.Packet{PID: pid, Type: wire.TypeInfo, Body: wire.EmptyBody}); err != nil {
			ss.close()
			return false
		}
		return true
	}
	if !ask() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			ss.close()
			return
		case <-ss.closed:
			return
		case <-t.C:
			if !ask() {
				return
			}
		}
	}
}

// target resolves a check id of a data packet, remembering the answer. The
// check must belong to the asset, and the asset to the appliance's
// container.
func (ss *session) target(ctx context.Context, assetID, checkID uint64) (ingest.Target, error) {
	notServed := &refusal{msg: fmt.Sprintf("check %d of asset %d is not served by this appliance", checkID, assetID)}
	if !ss.srv.serves(ss.app.ID, assetID) {
		return ingest.Target{}, notServed
	}
	ss.mu.Lock()
	t, ok := ss.targets[checkID]
	ss.mu.Unlock()
	if !ok {
		asset, collector, check, err := ss.srv.cfg.State.CheckByID(ctx, int64(checkID)) // #nosec G115 -- an unknown id is not found
		if errors.Is(err, state.ErrNotFound) {
			return t, notServed
		}
		if err != nil {
			return t, err
		}
		a, err := ss.srv.cfg.State.Asset(ctx, asset)
		if errors.Is(err, state.ErrNotFound) {
			return t, notServed
		}
		if err != nil {
			return t, err
		}
		if a.ContainerID != ss.app.ContainerID {
			return t, notServed
		}
		t = ingest.Target{ContainerID: a.ContainerID, AssetID: a.ID, AssetName: a.Name, Collector: collector, Check: check}
		ss.mu.Lock()
		if len(ss.targets) > 100000 {
			clear(ss.targets)
		}
		ss.targets[checkID] = t
		ss.mu.Unlock()
	}
	if uint64(t.AssetID) != assetID { // #nosec G115 -- ids are positive
		return t, notServed
	}
	return t, nil
}

// failLimiter counts failed attempts per address and refuses an address
// that failed too often within the window.
type failLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time
	mu     sync.Mutex
	fails  map[string][]time.Time
}

// maxTracked bounds the addresses a failLimiter remembers.
const maxTracked = 100000

func newFailLimiter(max int, window time.Duration, now func() time.Time) *failLimiter {
	return &failLimiter{max: max, window: window, now: now, fails: map[string][]time.Time{}}
}

func (f *failLimiter) prune(host string, now time.Time) []time.Time {
	ts := f.fails[host]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > f.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(f.fails, host)
		return nil
	}
	f.fails[host] = ts
	return ts
}

func (f *failLimiter) allow(host string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.prune(host, f.now())) < f.max
}

func (f *failLimiter) fail(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	ts := f.prune(host, now)
	if ts == nil && len(f.fails) >= maxTracked {
		// A flood of addresses: drop the expired ones; if that is not
		// enough, stop tracking new addresses rather than forget the
		// ones already blocked.
		for h := range f.fails {
			f.prune(h, now)
		}
		if len(f.fails) >= maxTracked {
			return
		}
	}
	f.fails[host] = append(ts, now)
}

// rateLimit allows n events per window (a simple fixed window).
type rateLimit struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	start  time.Time
	count  int
}

func newRateLimit(n int, window time.Duration) *rateLimit {
	return &rateLimit{n: n, window: window}
}

func (r *rateLimit) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.start) > r.window {
		r.start, r.count = now, 0
	}
	r.count++
	return r.count <= r.n
}

// hostOf is the address of "host:port".
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// shorten keeps what an appliance says readable in one log line.
func shorten(s string) string {
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
