package snmp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

const (
	// defaultRunTimeout bounds a run whose context has no deadline.
	defaultRunTimeout = 30 * time.Second
	// maxRequestTimeout caps the derived per-request timeout: an agent
	// that has not answered in 5 s will not, and a retry is better spent.
	maxRequestTimeout = 5 * time.Second
	// maxErrorDetail bounds how much of a library error reaches a message.
	maxErrorDetail = 300
)

// session is one run's SNMP client. gosnmp.GoSNMP is not safe for
// concurrent use, so every run builds its own and closes it.
type session struct {
	g     *gosnmp.GoSNMP
	cfg   *Config
	where string // host:port, for messages
	user  string // v3 USM user name, for messages
	reps  uint32
	scrub scrubber
	stop  func() bool // stops the context.AfterFunc that closes the socket
	// answered is set once the agent has answered a request: a timeout
	// after that is a slow or overloaded agent, not a wrong community.
	answered bool
}

// failure is an error whose message is safe to show (it holds no secret)
// with the severity it is reported with.
type failure struct {
	sev model.Severity
	msg string
}

func (f *failure) Error() string { return f.msg }

func fail(sev model.Severity, format string, args ...any) *failure {
	return &failure{sev: sev, msg: fmt.Sprintf(format, args...)}
}

// errResult turns err into a Result: a *failure keeps its severity, anything
// else is HIGH.
func errResult(err error) probe.Result {
	var f *failure
	if errors.As(err, &f) {
		return probe.Fail(f.sev, "%s", f.msg)
	}
	return probe.Fail(model.SeverityHigh, "%s", err.Error())
}

// run decodes t's configuration, opens a session and hands it to check.
// The session is closed when check returns.
func run(ctx context.Context, t probe.Target, creds probe.Credentials, check func(context.Context, *session) probe.Result) probe.Result {
	cfg, err := parseConfig(t)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRunTimeout)
		defer cancel()
	}
	s, err := open(ctx, cfg, creds)
	if err != nil {
		return errResult(err)
	}
	defer s.close()
	return check(ctx, s)
}

// credUse is a credential a session sends, with what it is used for.
type credUse struct {
	cred  probe.Credential
	use   string   // for messages: who takes it
	kinds []string // the kinds it may be
}

// open looks up the credentials, checks that they are of the right kinds
// and may be sent to the agent, and connects a client for cfg (for UDP,
// connecting sends nothing). The address is resolved here, once, and the
// client is given the address that was checked, never the name.
func open(ctx context.Context, cfg *Config, creds probe.Credentials) (*session, error) {
	s := &session{
		cfg:  cfg,
		reps: uint32(cfg.MaxRepetitions), // #nosec G115 -- validated to 1..1000
	}
	uses, err := credentials(cfg, creds)
	if err != nil {
		return nil, err
	}
	host := strings.Trim(cfg.Address, "[]")
	for _, u := range uses {
		if err := probe.CheckCredential(u.cred, u.use, u.kinds, host, netip.Addr{}); err != nil {
			return nil, fail(model.SeverityHigh, "%v", err)
		}
	}
	ip, err := resolve(ctx, host, uses)
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(cfg.Port)
	s.where = net.JoinHostPort(ip.String(), port)
	if _, literal := parseAddr(host); !literal {
		s.where = host + "[" + ip.String() + "]:" + port
	}
	g := &gosnmp.GoSNMP{
		Target:         ip.String(),
		Port:           uint16(cfg.Port), // #nosec G115 -- validated to 1..65535
		Transport:      "udp",
		Context:        ctx,
		Timeout:        requestTimeout(ctx, cfg),
		Retries:        *cfg.Retries,
		MaxRepetitions: s.reps,
		MaxOids:        gosnmp.MaxOids,
		// The target is an address, so dialling resolves nothing; this
		// checks once more that the socket goes where the credentials
		// may be sent, after the run's address policy (see
		// probe.WithAddrPolicy) when it has one.
		Control: probe.DialControl(ctx, func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("refusing to connect to %q: not an address and port: %w", address, probe.ErrCredentialNotPermitted)
			}
			for _, u := range uses {
				if err := probe.CheckCredential(u.cred, u.use, u.kinds, host, ap.Addr()); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	main := uses[0].cred
	if cfg.Version == Version2c {
		if main.Secret.IsZero() {
			return nil, fail(model.SeverityHigh, "credential %q holds no community", cfg.Credential)
		}
		g.Version = gosnmp.Version2c
		g.Community = main.Secret.Reveal()
		s.scrub.add(g.Community)
	} else {
		var priv *probe.Credential
		if len(uses) > 1 {
			priv = &uses[1].cred
		}
		if err := s.setupV3(g, main, priv); err != nil {
			return nil, err
		}
	}
	s.g = g
	if err := g.Connect(); err != nil {
		if refused, ok := errors.AsType[*probe.AddrRefusedError](err); ok {
			return nil, fail(model.SeverityHigh, "connecting to %s: %s", s.where, s.scrub.detail(refused))
		}
		return nil, fail(model.SeverityHigh, "connecting to %s: %s", s.where, s.scrub.detail(err))
	}
	// gosnmp looks at its Context only between tries: a try blocks in
	// Read until its own timeout. Closing the socket when ctx ends makes
	// that Read return at once. The net.Conn is closed directly (it is
	// safe for concurrent use); GoSNMP.Close would race with the
	// request in flight.
	conn := g.Conn
	s.stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
	return s, nil
}

// credentials looks up the vault entries cfg names: the main one first,
// then the v3 privacy passphrase's when authPriv names one.
func credentials(cfg *Config, creds probe.Credentials) ([]credUse, error) {
	kind, use := probe.KindSNMPv3Auth, "the snmp probe's config.credential with version 3"
	if cfg.Version == Version2c {
		kind, use = probe.KindSNMPCommunity, "the snmp probe with version 2c"
	}
	main, err := lookup(creds, cfg.Credential, kind)
	if err != nil {
		return nil, err
	}
	if main.Name == "" {
		main.Name = cfg.Credential
	}
	uses := []credUse{{cred: main, use: use, kinds: []string{kind}}}
	if cfg.Version == Version3 && cfg.level == LevelAuthPriv && cfg.PrivCredential != "" {
		priv, err := lookup(creds, cfg.PrivCredential, probe.KindSNMPv3Priv)
		if err != nil {
			return nil, err
		}
		if priv.Name == "" {
			priv.Name = cfg.PrivCredential
		}
		uses = append(uses, credUse{cred: priv, use: "the snmp probe's config.privCredential", kinds: []string{probe.KindSNMPv3Priv}})
	}
	return uses, nil
}

// resolve returns the address to send to: host itself when it is an
// address, else the first address it resolves to that every credential
// may be sent to.
func resolve(ctx context.Context, host string, uses []credUse) (netip.Addr, error) {
	var addrs []netip.Addr
	if a, ok := parseAddr(host); ok {
		addrs = []netip.Addr{a}
	} else {
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return netip.Addr{}, fail(model.SeverityHigh, "cannot resolve %s: %s", host, sanitizeString(err.Error(), maxErrorDetail))
		}
		if len(found) == 0 {
			return netip.Addr{}, fail(model.SeverityHigh, "cannot resolve %s: no address", host)
		}
		addrs = found
	}
next:
	for _, a := range addrs {
		a = a.Unmap()
		for _, u := range uses {
			if !u.cred.Permits(host, a) {
				continue next
			}
		}
		return a, nil
	}
	for _, u := range uses {
		if err := probe.CheckCredential(u.cred, u.use, u.kinds, host, addrs[0].Unmap()); err != nil {
			return netip.Addr{}, fail(model.SeverityHigh, "%v", err)
		}
	}
	return netip.Addr{}, fail(model.SeverityHigh, "the credentials may not be sent to any address of %s", host)
}

// parseAddr returns host as an IP address, when it is one.
func parseAddr(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// close releases the session's socket.
func (s *session) close() {
	s.stop()
	_ = s.g.Close()
}

// setupV3 fills in g's USM parameters from the vault entries: main, and
// priv when config.privCredential names one.
func (s *session) setupV3(g *gosnmp.GoSNMP, main probe.Credential, priv *probe.Credential) error {
	cfg := s.cfg
	if main.Username == "" {
		return fail(model.SeverityHigh, "credential %q has no user name: for SNMP v3 the vault entry's user name is the USM user", cfg.Credential)
	}
	s.user = main.Username
	usm := &gosnmp.UsmSecurityParameters{
		UserName:               main.Username,
		AuthenticationProtocol: cfg.authProto,
		PrivacyProtocol:        cfg.privProto,
	}
	g.Version = gosnmp.Version3
	g.SecurityModel = gosnmp.UserSecurityModel
	g.SecurityParameters = usm
	switch cfg.level {
	case LevelNoAuthNoPriv:
		g.MsgFlags = gosnmp.NoAuthNoPriv
		return nil
	case LevelAuthNoPriv:
		g.MsgFlags = gosnmp.AuthNoPriv
	default:
		g.MsgFlags = gosnmp.AuthPriv
	}
	if err := checkPassphrase(main, cfg.Credential); err != nil {
		return err
	}
	// gosnmp caches passphrase → key hashes for the whole process, keyed
	// by the passphrase. That stays on: a key costs about 20 ms of CPU to
	// derive, cores' worth at thousands of v3 checks a minute, and the
	// passphrases are in this process's memory anyway (the vault hands
	// them to every run). It never reaches a log or a message.
	usm.AuthenticationPassphrase = main.Secret.Reveal()
	s.scrub.add(usm.AuthenticationPassphrase)
	if cfg.level != LevelAuthPriv {
		return nil
	}
	usm.PrivacyPassphrase = usm.AuthenticationPassphrase
	if priv != nil {
		if priv.Username != "" && priv.Username != main.Username {
			return fail(model.SeverityHigh, "credentials %q and %q are for different users (%q and %q); the privacy passphrase must be the same user's",
				cfg.Credential, cfg.PrivCredential, main.Username, priv.Username)
		}
		if err := checkPassphrase(*priv, cfg.PrivCredential); err != nil {
			return err
		}
		usm.PrivacyPassphrase = priv.Secret.Reveal()
		s.scrub.add(usm.PrivacyPassphrase)
	}
	return nil
}

// checkPassphrase refuses a passphrase that agents refuse, with a message
// that says which entry without saying what it holds.
func checkPassphrase(c probe.Credential, name string) error {
	if len(c.Secret.Reveal()) < minPassphraseLen {
		return fail(model.SeverityHigh, "the passphrase in credential %q is shorter than %d bytes, which SNMP v3 does not allow (RFC 3414)", name, minPassphraseLen)
	}
	return nil
}

// lookup fetches a vault entry, which should be of the given kind. The
// error names the entry, never a value.
func lookup(creds probe.Credentials, name, kind string) (probe.Credential, error) {
	if creds == nil {
		return probe.Credential{}, fail(model.SeverityHigh, "credential %q: this appliance has no vault", name)
	}
	c, err := creds.Credential(name)
	switch {
	case errors.Is(err, probe.ErrNoCredential):
		return c, fail(model.SeverityHigh, "credential %q is not in the appliance's vault; add it with \"sonde-appliance vault set %s --kind %s --hosts LIST\"", name, name, kind)
	case err != nil:
		return c, fail(model.SeverityHigh, "looking up credential %q: %v", name, err)
	}
	return c, nil
}

// requestTimeout is how long one request waits for its answer: the
// configured timeout, or the time left in the run shared among the tries
// (at most maxRequestTimeout), so that every try fits in the run.
func requestTimeout(ctx context.Context, cfg *Config) time.Duration {
	if cfg.Timeout > 0 {
		return time.Duration(cfg.Timeout * float64(time.Second))
	}
	d := maxRequestTimeout
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline) / time.Duration(*cfg.Retries+1)
		if left < d {
			d = left
		}
	}
	if d < 10*time.Millisecond {
		// gosnmp caps every request at the context's deadline anyway.
		d = 10 * time.Millisecond
	}
	return d
}

// describe turns an error of the SNMP library into a message for the
// operator: what happened and what to check, without any secret.
func (s *session) describe(ctx context.Context, err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	switch {
	case errors.Is(err, gosnmp.ErrWrongDigest):
		return fail(model.SeverityHigh, "SNMP authentication failed: the agent at %s refused the authentication passphrase of user %q; check credential %q and authProtocol",
			s.where, s.user, s.cfg.Credential)
	case isNotAuthentic(err):
		// gosnmp checks the agent's answer against the configured
		// authentication key before it reads it, so the agent's
		// unauthenticated report (wrong digest, unknown user) arrives as
		// "not authentic".
		return fail(model.SeverityHigh, "SNMP authentication failed: the agent at %s did not accept user %q with the passphrase of credential %q (wrong passphrase, authProtocol or securityLevel, or a user the agent does not know)",
			s.where, s.user, s.cfg.Credential)
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return fail(model.SeverityHigh, "SNMP authentication failed: the agent at %s does not know user %q (credential %q)", s.where, s.user, s.cfg.Credential)
	case errors.Is(err, gosnmp.ErrDecryption):
		return fail(model.SeverityHigh, "SNMP authentication failed: the agent at %s could not decrypt the request; check the privacy passphrase and privProtocol", s.where)
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return fail(model.SeverityHigh, "SNMP authentication failed: the agent at %s does not allow securityLevel %s for user %q", s.where, s.cfg.level, s.user)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail(model.SeverityHigh, "no SNMP agent at %s: the port is closed (connection refused)", s.where)
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return fail(model.SeverityHigh, "SNMP request to %s: the run was cancelled", s.where)
	case isTimeout(ctx, err):
		if s.answered {
			return fail(model.SeverityHigh, "the agent at %s stopped answering before the walk was done (a slow agent with many interfaces may need a longer check interval, a longer timeout or a larger maxRepetitions)", s.where)
		}
		if s.cfg.Version == Version2c {
			return fail(model.SeverityHigh, "no answer from %s (wrong community, or the agent is unreachable)", s.where)
		}
		return fail(model.SeverityHigh, "no answer from %s (the agent is unreachable, or the privacy passphrase or privProtocol is wrong)", s.where)
	}
	return fail(model.SeverityHigh, "SNMP request to %s failed: %s", s.where, s.scrub.detail(err))
}

// statusFailure describes an answer whose error-status is not noError.
func (s *session) statusFailure(request string, status gosnmp.SNMPError) *failure {
	if status == gosnmp.AuthorizationError || status == gosnmp.NoAccess {
		who := "the community"
		if s.cfg.Version == Version3 {
			who = fmt.Sprintf("user %q at securityLevel %s", s.user, s.cfg.level)
		}
		return fail(model.SeverityHigh, "SNMP access denied: the agent at %s answered %s with %s: %s may not read it (check the agent's view and access rules)",
			s.where, request, status, who)
	}
	return fail(model.SeverityHigh, "the agent at %s answered %s with error-status %s", s.where, request, status)
}

// isNotAuthentic reports whether err is gosnmp's (unexported) error for an
// answer whose authentication does not check out.
func isNotAuthentic(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "not authentic") || strings.Contains(msg, "is not authenticated but user")
}

// isTimeout reports whether err means that no (valid) answer came in time.
func isTimeout(ctx context.Context, err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		errors.Is(err, gosnmp.ErrMaxRetriesExceeded) ||
		errors.As(err, &ne) && ne.Timeout() ||
		strings.Contains(err.Error(), "timeout")
}

// scrubber removes secret values from text that comes from outside this
// package (the SNMP library's errors), in plain and hex-dumped forms.
type scrubber struct {
	forms []string
}

func (s *scrubber) add(secret string) {
	if secret == "" {
		return
	}
	b := []byte(secret)
	s.forms = append(s.forms, secret, hex.EncodeToString(b), fmt.Sprintf("% x", b), fmt.Sprintf("%q", secret))
}

// clean returns text without any form of the secrets.
func (s *scrubber) clean(text string) string {
	for _, f := range s.forms {
		text = strings.ReplaceAll(text, f, "[REDACTED]")
	}
	return text
}

// detail is err's message, scrubbed, on one line and bounded: the library
// puts hex dumps and even stack traces in its errors.
func (s *scrubber) detail(err error) string {
	msg := s.clean(err.Error())
	msg = strings.Join(strings.Fields(msg), " ")
	msg = sanitizeString(msg, maxErrorDetail)
	return s.clean(msg)
}
