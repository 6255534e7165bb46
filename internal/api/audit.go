package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// notAudited are the mutating routes that record data, not changes: an
// agent's check results arrive every minute and are in the time series.
// Every other POST, PUT, PATCH and DELETE is in the audit log.
func notAudited() map[string]string {
	return map[string]string{
		"POST /api/v1/asset/{id}/collector/{key}/check/{check}": "check results are data, not changes",
	}
}

func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// Audited reports whether a route's successful calls are written to the
// audit log.
func Audited(pattern string) bool {
	method, _, _ := strings.Cut(pattern, " ")
	_, skip := notAudited()[pattern]
	return mutating(method) && !skip
}

// auditWriter keeps the status and, for a 201, the start of the body (the
// created object's id).
type auditWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (w *auditWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.code == http.StatusCreated && w.body.Len() < 4096 {
		w.body.Write(b[:min(len(b), 4096-w.body.Len())])
	}
	return w.ResponseWriter.Write(b)
}

// audit runs h for a mutating route and records the change once it
// succeeded: the token, the route, the object (from the path, or the id a
// 201 answer names), the container it is in, the address and the reason.
func (a *API) audit(pattern string, h handlerFunc) handlerFunc {
	if !Audited(pattern) {
		return h
	}
	kind, param := audit.Object(pattern, "/api/v1/")
	return func(w http.ResponseWriter, r *http.Request, p principal) {
		e := audit.Entry{ActorKind: audit.ActorToken, ActorID: p.TokenID, Action: pattern, Address: clientAddr(r), ContainerID: p.Container}
		if kind != "" {
			id, err := strconv.ParseInt(r.PathValue(param), 10, 64)
			if err == nil {
				e.ObjectKind, e.ObjectID = kind, id
				c, err := a.st.ContainerOf(r.Context(), kind, id)
				switch {
				case err == nil:
					e.ContainerID = c
				case !errors.Is(err, state.ErrNotFound):
					a.serverError(w, r, err)
					return
				}
			}
		}
		pending := audit.NewPending(e)
		aw := &auditWriter{ResponseWriter: w}
		h(aw, r.WithContext(audit.With(r.Context(), pending)), p)
		if aw.code == 0 {
			aw.code = http.StatusOK
		}
		if aw.code >= 400 {
			return
		}
		e = pending.Entry()
		e.At, e.Status = a.now(), aw.code
		if aw.code == http.StatusCreated {
			if k, id, ok := createdID(aw.body.Bytes()); ok {
				e.Detail = fmt.Sprintf("in %s %d", e.ObjectKind, e.ObjectID)
				e.ObjectKind, e.ObjectID = k, id
			}
		}
		// The change is made: a failure to record it is logged loudly but
		// does not turn the answer into an error.
		if err := a.st.AppendAudit(r.Context(), e); err != nil {
			a.logger.Error("writing the audit log failed", "action", e.Action, "object_kind", e.ObjectKind, "object_id", e.ObjectID, "err", err)
		}
	}
}

// createdID finds the id a 201 answer names: a top-level "<kind>Id"
// number ({"conditionId": 5} → "condition", 5).
func createdID(body []byte) (string, int64, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "", 0, false
	}
	for k, v := range m {
		kind, ok := strings.CutSuffix(k, "Id")
		if !ok || kind == "" {
			continue
		}
		var id int64
		if json.Unmarshal(v, &id) == nil && id > 0 {
			return kind, id, true
		}
	}
	return "", 0, false
}

// GET /api/v1/container/{id}/log?since=&until=&actorKind=&actorId=&action=&objectKind=&objectId=&before=&limit=
// (VIEW_LOG): the audit log of the container and the containers below it,
// newest first.
func (a *API) auditLog(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	ids, err := a.st.Subtree(r.Context(), c.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if c.ID == a.rootID {
		// What happened outside any container (logins, account changes).
		ids = append(ids, 0)
	}
	q := r.URL.Query()
	f := state.AuditFilter{Containers: ids, ActorKind: q.Get("actorKind"), Action: q.Get("action"), ObjectKind: q.Get("objectKind")}
	for _, n := range []struct {
		name string
		to   *int64
	}{{"actorId", &f.ActorID}, {"objectId", &f.ObjectID}, {"before", &f.Before}} {
		if v := q.Get(n.name); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id < 0 {
				writeError(w, http.StatusBadRequest, n.name+" must be a positive whole number")
				return
			}
			*n.to = id
		}
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, t.name+" must be a time like 2026-11-26T08:00:00Z")
				return
			}
			*t.to = at
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be 1 to 1000")
			return
		}
		f.Limit = n
	}
	entries, err := a.st.AuditLog(r.Context(), f)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	writeJSON(w, http.StatusOK, entries)
}
