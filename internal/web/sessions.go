package web

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/sonde-monitoring/sonde/internal/state"
)

// sessionRow is one of the user's sessions as the page lists it.
type sessionRow struct {
	state.Session
	Current bool
	// Handle names the session in the form that ends it: derived from its
	// id hash, which itself is never shown (restricted data).
	Handle string
}

// sessionHandle derives a session's handle from its id hash.
func sessionHandle(idHash string) string {
	h := sha256.Sum256([]byte("sonde session handle\x00" + idHash))
	return hex.EncodeToString(h[:16])
}

// GET /sessions: the user's sessions, to end the ones not recognised.
func (s *Server) sessionsPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	ses, err := s.st.UserSessions(r.Context(), si.user.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	now := s.now()
	rows := make([]sessionRow, 0, len(ses))
	for _, se := range ses {
		if !now.Before(se.ExpiresAt) || now.Sub(se.LastSeenAt) >= IdleTimeout {
			continue // expired: gone at the next clean-up
		}
		rows = append(rows, sessionRow{Session: se, Current: se.IDHash == si.hash, Handle: sessionHandle(se.IDHash)})
	}
	s.render(w, r, http.StatusOK, "sessions", page{Title: "Your sessions", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Data: rows})
}

// POST /sessions/end: one session (field "session", its hash), or every
// other one ("others").
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	if r.PostFormValue("others") != "" {
		if err := s.st.DeleteUserSessions(r.Context(), si.user.ID, si.hash); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.log.Info("other sessions ended", "user_id", si.user.ID)
		http.Redirect(w, r, "/sessions", http.StatusSeeOther)
		return
	}
	handle := r.PostFormValue("session")
	ses, err := s.st.UserSessions(r.Context(), si.user.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	hash := ""
	for _, se := range ses {
		if equalTokens(sessionHandle(se.IDHash), handle) {
			hash = se.IDHash
		}
	}
	if hash == "" {
		s.notFound(w, r, si)
		return
	}
	ok, err := s.st.DeleteSessionOf(r.Context(), si.user.ID, hash)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		s.notFound(w, r, si)
		return
	}
	s.log.Info("session ended", "user_id", si.user.ID)
	if hash == si.hash {
		setCookie(w, SessionCookie, "", -1)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}
