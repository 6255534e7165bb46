// Package web is the hub's web UI: server-rendered pages (html/template,
// assets embedded in the binary), password login with sessions held in
// the state store, CSRF tokens on every form, and strict security headers.
// It never serves inline script or style.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // users choose time zones; the hub must not depend on the host's zoneinfo

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names. The __Host- prefix makes browsers refuse them unless
// Secure, for path / and without a Domain: no other host can set them.
const (
	SessionCookie = "__Host-sonde-session"
	LoginCookie   = "__Host-sonde-login"
)

// Session lifetimes.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
	// touchEvery bounds the writes that keep a session alive.
	touchEvery = time.Minute
)

// ContentSecurityPolicy is sent with every page: scripts and styles only
// from the hub's own files, no framing, forms only to the hub.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Config is what the web UI needs.
type Config struct {
	State  *state.Store
	Logger *slog.Logger
	Now    func() time.Time
	// AdminPasswordFile is where the first admin's one-time password was
	// written; it is removed once that admin has chosen a password.
	AdminPasswordFile string
	Version           string
	// Series is the time-series store, for charts; nil draws none.
	Series tsstore.Store
	// Alerts closes alerts by hand.
	Alerts *alert.Engine
	// Appliances reports on connected appliances; nil when the hub
	// serves no stream.
	Appliances Appliances
	// ExternalURL is the hub's address as users reach it (e.g. through a
	// proxy), for the links the UI hands out; empty uses the request's
	// host.
	ExternalURL string
	// AllowPrivateWebhooks, MailConfigured and MailDomains are the hub's
	// delivery settings, which rules are checked against (as by the API).
	AllowPrivateWebhooks bool
	MailConfigured       bool
	MailDomains          []string
}

// Server serves the web UI.
type Server struct {
	st         *state.Store
	series     tsstore.Store
	alerts     *alert.Engine
	appliances Appliances
	log        *slog.Logger
	now        func() time.Time
	cfg        Config
	pages      map[string]*template.Template
	mux        *http.ServeMux
	throttle   *throttle
	posts      *postLimiter
	loginSlot  chan struct{} // bounds the Argon2id checks running at once
	zones      sync.Map      // time-zone name → *time.Location
}

// New builds the web UI.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		st: cfg.State, series: cfg.Series, alerts: cfg.Alerts, appliances: cfg.Appliances, log: cfg.Logger, now: cfg.Now, cfg: cfg,
		throttle: newThrottle(), posts: newPostLimiter(), loginSlot: make(chan struct{}, 2),
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{"when": when}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(filepath.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("parsing the web templates: %w", err)
		}
		s.pages[base] = t
	}
	return nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.logout)
	m.HandleFunc("GET /password", s.withSession(s.passwordPage, allowMustChange|allowNoTOTP))
	m.HandleFunc("POST /password", s.withSession(s.changePassword, allowMustChange|allowNoTOTP))
	m.HandleFunc("GET /login/totp", s.secondFactorPage)
	m.HandleFunc("POST /login/totp", s.secondFactor)
	m.HandleFunc("GET /totp", s.withSession(s.totpPage, allowNoTOTP))
	m.HandleFunc("POST /totp", s.withSession(s.totpSetup, allowNoTOTP))
	m.HandleFunc("POST /totp/remove", s.withSession(s.totpRemove, 0))
	m.HandleFunc("GET /{$}", s.withSession(s.overview, 0))
	m.HandleFunc("GET /container/{id}", s.withSession(s.containerPage, 0))
	m.HandleFunc("GET /asset/{id}", s.withSession(s.assetPage, 0))
	m.HandleFunc("GET /asset/{id}/chart", s.withSession(s.chartPage, 0))
	m.HandleFunc("GET /alerts", s.withSession(s.alertsPage, 0))
	m.HandleFunc("GET /notifications", s.withSession(s.notificationsPage, 0))
	m.HandleFunc("GET /appliances", s.withSession(s.appliancesPage, 0))
	m.HandleFunc("GET /sessions", s.withSession(s.sessionsPage, allowMustChange|allowNoTOTP))
	m.HandleFunc("POST /sessions/end", s.withSession(s.endSession, allowMustChange|allowNoTOTP))
	m.HandleFunc("GET /tokens", s.withSession(s.tokensPage, 0))
	m.HandleFunc("POST /tokens", s.withSession(s.createToken, 0))
	m.HandleFunc("POST /token/{id}/revoke", s.withSession(s.revokeToken, 0))
	m.HandleFunc("POST /alert/{id}/{action}", s.withSession(s.alertAction, 0))
	m.HandleFunc("GET /log", s.withSession(s.logPage, 0))
	s.manageRoutes(m)
	s.accessRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusNotFound, "notfound", page{Title: "Not found"})
	})
	s.mux = m
}

// staticHandler serves the embedded assets with a type from their name.
func staticHandler(files fs.FS) http.Handler {
	fsrv := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// Run removes expired sessions every ten minutes, and audit entries past
// their retention, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if err := s.st.DeleteExpiredSessions(ctx, s.now(), IdleTimeout); err != nil && ctx.Err() == nil {
			s.log.Error("removing expired sessions failed", "err", err)
		}
		if n, err := s.st.PruneAudit(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Error("removing audit entries past their retention failed", "err", err)
		} else if n > 0 {
			s.log.Info("removed audit entries past their retention", "entries", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ServeHTTP sets the security headers and serves the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// page is what every template gets.
type page struct {
	Title   string
	User    string
	CSRF    string
	Error   string
	Notice  string
	Version string
	Data    any
	// Zone is the user's time zone, for times on the page (UTC when nil).
	Zone *time.Location
}

// zone is the time zone a user's pages show times in.
func (s *Server) zone(u state.User) *time.Location {
	if u.TimeZone == "" {
		return time.UTC
	}
	if l, ok := s.zones.Load(u.TimeZone); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(u.TimeZone)
	if err != nil {
		return time.UTC
	}
	s.zones.Store(u.TimeZone, l)
	return l
}

// when renders a time (time.Time or *time.Time) in the page's zone as a
// <time> element with the exact instant; nil or zero renders nothing.
func when(p page, v any) template.HTML {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	default:
		return template.HTML(template.HTMLEscapeString(fmt.Sprint(v))) // #nosec G203 -- escaped here
	}
	if t.IsZero() {
		return ""
	}
	loc := p.Zone
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	// #nosec G203 -- both strings are formatted times, escaped anyway
	return template.HTML(`<time datetime="` + t.UTC().Format(time.RFC3339) + `">` +
		template.HTMLEscapeString(t.Format("2006-01-02 15:04 MST")) + `</time>`)
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	s.renderSized(w, r, code, name, p, 16<<10)
}

// renderSized renders a page of about size bytes.
func (s *Server) renderSized(w http.ResponseWriter, r *http.Request, code int, name string, p page, size int) {
	t := s.pages[name]
	if t == nil {
		s.log.Error("no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Version = s.cfg.Version
	var buf bytes.Buffer
	buf.Grow(size + 8<<10)
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		s.log.Error("rendering a page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// randomToken returns 32 random bytes, base64url.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// GET /login: the form, with a fresh login CSRF token in a cookie and in
// the form (double submit; the cookie is SameSite=Strict).
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.currentSession(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.showLogin(w, r, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	tok, err := randomToken()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setCookie(w, LoginCookie, tok, 3600)
	s.render(w, r, code, "login", page{Title: "Log in", CSRF: tok, Error: msg})
}

// loginFailed is the one answer to a wrong user name or password: it does
// not tell which was wrong.
const loginFailed = "Wrong user name or password."

// POST /login.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.showLogin(w, r, http.StatusBadRequest, "The form could not be read; try again.")
		return
	}
	c, err := r.Cookie(LoginCookie)
	if err != nil || !equalTokens(c.Value, r.PostFormValue("csrf")) {
		s.showLogin(w, r, http.StatusForbidden, "The login form expired; enter your user name and password again.")
		return
	}
	name := state.NormalizeUsername(r.PostFormValue("username"))
	pw := secret.New(r.PostFormValue("password"))
	keys := throttleKeys(name, r)
	release, ok := s.passwordSlot(w, r)
	if !ok {
		return
	}
	defer release()
	// The lock is checked with the slot held: attempts sent at once wait
	// for the slot, and see the lock their predecessors set.
	now := s.now()
	if until := s.throttle.locked(now, keys...); !until.IsZero() {
		s.tooMany(w, r, until.Sub(now))
		return
	}
	if len(name) > 64 {
		name = "" // no user has such a name; verify against the dummy
	}
	u, uerr := s.st.UserByName(r.Context(), name)
	hash := auth.DummyHash
	if uerr == nil {
		hash = u.PasswordHash
	} else if !errors.Is(uerr, state.ErrNotFound) {
		s.log.Error("reading a user failed", "err", uerr)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// Verify even for an unknown name: the answer takes as long.
	ok = auth.VerifyPassword(hash, pw) && uerr == nil && u.DisabledAt == nil && name != ""
	if !ok {
		until := s.throttle.fail(now, keys...)
		s.log.Info("failed login", "remote", clientIP(r))
		var uid int64
		if uerr == nil {
			uid = u.ID
		}
		if !until.IsZero() {
			s.loginEvent(r, uid, "login refused: locked")
			s.tooMany(w, r, until.Sub(now))
			return
		}
		s.loginEvent(r, uid, "login failed")
		s.showLogin(w, r, http.StatusUnauthorized, loginFailed)
		return
	}
	// The account's failures are forgotten only after the second factor,
	// if there is one: a password alone must not reset the count.
	stage, to := stageFull, "/"
	if !u.TOTPSecret.IsZero() {
		stage, to = stagePassword, "/login/totp"
	} else {
		s.throttle.succeed(keys...)
	}
	if err := s.startSession(w, r, u, stage); err != nil {
		s.log.Error("creating a session failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.log.Info("login", "user_id", u.ID, "remote", clientIP(r), "stage", stage)
	s.loginEvent(r, u.ID, "login: "+stage)
	setCookie(w, LoginCookie, "", -1)
	if stage == stageFull && u.MustChange {
		to = "/password"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// The stages of a session.
const (
	stagePassword = "password" // the second factor is still to come
	stageFull     = "full"
)

// passwordSlot waits (at most 3 s) for one of the few Argon2id checks that
// may run at once (each takes 64 MiB); a client cannot queue for ever.
func (s *Server) passwordSlot(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case s.loginSlot <- struct{}{}:
		return func() { <-s.loginSlot }, true
	case <-t.C:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "The hub is busy checking other logins; try again in a few seconds.", http.StatusServiceUnavailable)
	case <-r.Context().Done():
	}
	return nil, false
}

// throttleKeys are the keys a login attempt counts under: the user name
// (hashed: a long name costs no memory) and the client address (an IPv6
// client by its /64, which one client has whole).
func throttleKeys(name string, r *http.Request) []string {
	h := sha256.Sum256([]byte(name))
	return []string{"user:" + hex.EncodeToString(h[:16]), "addr:" + addrKey(clientIP(r))}
}

func addrKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// verifyCurrent checks a logged-in user's password again (to change it,
// to change the second factor), under the same throttle as the login.
func (s *Server) verifyCurrent(w http.ResponseWriter, r *http.Request, u state.User, pw secret.Secret) (ok, answered bool) {
	keys := throttleKeys(u.Username, r)
	release, got := s.passwordSlot(w, r)
	if !got {
		return false, true
	}
	defer release()
	now := s.now()
	if until := s.throttle.locked(now, keys...); !until.IsZero() {
		s.tooMany(w, r, until.Sub(now))
		return false, true
	}
	if !auth.VerifyPassword(u.PasswordHash, pw) {
		s.throttle.fail(now, keys...)
		return false, false
	}
	return true, false
}

// tooMany answers a locked account or address: HTTP 429 and a page that
// says how long to wait.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	minutes := int(wait.Round(time.Minute) / time.Minute)
	if minutes < 1 {
		minutes = 1
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
	tok, _ := randomToken()
	setCookie(w, LoginCookie, tok, 3600)
	s.render(w, r, http.StatusTooManyRequests, "login", page{Title: "Log in", CSRF: tok,
		Error: fmt.Sprintf("Too many failed logins. Wait %d minute(s), then try again.", minutes)})
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u state.User, stage string) error {
	tok, err := randomToken()
	if err != nil {
		return err
	}
	csrf, err := randomToken()
	if err != nil {
		return err
	}
	now := s.now()
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = ua[:200]
	}
	// A new session for a new login: an old cookie (fixation) is worth
	// nothing.
	if err := s.st.CreateSession(r.Context(), state.Session{
		IDHash: hashToken(tok), UserID: u.ID, CSRF: csrf, Stage: stage,
		CreatedAt: now, ExpiresAt: now.Add(AbsoluteTimeout), RemoteAddr: clientIP(r), UserAgent: ua,
	}); err != nil {
		return err
	}
	setCookie(w, SessionCookie, tok, int(AbsoluteTimeout/time.Second))
	return nil
}

// sessionInfo is a logged-in request.
type sessionInfo struct {
	hash    string
	session state.Session
	user    state.User
	// view is what the user sees, computed on first use in the request.
	view *visibleSet
}

// currentSession finds the request's valid session; expired ones are
// removed.
func (s *Server) currentSession(r *http.Request) (sessionInfo, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return sessionInfo{}, false
	}
	hash := hashToken(c.Value)
	se, err := s.st.SessionByHash(r.Context(), hash)
	if err != nil {
		return sessionInfo{}, false
	}
	now := s.now()
	if !now.Before(se.ExpiresAt) || now.Sub(se.LastSeenAt) >= IdleTimeout {
		_ = s.st.DeleteSession(r.Context(), hash)
		return sessionInfo{}, false
	}
	u, err := s.st.UserByID(r.Context(), se.UserID)
	if err != nil || u.DisabledAt != nil {
		return sessionInfo{}, false
	}
	if now.Sub(se.LastSeenAt) >= touchEvery {
		if err := s.st.TouchSession(r.Context(), hash, now); err != nil {
			s.log.Warn("recording session activity failed", "err", err)
		}
	}
	return sessionInfo{hash: hash, session: se, user: u, view: &visibleSet{}}, true
}

// Pages a user reaches before everything else is in order: the password
// change (for a handed-over password) and the second factor's setup (for
// a container that requires one).
const (
	allowMustChange = 1 << iota
	allowNoTOTP
)

type sessionHandler func(w http.ResponseWriter, r *http.Request, si sessionInfo)

// withSession runs h for a logged-in user; others go to /login. POSTs
// must carry the session's CSRF token.
func (s *Server) withSession(h sessionHandler, flags int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := s.currentSession(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if si.session.Stage != stageFull {
			http.Redirect(w, r, "/login/totp", http.StatusSeeOther)
			return
		}
		if si.user.MustChange && flags&allowMustChange == 0 {
			http.Redirect(w, r, "/password", http.StatusSeeOther)
			return
		}
		if flags&allowNoTOTP == 0 && si.user.TOTPSecret.IsZero() {
			required, err := s.totpRequired(r, si)
			if err != nil {
				s.serverError(w, r, err)
				return
			}
			if required {
				http.Redirect(w, r, "/totp", http.StatusSeeOther)
				return
			}
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil || !equalTokens(si.session.CSRF, r.PostFormValue("csrf")) {
				s.render(w, r, http.StatusForbidden, "notfound", page{Title: "Form expired", User: si.user.Username, Zone: s.zone(si.user),
					Error: "This form expired or did not come from this site. Go back, reload the page and try again."})
				return
			}
			if !s.posts.allow(si.user.ID, s.now()) {
				w.Header().Set("Retry-After", "5")
				s.render(w, r, http.StatusTooManyRequests, "notfound", page{Title: "Too many changes", User: si.user.Username, Zone: s.zone(si.user),
					Error: fmt.Sprintf("You made more than %d changes in a short time. Wait a few seconds, then try again.", PostBurst)})
				return
			}
			s.audited(w, r, si, h)
			return
		}
		h(w, r, si)
	}
}

// POST /logout.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	si, ok := s.currentSession(r)
	if ok {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil || !equalTokens(si.session.CSRF, r.PostFormValue("csrf")) {
			http.Error(w, "the form expired; reload the page", http.StatusForbidden)
			return
		}
		if err := s.st.DeleteSession(r.Context(), si.hash); err != nil {
			s.log.Error("ending a session failed", "err", err)
		}
		s.loginEvent(r, si.user.ID, "logout")
	}
	setCookie(w, SessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	p := page{Title: "Change password", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user)}
	if si.user.MustChange {
		p.Notice = "Choose your own password before you go on: the one you logged in with was handed to you."
	}
	s.render(w, r, http.StatusOK, "password", p)
}

// POST /password: current, new, confirm.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	fail := func(msg string) {
		s.render(w, r, http.StatusBadRequest, "password", page{Title: "Change password", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Error: msg})
	}
	current := secret.New(r.PostFormValue("current"))
	next := secret.New(r.PostFormValue("new"))
	if r.PostFormValue("new") != r.PostFormValue("confirm") {
		fail("The new password and its confirmation differ.")
		return
	}
	now := s.now()
	ok, answered := s.verifyCurrent(w, r, si.user, current)
	if answered {
		return
	}
	if !ok {
		fail("The current password is wrong.")
		return
	}
	if current.Equal(next) {
		fail("The new password must differ from the current one.")
		return
	}
	if err := auth.CheckPassword(si.user.Username, next); err != nil {
		fail(strings.ToUpper(err.Error()[:1]) + err.Error()[1:] + ".")
		return
	}
	hash, err := auth.HashPassword(next)
	if err != nil {
		s.log.Error("hashing a password failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := s.st.SetPassword(r.Context(), si.user.ID, hash, false, now); err != nil {
		s.log.Error("storing a password failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// Other sessions of the user end: whoever knew the old password is
	// out.
	if err := s.st.DeleteUserSessions(r.Context(), si.user.ID, si.hash); err != nil {
		s.log.Error("ending other sessions failed", "err", err)
	}
	s.forgetAdminPassword(si.user.Username)
	s.log.Info("password changed", "user_id", si.user.ID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// forgetAdminPassword removes the first admin's one-time password file
// once that admin has chosen a password.
func (s *Server) forgetAdminPassword(user string) {
	f := s.cfg.AdminPasswordFile
	if f == "" {
		return
	}
	b, err := os.ReadFile(f) // #nosec G304 -- the hub's own <data>/admin-password
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if state.NormalizeUsername(first) == user {
		if err := os.Remove(f); err != nil {
			s.log.Warn("removing the one-time admin password file failed", "file", f, "err", err)
		}
	}
}
