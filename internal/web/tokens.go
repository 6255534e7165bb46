package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// tokenRow is a token as the page lists it: never its value.
type tokenRow struct {
	state.Token
	Container string
	Perms     string
}

type tokensData struct {
	Containers []state.TreeNode // where the user may manage tokens
	Tokens     []tokenRow
	Flags      []string
	// New is the token just created: shown once, here only.
	New     string
	NewName string
	// Errors are the form's errors by field (container, name,
	// permissions, days), shown beside the fields; Form keeps the input.
	Errors fieldErrors
	Form   tokenForm
}

// tokenForm is what the user typed into the token form.
type tokenForm struct {
	Container string
	Name      string
	Days      string
	Perms     map[string]bool
}

// tokenContainers lists the containers where the user may manage tokens
// (CONTAINER_TOKENS), with the user's permissions there.
func (s *Server) tokenContainers(r *http.Request, si sessionInfo) ([]state.TreeNode, map[int64]auth.Permission, error) {
	tree, perms, err := s.visible(r, si)
	if err != nil {
		return nil, nil, err
	}
	var out []state.TreeNode
	for _, n := range tree {
		if perms[n.ID].Has(auth.ContainerTokens) {
			out = append(out, n)
		}
	}
	return out, perms, nil
}

// GET /tokens: the API tokens of the containers where the user manages
// them, and a form to make one.
func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	s.showTokens(w, r, si, http.StatusOK, "", "", "")
}

func (s *Server) showTokens(w http.ResponseWriter, r *http.Request, si sessionInfo, code int, msg, newTok, newName string) {
	s.showTokensForm(w, r, si, code, msg, newTok, newName, nil, tokenForm{Days: "365"})
}

func (s *Server) showTokensForm(w http.ResponseWriter, r *http.Request, si sessionInfo, code int, msg, newTok, newName string, errs fieldErrors, f tokenForm) {
	conts, _, err := s.tokenContainers(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d := tokensData{Containers: conts, Flags: auth.All.Names(), New: newTok, NewName: newName, Errors: errs, Form: f}
	for _, c := range conts {
		ts, err := s.st.Tokens(r.Context(), c.ID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		for _, t := range ts {
			if t.RevokedAt != nil {
				continue
			}
			d.Tokens = append(d.Tokens, tokenRow{Token: t, Container: c.Name, Perms: auth.Permission(t.Permissions).String()})
		}
	}
	p := page{Title: "API tokens", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Error: msg, Data: d}
	if newTok != "" {
		p.Notice = "Copy the token now: the hub keeps only its hash and shows it never again."
	}
	s.render(w, r, code, "tokens", p)
}

// POST /tokens: name, container, permission flags, days to live.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	_, perms, err := s.tokenContainers(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	form := tokenForm{Container: r.PostFormValue("container"), Name: r.PostFormValue("name"), Days: r.PostFormValue("days"), Perms: map[string]bool{}}
	for _, p := range r.PostForm["permissions"] {
		form.Perms[p] = true
	}
	fail := func(field, msg string) {
		s.showTokensForm(w, r, si, http.StatusBadRequest, "", "", "", fieldErrors{field: msg}, form)
	}
	container, err := strconv.ParseInt(r.PostFormValue("container"), 10, 64)
	mine := perms[container]
	if err != nil || !mine.Has(auth.ContainerTokens) {
		fail("container", "Choose a container where you may manage tokens.")
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || len(name) > 200 || strings.ContainsAny(name, "\r\n\x00") {
		fail("name", "The name must be 1 to 200 characters on one line.")
		return
	}
	flags, err := auth.ParsePermissions(r.PostForm["permissions"])
	if err != nil || flags == 0 {
		fail("permissions", "Tick at least one permission.")
		return
	}
	if extra := flags &^ mine; extra != 0 {
		fail("permissions", "You cannot give permissions you do not hold there: "+extra.String()+".")
		return
	}
	var expires *time.Time
	if d := r.PostFormValue("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 3650 {
			fail("days", "Days must be a whole number from 1 to 3650, or empty for a token that does not expire.")
			return
		}
		t := s.now().Add(time.Duration(n) * 24 * time.Hour)
		expires = &t
	}
	tok, err := auth.NewToken()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	id, err := s.st.CreateToken(r.Context(), state.Token{ContainerID: container, Name: name, Hash: auth.HashToken(tok),
		Permissions: uint64(flags), ExpiresAt: expires})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	audit.SetObject(r.Context(), "token", id)
	s.log.Info("token created", "token_id", id, "container_id", container, "permissions", flags.String(), "by_user_id", si.user.ID)
	s.showTokens(w, r, si, http.StatusCreated, "", tok.Reveal(), name)
}

// POST /token/{id}/revoke.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r, si)
		return
	}
	t, err := s.st.Token(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) || (err == nil && t.RevokedAt != nil) {
		s.notFound(w, r, si)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	_, perms, err := s.tokenContainers(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	mine := perms[t.ContainerID]
	if !mine.Has(auth.ContainerTokens) {
		s.notFound(w, r, si)
		return
	}
	if extra := auth.Permission(t.Permissions) &^ mine; extra != 0 {
		s.showTokens(w, r, si, http.StatusForbidden, fmt.Sprintf("You cannot revoke a token that holds permissions you do not: %s.", extra), "", "")
		return
	}
	if err := s.st.RevokeToken(r.Context(), id, s.now()); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("token revoked", "token_id", id, "by_user_id", si.user.ID)
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}
