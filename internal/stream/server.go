// Package stream is the hub's end of the appliance stream
// (INFRASONAR-WIRE.md §1–2): a TLS listener speaking InfraSonar's framing,
// Sonde's enrollment (a token with CORE_CONNECT buys a client certificate
// signed by the hub's CA; mutual TLS from then on), the assignment of each
// container's assets to its connected appliances (each gets only its own),
// configuration pushed as it changes, and check data ingested and answered
// one packet at a time.
package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/tlsca"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// ProbeKeys are the collectors Sonde's appliance runs. Only these are sent
// to appliances; Config.ExtraProbeKeys adds the keys of InfraSonar probes.
func ProbeKeys() []string { return []string{"icmp", "tcp", "http", "tls", "dns", "snmp"} }

// Ingester stores check data.
type Ingester interface {
	IngestBatch(ctx context.Context, items []ingest.Item) []error
	RejectedData(ctx context.Context, t ingest.Target, reason error)
}

// Config configures the stream server.
type Config struct {
	State  *state.Store
	Ingest Ingester
	// CA signs the appliances' client certificates and verifies them.
	CA *tlsca.CA
	// Cert is the hub's server certificate.
	Cert   tls.Certificate
	Logger *slog.Logger
	// AllowTokenAnnounce accepts InfraSonar's announce with a token and
	// no client certificate, for unchanged InfraSonar appliances.
	AllowTokenAnnounce bool
	// ExtraProbeKeys are collector keys of InfraSonar probes to send to
	// appliances besides ProbeKeys.
	ExtraProbeKeys []string
	// Heartbeat is how often the hub asks a connected appliance for its
	// info; 0 means 30 s. An appliance silent for three heartbeats is
	// disconnected.
	Heartbeat time.Duration
	// CertValidity is how long an appliance certificate is valid; 0 means
	// one year.
	CertValidity time.Duration
	// MaxBody bounds a packet body; 0 means wire.DefaultMaxBody.
	MaxBody int
	// PushDelay gathers configuration changes made close together into
	// one push; 0 means 200 ms.
	PushDelay time.Duration
	// MaxAppliancesPerContainer bounds the appliances connected at once
	// in one container (each costs the hub a stream and a share of every
	// configuration push); 0 means 100.
	MaxAppliancesPerContainer int
	Now                       func() time.Time
	// Version is the hub's version: an appliance's hardening audit
	// reports an older appliance.
	Version string
	// HubID names this hub process among the hubs sharing the state
	// store; "" means "hub" (a single hub).
	HubID string
	// Peers tells the other hubs of this hub's streams; nil for a single
	// hub.
	Peers Peers
}

// Peers are the other hubs sharing the state store. A container's assets
// are shared among its connected appliances wherever they are connected
// (the state store records which hub holds each stream); these calls tell
// the other hubs when that changes here.
type Peers interface {
	// MembersChanged says that an appliance of the container connected
	// to this hub or left it: every hub shares the assets again.
	MembersChanged(container int64)
	// Connected says that an appliance connected to this hub: a hub
	// still holding an older stream of it closes that one.
	Connected(appliance int64)
}

// Server serves appliance streams.
type Server struct {
	cfg     Config
	log     *slog.Logger
	tls     *tls.Config
	probes  []string
	limits  model.Limits
	fails   *failLimiter
	preAuth chan struct{}

	mu       sync.Mutex
	sessions map[int64]*session // by appliance id
	pending  map[int64]bool     // containers with a push scheduled
	// preAuthHosts counts the connections authenticating, by address.
	preAuthHosts map[string]int
	// served says, for each appliance, which assets it may send data
	// for and until when: the assets of its plan, and for a while those
	// that left it (its buffer may still hold their results).
	served map[int64]map[uint64]time.Time
	// logLimits bound what each appliance can make the hub log and put
	// in the audit log (20 a minute), across its reconnections.
	logLimits map[int64]*rateLimit
	// reconcileMu serialises the pushes of one container.
	reconcileMu sync.Map // container id → *sync.Mutex
	wg          sync.WaitGroup
	ctx         context.Context
}

// New builds a stream server.
func New(cfg Config) (*Server, error) {
	if cfg.State == nil || cfg.Ingest == nil || cfg.CA == nil {
		return nil, errors.New("stream server: state, ingester and CA are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.CertValidity <= 0 {
		cfg.CertValidity = 365 * 24 * time.Hour
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = wire.DefaultMaxBody
	}
	if cfg.PushDelay <= 0 {
		cfg.PushDelay = 200 * time.Millisecond
	}
	if cfg.MaxAppliancesPerContainer <= 0 {
		cfg.MaxAppliancesPerContainer = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HubID == "" {
		cfg.HubID = "hub"
	}
	tc := tlsca.ServerConfig(cfg.Cert)
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	tc.ClientCAs = cfg.CA.Pool()
	tc.NextProtos = nil
	s := &Server{
		cfg: cfg, log: cfg.Logger, tls: tc,
		probes:       append(append([]string{state.ApplianceCollector}, ProbeKeys()...), cfg.ExtraProbeKeys...),
		fails:        newFailLimiter(10, time.Minute, cfg.Now),
		preAuth:      make(chan struct{}, maxPreAuth),
		preAuthHosts: map[string]int{},
		served:       map[int64]map[uint64]time.Time{},
		sessions:     map[int64]*session{},
		logLimits:    map[int64]*rateLimit{},
		pending:      map[int64]bool{},
	}
	return s, nil
}

// Serve accepts appliance connections on ln until ctx ends, then closes
// every stream and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer s.wg.Wait()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.closeAll()
				return nil
			}
			// Out of file descriptors, say: wait and go on, as
			// net/http does; the HTTPS side must not go down with it.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accepting an appliance connection failed; retrying", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn)
		}()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		ss.close()
	}
}

// Limits on connections that have not authenticated yet.
const (
	// handshakeTimeout bounds the TLS handshake.
	handshakeTimeout = 3 * time.Second
	// firstPacketTimeout bounds the wait for the announce or enroll.
	firstPacketTimeout = 10 * time.Second
	// maxPreAuth is how many connections may be authenticating at once,
	// maxPreAuthPerHost from one address.
	maxPreAuth        = 1024
	maxPreAuthPerHost = 4
	// preAuthWait is how long a connection waits for a free slot.
	preAuthWait = time.Second
)

// preAuthMaxBody bounds the first packet: an announce or an enroll.
const preAuthMaxBody = 64 << 10

// admit takes a pre-authentication slot for host, waiting briefly when all
// are taken; the returned function gives it back.
func (s *Server) admit(ctx context.Context, host string) (release func(), ok bool) {
	s.mu.Lock()
	if s.preAuthHosts[host] >= maxPreAuthPerHost {
		s.mu.Unlock()
		return nil, false
	}
	s.preAuthHosts[host]++
	s.mu.Unlock()
	undo := func() {
		s.mu.Lock()
		if s.preAuthHosts[host]--; s.preAuthHosts[host] <= 0 {
			delete(s.preAuthHosts, host)
		}
		s.mu.Unlock()
	}
	t := time.NewTimer(preAuthWait)
	defer t.Stop()
	select {
	case s.preAuth <- struct{}{}:
	case <-t.C:
		undo()
		return nil, false
	case <-ctx.Done():
		undo()
		return nil, false
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-s.preAuth
			undo()
		})
	}, true
}

func (s *Server) handle(ctx context.Context, raw net.Conn) {
	remote := raw.RemoteAddr().String()
	log := s.log.With("remote", remote)
	defer raw.Close()
	host, _, _ := net.SplitHostPort(remote)
	release, ok := s.admit(ctx, host)
	if !ok {
		log.Warn("refusing an appliance connection: too many connections are authenticating (from this address, or in all)")
		return
	}
	defer release()
	conn := tls.Server(raw, s.tls)
	if err := conn.SetDeadline(s.cfg.Now().Add(handshakeTimeout)); err != nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err := conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		s.fails.fail(host)
		log.Debug("appliance TLS handshake failed", "err", err)
		return
	}
	// An address that keeps failing is refused, except an appliance with
	// a certificate of the hub's CA: behind a NAT or a load balancer,
	// someone else's failures must not lock it out.
	if len(conn.ConnectionState().PeerCertificates) == 0 && !s.fails.allow(host) {
		log.Warn("refusing an appliance connection: too many failed attempts from this address")
		return
	}
	if err := conn.SetDeadline(s.cfg.Now().Add(firstPacketTimeout)); err != nil {
		return
	}
	rd := wire.NewReader(conn, preAuthMaxBody)
	p, err := rd.ReadPacket()
	if err != nil {
		log.Info("dropping an appliance connection: no valid first packet", "err", err)
		s.fails.fail(host)
		return
	}
	switch p.Type {
	case wire.TypeEnroll:
		s.enroll(ctx, conn, p, log, host)
	case wire.TypeAnnounce:
		ss, err := s.announce(ctx, conn, p, remote)
		if err != nil {
			var re *refusal
			if errors.As(err, &re) {
				s.fails.fail(host)
				log.Warn("refused an appliance", "reason", re.log)
				writeRaw(conn, wire.Packet{PID: p.PID, Type: wire.TypeError, Body: wire.MarshalErrorBody(re.msg)})
				return
			}
			log.Error("accepting an appliance failed", "err", err)
			writeRaw(conn, wire.Packet{PID: p.PID, Type: wire.TypeError, Body: wire.MarshalErrorBody("the hub could not accept the appliance; it will retry")})
			return
		}
		release()
		ss.run(ctx)
	default:
		log.Info("dropping an appliance connection: the first packet must be an announce or an enroll", "type", p.Type)
		s.fails.fail(host)
	}
}

// refusal is an announce or enroll the hub refuses; msg goes to the
// appliance, log to the hub's log.
type refusal struct{ msg, log string }

func (r *refusal) Error() string { return r.log }

// badToken is the one answer to any token problem: no oracle for which one.
const badToken = "the token is unknown, expired or revoked, or lacks the permission CORE_CONNECT" // #nosec G101 -- an error message, not a credential

func writeRaw(conn net.Conn, p wire.Packet) {
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	wire.WritePacket(conn, p)
}

// authToken checks an appliance token and returns it.
func (s *Server) authToken(ctx context.Context, tok string) (state.Token, error) {
	t, valid, err := s.cfg.State.AuthToken(ctx, auth.HashToken(secret.New(tok)), s.cfg.Now())
	if errors.Is(err, state.ErrNotFound) || (err == nil && (!valid || !auth.Permission(t.Permissions).Has(auth.CoreConnect))) {
		return t, &refusal{msg: badToken, log: "bad appliance token"}
	}
	if err != nil {
		return t, err
	}
	return t, nil
}

// enroll signs a client certificate for a new appliance.
func (s *Server) enroll(ctx context.Context, conn *tls.Conn, p wire.Packet, log *slog.Logger, host string) {
	refuse := func(msg, why string) {
		s.fails.fail(host)
		log.Warn("refused an appliance enrollment", "reason", why)
		writeRaw(conn, wire.Packet{PID: p.PID, Type: wire.TypeError, Body: wire.MarshalErrorBody(msg)})
	}
	e, err := wire.UnmarshalEnroll(p.Body)
	if err != nil {
		refuse("malformed enroll: "+err.Error(), err.Error())
		return
	}
	tok, err := s.authToken(ctx, e.Token)
	if err != nil {
		var re *refusal
		if errors.As(err, &re) {
			refuse(re.msg, re.log)
			return
		}
		log.Error("enrolling an appliance failed", "err", err)
		return
	}
	if n, err := s.cfg.State.CountEnrollments(ctx, tok.ID, s.cfg.Now().Add(-time.Hour)); err != nil {
		log.Error("enrolling an appliance failed", "err", err)
		return
	} else if n >= maxEnrollmentsPerHour {
		refuse(fmt.Sprintf("this token enrolled %d appliances in the last hour; try again later", n), "enrollment rate of a token")
		return
	}
	if _, err := x509.ParseCertificateRequest(e.CSR); err != nil {
		refuse("the certificate signing request is not valid DER: "+err.Error(), "bad CSR")
		return
	}
	tokID := tok.ID
	id, err := s.cfg.State.CreateAppliance(ctx, state.Appliance{ContainerID: tok.ContainerID, Name: e.Name, Zone: e.Zone, TokenID: &tokID})
	if err != nil {
		log.Error("enrolling an appliance failed", "err", err)
		return
	}
	der, err := s.cfg.CA.SignClientCSR(e.CSR, commonName(id), s.cfg.CertValidity)
	if err != nil {
		// No appliance without a certificate is left behind for a
		// token announce to claim.
		if derr := s.cfg.State.DeleteAppliance(ctx, id); derr != nil {
			log.Error("removing an appliance whose enrollment failed", "appliance_id", id, "err", derr)
		}
		refuse("the hub cannot sign this request: "+err.Error(), err.Error())
		return
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Error("enrolling an appliance failed", "err", err)
		return
	}
	if err := s.cfg.State.SetApplianceCert(ctx, id, tlsca.Fingerprint(der), cert.NotAfter); err != nil {
		log.Error("enrolling an appliance failed", "err", err)
		return
	}
	body, err := wire.MarshalEnrollReply(wire.EnrollReply{ApplianceID: uint64(id), Certificate: der, CA: s.cfg.CA.Certificate().Raw})
	if err != nil {
		log.Error("enrolling an appliance failed", "err", err)
		return
	}
	writeRaw(conn, wire.Packet{PID: p.PID, Type: wire.TypeEnrollReply, Body: body})
	log.Info("enrolled an appliance", "appliance_id", id, "name", e.Name, "zone", e.Zone, "container_id", tok.ContainerID, "token_id", tok.ID, "not_after", cert.NotAfter)
}

// renew signs a new certificate for a connected appliance's new key.
func (s *Server) renew(ctx context.Context, ss *session, p wire.Packet) error {
	if ss.infraSonar {
		return errors.New("an appliance without a certificate asked to renew one")
	}
	csr, err := wire.UnmarshalRenew(p.Body)
	if err != nil {
		return err
	}
	// Only the current certificate, only once a connection, only when it
	// is due: a stolen certificate must not buy a fresh one forever.
	refuse := func(msg string) error {
		ss.log.Warn("refused to renew the appliance's certificate", "reason", msg)
		return ss.write(wire.Packet{PID: p.PID, Type: wire.TypeError, Body: wire.MarshalErrorBody(msg)}, false)
	}
	switch left, window := ss.cert.NotAfter.Sub(s.cfg.Now()), min(ss.cert.NotAfter.Sub(ss.cert.NotBefore)/3, 30*24*time.Hour); {
	case !ss.currentCert:
		return refuse("only the appliance's current certificate may be renewed")
	case ss.renewed:
		return refuse("the certificate was renewed on this connection already")
	case left > window:
		return refuse(fmt.Sprintf("the certificate is not due for renewal before %s", ss.cert.NotAfter.Add(-window).UTC().Format(time.RFC3339)))
	}
	ss.renewed = true
	der, err := s.cfg.CA.SignClientCSR(csr, commonName(ss.app.ID), s.cfg.CertValidity)
	if err != nil {
		return ss.write(wire.Packet{PID: p.PID, Type: wire.TypeError, Body: wire.MarshalErrorBody("the hub cannot sign this request: " + err.Error())}, false)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if err := s.cfg.State.RenewApplianceCert(ctx, ss.app.ID, tlsca.Fingerprint(der), cert.NotAfter); err != nil {
		return err
	}
	body, err := wire.MarshalEnrollReply(wire.EnrollReply{ApplianceID: uint64(ss.app.ID), Certificate: der, CA: s.cfg.CA.Certificate().Raw}) // #nosec G115 -- ids are positive
	if err != nil {
		return err
	}
	ss.log.Info("renewed the appliance's certificate", "not_after", cert.NotAfter)
	return ss.write(wire.Packet{PID: p.PID, Type: wire.TypeEnrollReply, Body: body}, false)
}

// maxEnrollmentsPerHour bounds the appliances one token enrolls in an
// hour: a leaked token must not mint appliances without end.
const maxEnrollmentsPerHour = 20

// commonName is the subject of appliance id's certificate.
func commonName(id int64) string { return "sonde-appliance-" + strconv.FormatInt(id, 10) }

func idFromCommonName(cn string) (int64, bool) {
	rest, ok := strings.CutPrefix(cn, "sonde-appliance-")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// announce authenticates an appliance, registers its session and answers
// with its assets.
func (s *Server) announce(ctx context.Context, conn *tls.Conn, p wire.Packet, remote string) (*session, error) {
	a, err := wire.UnmarshalAnnounce(p.Body)
	if err != nil {
		return nil, &refusal{msg: "malformed announce: " + err.Error(), log: err.Error()}
	}
	var app state.Appliance
	certs := conn.ConnectionState().PeerCertificates
	switch {
	case len(certs) > 0:
		// The handshake verified the chain to the hub's CA; the
		// appliance must present exactly the certificate it was given.
		id, ok := idFromCommonName(certs[0].Subject.CommonName)
		if !ok {
			return nil, &refusal{msg: "this client certificate does not name an appliance", log: "client certificate with subject " + certs[0].Subject.CommonName}
		}
		app, err = s.cfg.State.ApplianceByID(ctx, id)
		if errors.Is(err, state.ErrNotFound) {
			return nil, &refusal{msg: "this appliance is not known to the hub: enroll it again", log: "certificate of an unknown appliance"}
		}
		if err != nil {
			return nil, err
		}
		switch fp := tlsca.Fingerprint(certs[0].Raw); {
		case fp == app.CertFingerprint:
			if app.PrevCertFingerprint != "" {
				// The renewed certificate is in use: the old one is done.
				if err := s.cfg.State.ConfirmApplianceCert(ctx, id); err != nil {
					return nil, err
				}
			}
		case app.PrevCertFingerprint != "" && fp == app.PrevCertFingerprint:
			// Renewed, but the appliance did not keep the new certificate
			// (it died before writing it): the old one still works.
		default:
			return nil, &refusal{msg: "this certificate was replaced: enroll the appliance again", log: "an old certificate of appliance " + strconv.FormatInt(id, 10)}
		}
		if a.ApplianceID != 0 && a.ApplianceID != uint64(id) {
			return nil, &refusal{msg: "the announce names another appliance than the certificate", log: "announce/certificate mismatch"}
		}
	case !s.cfg.AllowTokenAnnounce:
		return nil, &refusal{
			msg: "this hub accepts enrolled appliances only (mutual TLS): start sonde-appliance with --token-file to enroll, or ask the operator to start the hub with --allow-token-announce for InfraSonar appliances",
			log: "token announce without --allow-token-announce",
		}
	default:
		tok, err := s.authToken(ctx, a.Token)
		if err != nil {
			return nil, err
		}
		if a.ApplianceID == 0 {
			tokID := tok.ID
			id, err := s.cfg.State.CreateAppliance(ctx, state.Appliance{ContainerID: tok.ContainerID, Name: a.Name, Zone: a.Zone, TokenID: &tokID})
			if err != nil {
				return nil, err
			}
			a.ApplianceID = uint64(id)
		}
		app, err = s.cfg.State.ApplianceByID(ctx, int64(a.ApplianceID)) // #nosec G115 -- ids come from the hub
		// An appliance is taken over only with the token it first
		// announced with: another CORE_CONNECT token of the container
		// must not replace its stream.
		if errors.Is(err, state.ErrNotFound) || (err == nil && (app.ContainerID != tok.ContainerID || app.TokenID == nil || *app.TokenID != tok.ID)) {
			return nil, &refusal{msg: "this appliance id is unknown for this token", log: "token announce for another token's appliance id"}
		}
		if err != nil {
			return nil, err
		}
		if app.CertFingerprint != "" {
			return nil, &refusal{msg: "this appliance is enrolled: it must connect with its client certificate", log: "token announce for an enrolled appliance"}
		}
	}
	if app.RevokedAt != nil {
		return nil, &refusal{msg: "this appliance was revoked on the hub", log: "revoked appliance " + strconv.FormatInt(app.ID, 10)}
	}
	now := s.cfg.Now()
	// An enrolled appliance's zone is the one it enrolled with (the
	// operator changes it through the API): it decides which assets and
	// credentials' targets it receives, so the appliance does not choose.
	if len(certs) > 0 && a.Zone != app.Zone {
		s.log.Warn("an appliance announced another zone than its own; keeping its own", "appliance_id", app.ID, "announced", a.Zone, "zone", app.Zone)
		a.Zone = app.Zone
	}
	if err := s.cfg.State.UpdateAppliance(ctx, app.ID, a.Name, a.Zone, now); err != nil {
		return nil, err
	}
	app.Name, app.Zone = a.Name, a.Zone
	ss := newSession(s, conn, app, p.PID, remote, len(certs) == 0, now)
	if len(certs) == 0 {
		ss.token = secret.New(a.Token)
	}
	if len(certs) > 0 {
		ss.cert = certs[0]
		ss.currentCert = tlsca.Fingerprint(certs[0].Raw) == app.CertFingerprint
	}
	s.mu.Lock()
	old := s.sessions[app.ID]
	if old == nil && s.connectedLocked(app.ContainerID) >= s.cfg.MaxAppliancesPerContainer {
		s.mu.Unlock()
		return nil, &refusal{
			msg: fmt.Sprintf("this container has %d appliances connected already, the most this hub allows", s.cfg.MaxAppliancesPerContainer),
			log: "appliance limit of the container reached",
		}
	}
	s.sessions[app.ID] = ss
	s.mu.Unlock()
	if old != nil {
		old.log.Info("a new stream of the same appliance replaces this one")
		old.close()
	}
	// Revoked while this announce was on its way: Revoked found no
	// session to close.
	if cur, err := s.cfg.State.ApplianceByID(ctx, app.ID); err != nil || cur.RevokedAt != nil {
		s.remove(ss)
		if err != nil {
			return nil, err
		}
		return nil, &refusal{msg: "this appliance was revoked on the hub", log: "revoked appliance " + strconv.FormatInt(app.ID, 10)}
	}
	ss.log.Info("appliance connected", "name", app.Name, "zone", app.Zone, "container_id", app.ContainerID, "mtls", len(certs) > 0)
	if len(certs) > 0 {
		// A Sonde appliance audits its own hardening, as its own asset.
		if _, err := s.cfg.State.EnsureApplianceAsset(ctx, app.ID); err != nil {
			s.remove(ss)
			return nil, err
		}
	}
	if err := s.cfg.State.SetApplianceConnected(ctx, app.ID, s.cfg.HubID, now); err != nil {
		s.remove(ss)
		return nil, err
	}
	if s.cfg.Peers != nil {
		s.cfg.Peers.Connected(app.ID)
		s.cfg.Peers.MembersChanged(app.ContainerID)
	}
	if err := s.reconcile(ctx, app.ContainerID); err != nil {
		s.remove(ss)
		return nil, err
	}
	return ss, nil
}

// remove forgets a session (if it is still the appliance's current one)
// and gives its assets to the others.
func (s *Server) remove(ss *session) {
	s.mu.Lock()
	cur := s.sessions[ss.app.ID] == ss
	if cur {
		delete(s.sessions, ss.app.ID)
	}
	ctx := s.ctx
	s.mu.Unlock()
	if !cur {
		return
	}
	// Recorded even while the hub stops: the other hubs then share its
	// appliances' assets at once, not once the records go stale.
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.State.SetApplianceDisconnected(dctx, ss.app.ID, s.cfg.HubID); err != nil {
		s.log.Warn("recording the end of an appliance's stream failed", "appliance_id", ss.app.ID, "err", err)
	}
	if s.cfg.Peers != nil {
		s.cfg.Peers.MembersChanged(ss.app.ContainerID)
	}
	if ctx != nil && ctx.Err() == nil {
		s.schedule(ss.app.ContainerID)
	}
}

// connectedLocked counts the connected appliances of a container.
func (s *Server) connectedLocked(container int64) int {
	n := 0
	for _, ss := range s.sessions {
		if ss.app.ContainerID == container {
			n++
		}
	}
	return n
}

// logLimit is the log limiter of an appliance, the same for all its
// streams.
func (s *Server) logLimit(appliance int64) *rateLimit {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logLimits[appliance]
	if l == nil {
		l = newRateLimit(20, time.Minute)
		s.logLimits[appliance] = l
	}
	return l
}

// members lists the connected appliances of a container, by id, wherever
// they are connected: this hub's sessions, and the appliances the state
// store says other hubs hold (seen within three heartbeats: a hub that
// died leaves its records behind). local are this hub's sessions among
// them.
func (s *Server) members(ctx context.Context, container int64) (all []member, local []*session, err error) {
	rows, err := s.cfg.State.ConnectedAppliances(ctx, container, s.cfg.Now().Add(-3*s.cfg.Heartbeat))
	if err != nil {
		return nil, nil, err
	}
	elsewhere := map[int64]bool{}
	for _, r := range rows {
		if r.Hub != s.cfg.HubID {
			elsewhere[r.ID] = true
			all = append(all, member{ID: r.ID, Zone: r.Zone})
		}
	}
	s.mu.Lock()
	for _, ss := range s.sessions {
		// A stream the appliance opened to another hub since supersedes
		// this one, which is on its way out.
		if ss.app.ContainerID == container && !elsewhere[ss.app.ID] {
			local = append(local, ss)
			all = append(all, member{ID: ss.app.ID, Zone: ss.app.Zone}) // ApplianceChanged writes Zone under s.mu
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	sort.Slice(local, func(i, j int) bool { return local[i].app.ID < local[j].app.ID })
	return all, local, nil
}

// MembersChanged takes into account that the appliances of a container
// connected to other hubs changed.
func (s *Server) MembersChanged(container int64) {
	s.schedule(container)
}

// Resync shares the assets of every container with an appliance connected
// here again: changes made on other hubs may have been missed.
func (s *Server) Resync() {
	s.mu.Lock()
	containers := map[int64]bool{}
	for _, ss := range s.sessions {
		containers[ss.app.ContainerID] = true
	}
	s.mu.Unlock()
	for c := range containers {
		s.schedule(c)
	}
}

// ConnectedElsewhere closes this hub's stream of an appliance that has
// connected to another hub since.
func (s *Server) ConnectedElsewhere(appliance int64) {
	s.closeStream(appliance, slog.LevelInfo, "the appliance connected to another hub; closing this stream")
}

// closeStream closes this hub's stream of an appliance, if any, saying
// why.
func (s *Server) closeStream(appliance int64, level slog.Level, why string) {
	s.mu.Lock()
	ss := s.sessions[appliance]
	s.mu.Unlock()
	if ss != nil {
		ss.log.Log(context.Background(), level, why)
		ss.close()
		s.remove(ss)
	}
}

// AssetChanged pushes a changed asset (or its removal) to the appliances
// of its container, gathering changes made within PushDelay.
func (s *Server) AssetChanged(container, _ int64) {
	s.schedule(container)
}

func (s *Server) schedule(container int64) {
	s.mu.Lock()
	if s.pending[container] || s.ctx == nil {
		s.mu.Unlock()
		return
	}
	s.pending[container] = true
	ctx := s.ctx
	s.mu.Unlock()
	time.AfterFunc(s.cfg.PushDelay, func() {
		s.mu.Lock()
		delete(s.pending, container)
		s.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err := s.reconcile(ctx, container); err != nil {
			s.log.Error("pushing configuration to appliances failed", "container_id", container, "err", err)
		}
	})
}

// servedGrace is how long an appliance may still send the results it
// buffered for an asset after the asset left it.
const servedGrace = 24 * time.Hour

// forever marks an asset an appliance serves now.
var forever = time.Unix(1<<62, 0)

// markServed records the change of an appliance's plan.
func (s *Server) markServed(appliance int64, prev, now map[uint64][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.served[appliance]
	if m == nil {
		m = map[uint64]time.Time{}
		s.served[appliance] = m
	}
	until := s.cfg.Now().Add(servedGrace)
	for id := range prev {
		if _, ok := now[id]; !ok {
			m[id] = until
		}
	}
	for id := range now {
		m[id] = forever
	}
	for id, t := range m {
		if t.Before(s.cfg.Now()) {
			delete(m, id)
		}
	}
}

// serves says whether an appliance may send data for an asset.
func (s *Server) serves(appliance int64, asset uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.served[appliance][asset]
	return ok && s.cfg.Now().Before(t)
}

// Revoked closes the stream of a revoked appliance.
func (s *Server) Revoked(appliance int64) {
	s.closeStream(appliance, slog.LevelWarn, "appliance revoked: closing its stream")
	s.mu.Lock()
	delete(s.served, appliance)
	s.mu.Unlock()
}

// ApplianceChanged takes an appliance's new zone into account at once.
func (s *Server) ApplianceChanged(appliance int64) {
	s.mu.Lock()
	ss := s.sessions[appliance]
	ctx := s.ctx
	s.mu.Unlock()
	if ss == nil || ctx == nil {
		return
	}
	app, err := s.cfg.State.ApplianceByID(ctx, appliance)
	if err != nil {
		s.log.Error("reading a changed appliance failed", "appliance_id", appliance, "err", err)
		return
	}
	s.mu.Lock()
	ss.app.Zone = app.Zone
	s.mu.Unlock()
	s.schedule(app.ContainerID)
}

// Live reports on a connected appliance.
func (s *Server) Live(appliance int64) (Live, bool) {
	s.mu.Lock()
	ss := s.sessions[appliance]
	s.mu.Unlock()
	if ss == nil {
		return Live{}, false
	}
	return ss.snapshot(), true
}

// reconcile computes which appliance of the container serves which asset
// and sends each appliance what changed for it: the announce reply to a
// new one, the whole list when the appliances of the container changed
// (InfraSonar's appliances filter by that list), single upserts and unsets
// otherwise.
func (s *Server) reconcile(ctx context.Context, container int64) error {
	muAny, _ := s.reconcileMu.LoadOrStore(container, &sync.Mutex{})
	mu := muAny.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	ms, members, err := s.members(ctx, container)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return nil
	}
	assets, err := s.cfg.State.ProbeAssets(ctx, container, 0, s.probes)
	if err != nil {
		return err
	}
	zones := make([]wire.ApplianceZone, len(ms))
	for i, m := range ms {
		zones[i] = wire.ApplianceZone{ID: uint64(m.ID), Zone: m.Zone} // #nosec G115 -- ids are positive
	}
	listKey := fmt.Sprint(zones)
	plan := assign(ms, assets)
	for _, m := range members {
		var mine []wire.Asset
		for _, a := range plan[m.app.ID] {
			w, err := wireAsset(a, s.cfg.Version)
			if err != nil {
				s.log.Error("an asset's configuration cannot be sent to its appliance", "asset_id", a.ID, "err", err)
				continue
			}
			mine = append(mine, w)
		}
		if err := m.push(zones, listKey, mine); err != nil {
			m.log.Info("pushing configuration failed; closing the stream", "err", err)
			m.close()
		}
	}
	return nil
}

// wireAsset converts an asset's probe configuration for the stream. The
// collector's configuration goes as the probe config; disabled checks are
// left out.
func wireAsset(a state.ProbeAsset, hubVersion string) (wire.Asset, error) {
	w := wire.Asset{ID: uint64(a.ID), Zone: a.Zone, Name: a.Name} // #nosec G115 -- ids are positive
	for _, c := range a.Collectors {
		cfg, err := jsonToMap(c.Config)
		if err != nil {
			return w, fmt.Errorf("collector %s: %w", c.Key, err)
		}
		if c.Key == state.ApplianceCollector && hubVersion != "" {
			// The version the hub announces, for the appliance's
			// version check.
			if cfg == nil {
				cfg = map[string]any{}
			}
			cfg["latestVersion"] = hubVersion
		}
		p := wire.AssetProbe{Key: c.Key, Config: cfg}
		for _, k := range c.Checks {
			if k.Disabled {
				continue
			}
			p.Checks = append(p.Checks, wire.AssetCheck{ID: uint64(k.ID), Key: k.Key, Interval: k.Interval}) // #nosec G115 -- ids are positive
		}
		if len(p.Checks) > 0 {
			w.Probes = append(w.Probes, p)
		}
	}
	return w, nil
}

// jsonToMap decodes a JSON object keeping integers as integers (a probe
// configuration's port must not become 8080.0).
func jsonToMap(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := fixNumbers(v).(map[string]any)
	if !ok {
		return nil, errors.New("the configuration is not a JSON object")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func fixNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil && !strings.ContainsAny(string(v), ".eE") {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = fixNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = fixNumbers(v[k])
		}
	}
	return v
}

// dataBatch ingests data packets and returns their answers, in order: ok,
// or an error the appliance will not retry (bad input, a check it may not
// write). A transient failure (the hub's own storage) returns retry: the
// packets it hit get no answer and the stream is closed, so that the
// appliance sends them again; the hub's insert is idempotent.
func (s *Server) dataBatch(ctx context.Context, ss *session, ps []wire.Packet) (answers []wire.Packet, retry error) {
	answers = make([]wire.Packet, len(ps))
	items := make([]ingest.Item, 0, len(ps))
	at := make([]int, 0, len(ps))
	refuse := func(i int, msg string) {
		answers[i] = wire.Packet{PID: ps[i].PID, Type: wire.TypeError, Body: wire.MarshalErrorBody(msg)}
	}
	for i, p := range ps {
		if retry != nil {
			break
		}
		dump, err := wire.UnmarshalProbeDump(p.Body)
		if err != nil {
			refuse(i, "data packet: "+err.Error())
			continue
		}
		if p.PartID != 0 && p.PartID != dump.AssetID {
			refuse(i, fmt.Sprintf("data packet for asset %d carries data of asset %d", p.PartID, dump.AssetID))
			continue
		}
		t, err := ss.target(ctx, dump.AssetID, dump.CheckID)
		if err != nil {
			var re *refusal
			if errors.As(err, &re) {
				refuse(i, re.msg)
				continue
			}
			retry = err // store what came before, then close
			continue
		}
		cd, err := wire.DecodeCheckData(dump.CheckData, s.limits)
		if err != nil {
			s.cfg.Ingest.RejectedData(ctx, t, err)
			refuse(i, fmt.Sprintf("check data of asset %d, check %s/%s: %v", t.AssetID, t.Collector, t.Check, err))
			continue
		}
		items = append(items, ingest.Item{Target: t, Data: cd})
		at = append(at, i)
	}
	errs := s.cfg.Ingest.IngestBatch(ctx, items)
	for k, err := range errs {
		i, t := at[k], items[k].Target
		switch {
		case err == nil:
			answers[i] = wire.Packet{PID: ps[i].PID, Type: wire.TypeOK, Body: wire.EmptyBody}
		case errors.Is(err, model.ErrInvalid), errors.Is(err, tsstore.ErrOutOfRange), errors.Is(err, tsstore.ErrConflict),
			errors.Is(err, ingest.ErrQuota), errors.Is(err, ingest.ErrGone):
			refuse(i, fmt.Sprintf("check data of asset %d, check %s/%s refused: %v", t.AssetID, t.Collector, t.Check, err))
		default:
			retry = err
		}
	}
	if retry != nil {
		// Answer only the packets before the first one that failed.
		for i := range answers {
			if answers[i].Body == nil {
				return answers[:i], retry
			}
		}
	}
	return answers, retry
}
