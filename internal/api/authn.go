package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// principal is who makes a request: a token, its container and its flags.
type principal struct {
	TokenID   int64
	Container int64
	Perms     auth.Permission
	ExpiresAt *time.Time
}

type principalKey struct{}

func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p principal)

// handle registers a token-authenticated route that needs the given flags.
func (a *API) handle(m *http.ServeMux, pattern string, need auth.Permission, h handlerFunc) {
	a.routeList = append(a.routeList, Route{Pattern: pattern, Need: need})
	h = a.audit(pattern, h)
	m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		if !p.Perms.Has(need) {
			missing := need &^ p.Perms
			writeError(w, http.StatusForbidden, "the token lacks the permission "+missing.String())
			return
		}
		if !a.perToken.allow(strconv.FormatInt(p.TokenID, 10)) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too many requests with this token; slow down")
			return
		}
		// Tokens of one container share a budget too, so minting more
		// tokens does not buy more requests.
		if !a.perContainer.allow(strconv.FormatInt(p.Container, 10)) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too many requests for this container; slow down")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), p)
	})
}

// authenticate finds the request's token. Failed attempts are counted per
// client address; once an address has failed too often, its invalid tokens
// get 429 instead of 401, so tokens cannot be guessed at speed, while valid
// tokens from the same address (a NAT, a load balancer) keep working.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (principal, bool) {
	addr := clientAddr(r)
	fail := func(msg string) (principal, bool) {
		if !a.authFails.allow(addr) {
			w.Header().Set("Retry-After", "60")
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; wait a minute")
			return principal{}, false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="sonde"`)
		writeError(w, http.StatusUnauthorized, msg)
		return principal{}, false
	}
	tok, ok := tokenFromRequest(r)
	if !ok {
		return fail("missing Authorization: Bearer <token> header")
	}
	if !auth.WellFormed(tok.Reveal()) {
		return fail("the token is not valid")
	}
	now := a.now()
	// The token and every token that created it must be valid: revoking
	// a token revokes what it created.
	t, valid, err := a.st.AuthToken(r.Context(), auth.HashToken(tok), now)
	if errors.Is(err, state.ErrNotFound) {
		return fail("the token is not valid")
	}
	if err != nil {
		a.serverError(w, r, err)
		return principal{}, false
	}
	if !valid {
		return fail("the token is not valid (revoked or expired, or its creator was)")
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		// Recorded at most once a minute: a write per request would cost
		// more than the request.
		if err := a.st.TouchToken(r.Context(), t.ID, now); err != nil {
			a.logger.Warn("recording token use failed", "token_id", t.ID, "err", err)
		}
	}
	return principal{TokenID: t.ID, Container: t.ContainerID, Perms: auth.Permission(t.Permissions), ExpiresAt: t.ExpiresAt}, true
}

// container checks that container id is within the principal's scope. An
// id outside it is answered exactly like one that does not exist.
func (a *API) container(w http.ResponseWriter, r *http.Request, p principal, id int64) (state.Container, bool) {
	notFound := func() (state.Container, bool) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %d not found", id))
		return state.Container{}, false
	}
	in, err := a.st.Within(r.Context(), id, p.Container)
	if err != nil {
		a.serverError(w, r, err)
		return state.Container{}, false
	}
	if !in {
		return notFound()
	}
	c, err := a.st.Container(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		a.serverError(w, r, err)
		return state.Container{}, false
	}
	return c, true
}

// asset loads the asset named in the path and checks it is in scope.
func (a *API) asset(w http.ResponseWriter, r *http.Request, p principal) (state.Asset, bool) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return state.Asset{}, false
	}
	notFound := func() (state.Asset, bool) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("asset %d not found", id))
		return state.Asset{}, false
	}
	as, err := a.st.Asset(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		a.serverError(w, r, err)
		return state.Asset{}, false
	}
	in, err := a.st.Within(r.Context(), as.ContainerID, p.Container)
	if err != nil {
		a.serverError(w, r, err)
		return state.Asset{}, false
	}
	if !in {
		return notFound()
	}
	return as, true
}
