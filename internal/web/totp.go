package web

import (
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/qr"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/totp"
)

// totpRequired reports whether a container the user sees requires a
// second factor.
func (s *Server) totpRequired(r *http.Request, si sessionInfo) (bool, error) {
	tree, perms, err := s.visible(r, si)
	if err != nil {
		return false, err
	}
	for _, n := range tree {
		if _, ok := perms[n.ID]; ok && n.RequireTOTP {
			return true, nil
		}
	}
	return false, nil
}

// secondFactorSession is the session of a login that passed the password
// and awaits the second factor.
func (s *Server) secondFactorSession(r *http.Request) (sessionInfo, bool) {
	si, ok := s.currentSession(r)
	if !ok || si.session.Stage != stagePassword || si.user.TOTPSecret.IsZero() {
		return sessionInfo{}, false
	}
	return si, true
}

// GET /login/totp: the second step of a login.
func (s *Server) secondFactorPage(w http.ResponseWriter, r *http.Request) {
	si, ok := s.secondFactorSession(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "totp-login", page{Title: "Second factor", CSRF: si.session.CSRF})
}

// POST /login/totp: a code of the authenticator, or a recovery code.
func (s *Server) secondFactor(w http.ResponseWriter, r *http.Request) {
	si, ok := s.secondFactorSession(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !equalTokens(si.session.CSRF, r.PostFormValue("csrf")) {
		s.render(w, r, http.StatusForbidden, "totp-login", page{Title: "Second factor", CSRF: si.session.CSRF,
			Error: "The form expired; enter the code again."})
		return
	}
	keys := throttleKeys(si.user.Username, r)
	// One check at a time, the lock read with the slot held, as for the
	// password: guesses sent at once cannot all pass the lock.
	release, got := s.passwordSlot(w, r)
	if !got {
		return
	}
	defer release()
	now := s.now()
	if until := s.throttle.locked(now, keys...); !until.IsZero() {
		s.tooMany(w, r, until.Sub(now))
		return
	}
	code := strings.TrimSpace(r.PostFormValue("totp"))
	ok, err := s.checkSecondFactor(r, si.user, code)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		until := s.throttle.fail(now, keys...)
		s.log.Info("failed second factor", "user_id", si.user.ID, "remote", clientIP(r))
		if !until.IsZero() {
			s.tooMany(w, r, until.Sub(now))
			return
		}
		s.render(w, r, http.StatusUnauthorized, "totp-login", page{Title: "Second factor", CSRF: si.session.CSRF,
			Error: "Wrong code. Enter the current code of your authenticator app, or one of your recovery codes."})
		return
	}
	s.throttle.succeed(keys...)
	// A new session for the full login: the half-way one is worth nothing.
	if err := s.st.DeleteSession(r.Context(), si.hash); err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.startSession(w, r, si.user, stageFull); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("login", "user_id", si.user.ID, "remote", clientIP(r), "stage", stageFull)
	to := "/"
	if si.user.MustChange {
		to = "/password"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// checkSecondFactor accepts a current TOTP code (once: a code's step is
// recorded) or an unused recovery code (used up).
func (s *Server) checkSecondFactor(r *http.Request, u state.User, code string) (bool, error) {
	if code == "" || len(code) > 64 {
		return false, nil
	}
	if step, ok := totp.Verify(u.TOTPSecret, code, s.now(), u.TOTPLastStep); ok {
		return s.st.UseTOTPStep(r.Context(), u.ID, step)
	}
	hashes, err := s.st.RecoveryCodes(r.Context(), u.ID)
	if err != nil {
		return false, err
	}
	if i, ok := totp.VerifyRecoveryCode(code, hashes); ok {
		used, err := s.st.UseRecoveryCode(r.Context(), u.ID, hashes[i])
		if used {
			s.log.Info("a recovery code was used", "user_id", u.ID, "left", len(hashes)-1)
		}
		return used, err
	}
	return false, nil
}

// totpData is what the second factor's page shows.
type totpData struct {
	Enabled  bool
	Required bool
	Secret   string
	QR       template.HTML
	Recovery []string
}

// GET /totp: the second factor's setup, or its state.
func (s *Server) totpPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	required, err := s.totpRequired(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	p := page{Title: "Second factor", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user)}
	if !si.user.TOTPSecret.IsZero() {
		p.Data = totpData{Enabled: true, Required: required}
		s.render(w, r, http.StatusOK, "totp", p)
		return
	}
	if required {
		p.Notice = "An organisation you belong to requires a second factor: set one up to go on."
	}
	sec, err := totp.GenerateSecret()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.showSetup(w, r, http.StatusOK, p, sec, required)
}

func (s *Server) showSetup(w http.ResponseWriter, r *http.Request, code int, p page, sec secret.Secret, required bool) {
	uri := totp.URI(sec, "Sonde", p.User)
	q, err := qr.Encode([]byte(uri), qr.M)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	p.Data = totpData{Required: required, Secret: sec.Reveal(), QR: template.HTML(q.SVG(4))} // #nosec G203 -- SVG made by internal/qr: rectangles and a path, no text from anyone
	s.render(w, r, code, "totp", p)
}

// POST /totp: the secret shown and a code from the authenticator that
// proves it was scanned; then the recovery codes, shown once.
func (s *Server) totpSetup(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	p := page{Title: "Second factor", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user)}
	if !si.user.TOTPSecret.IsZero() {
		http.Redirect(w, r, "/totp", http.StatusSeeOther)
		return
	}
	sec := secret.New(strings.TrimSpace(r.PostFormValue("secret")))
	if len(sec.Reveal()) != 32 {
		p.Error = "The setup form was damaged; start again."
		s.render(w, r, http.StatusBadRequest, "notfound", p)
		return
	}
	required, err := s.totpRequired(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	// The password too: a session left open must not be enough to put
	// someone else's authenticator on the account.
	pwOK, answered := s.verifyCurrent(w, r, si.user, secret.New(r.PostFormValue("password")))
	if answered {
		return
	}
	if !pwOK {
		p.Error = "The password is wrong."
		s.showSetup(w, r, http.StatusBadRequest, p, sec, required)
		return
	}
	step, ok := totp.Verify(sec, r.PostFormValue("totp"), s.now(), 0)
	if !ok {
		p.Error = "That code does not match. Scan the code again, or type the key in, and enter the code your app shows now."
		s.showSetup(w, r, http.StatusBadRequest, p, sec, required)
		return
	}
	codes, err := totp.NewRecoveryCodes(totp.RecoveryCodeCount)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	hashes := make([]string, len(codes))
	for i, c := range codes {
		if hashes[i], err = totp.HashRecoveryCode(c); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	if err := s.st.SetTOTP(r.Context(), si.user.ID, sec, step, hashes, s.now()); err != nil {
		s.serverError(w, r, err)
		return
	}
	// Other sessions end: they logged in without the second factor.
	if err := s.st.DeleteUserSessions(r.Context(), si.user.ID, si.hash); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("second factor set up", "user_id", si.user.ID)
	p.Notice = "Your second factor is set up. Keep these recovery codes somewhere safe: each logs you in once if you lose your authenticator, and they are not shown again."
	p.Data = totpData{Enabled: true, Required: required, Recovery: codes}
	s.render(w, r, http.StatusOK, "totp", p)
}

// POST /totp/remove: with the password, unless a container requires it.
func (s *Server) totpRemove(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	p := page{Title: "Second factor", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user)}
	required, err := s.totpRequired(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if required {
		p.Error = "An organisation you belong to requires a second factor: it cannot be removed."
		p.Data = totpData{Enabled: true, Required: true}
		s.render(w, r, http.StatusForbidden, "totp", p)
		return
	}
	ok, answered := s.verifyCurrent(w, r, si.user, secret.New(r.PostFormValue("password")))
	if answered {
		return
	}
	if !ok {
		p.Error = "The password is wrong."
		p.Data = totpData{Enabled: true}
		s.render(w, r, http.StatusBadRequest, "totp", p)
		return
	}
	if err := s.st.SetTOTP(r.Context(), si.user.ID, secret.Secret{}, 0, nil, s.now()); err != nil {
		s.serverError(w, r, errors.Join(errors.New("removing a second factor"), err))
		return
	}
	s.log.Info("second factor removed", "user_id", si.user.ID)
	http.Redirect(w, r, "/totp", http.StatusSeeOther)
}
