package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/service"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// minInterval is the shortest check interval the hub accepts.
const minInterval = 5

// maxChecksPerAsset bounds the checks with results on one asset: check
// keys come from the agent, and each holds a stored result.
const maxChecksPerAsset = 500

// maxDepth bounds the container tree: every request walks it.
const maxDepth = 16

// GET /container/id: the token's own container.
func (a *API) containerID(w http.ResponseWriter, r *http.Request, p principal) {
	writeJSON(w, http.StatusOK, map[string]int64{"containerId": p.Container})
}

// POST /container/{cid}/asset {"name"} → 201 {"assetId"}.
func (a *API) createAsset(w http.ResponseWriter, r *http.Request, p principal) {
	cid, ok := pathID(w, r, "cid")
	if !ok {
		return
	}
	if _, ok := a.container(w, r, p, cid); !ok {
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &body, maxManagementBody, false) {
		return
	}
	if err := validName(body.Name); err != nil {
		writeError(w, http.StatusBadRequest, "asset "+err.Error())
		return
	}
	id, err := a.st.CreateAsset(r.Context(), cid, body.Name)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"assetId": id})
}

// collectorBody is the optional body of POST /asset/{id}/collector/{key}.
type collectorBody struct {
	Config json.RawMessage              `json:"config"`
	Checks map[string]state.CheckConfig `json:"checks"`
	// RunBy "hub" makes the collector a service check the hub runs
	// itself; "appliance" gives it back to the asset's appliance.
	RunBy *string `json:"runBy"`
}

// POST /asset/{id}/collector/{key}: put a collector on an asset, with an
// optional configuration. No body (what agents send) keeps the stored one.
func (a *API) addCollector(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	key := r.PathValue("key")
	if err := validKey(key); err != nil {
		writeError(w, http.StatusBadRequest, "collector key "+err.Error())
		return
	}
	var body collectorBody
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxManagementBody))
	if err != nil {
		writeBodyError(w, err)
		return
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if !p.Perms.Has(auth.CheckManagement) {
			writeError(w, http.StatusForbidden, "configuring checks needs the permission CHECK_MANAGEMENT")
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeBodyError(w, err)
			return
		}
		if dec.More() {
			writeError(w, http.StatusBadRequest, "the body holds more than one JSON value")
			return
		}
		if body.Config != nil {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(body.Config, &obj); err != nil || obj == nil {
				writeError(w, http.StatusBadRequest, "config must be a JSON object")
				return
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, body.Config); err != nil {
				writeError(w, http.StatusBadRequest, "config: "+err.Error())
				return
			}
			body.Config = compact.Bytes()
		}
		if body.RunBy != nil {
			switch *body.RunBy {
			case "appliance":
				*body.RunBy = ""
			case state.RunByHub:
				if !slices.Contains(service.Collectors(), key) {
					writeError(w, http.StatusBadRequest, fmt.Sprintf("the hub runs only the collectors %s itself, not %q", strings.Join(service.Collectors(), ", "), key))
					return
				}
				// The hub's checks go out from the hub: bounded, so that
				// no tenant turns it into a flood against a third party.
				n, err := a.st.CountServiceChecks(r.Context(), as.ContainerID)
				if err != nil {
					a.serverError(w, r, err)
					return
				}
				if n+len(body.Checks) > service.MaxPerContainer {
					writeError(w, http.StatusConflict, fmt.Sprintf("container %d has %d service checks; the hub runs at most %d per container", as.ContainerID, n, service.MaxPerContainer))
					return
				}
				for k, c := range body.Checks {
					if c.Interval < service.MinInterval {
						writeError(w, http.StatusBadRequest, fmt.Sprintf("checks.%s.interval: a service check runs at most every %d seconds", k, service.MinInterval))
						return
					}
				}
			default:
				writeError(w, http.StatusBadRequest, `runBy must be "hub" (a service check the hub runs) or "appliance"`)
				return
			}
		}
		for k, c := range body.Checks {
			if err := validKey(k); err != nil {
				writeError(w, http.StatusBadRequest, "check key "+err.Error())
				return
			}
			if c.Interval < minInterval || c.Interval > 86400 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("checks.%s.interval must be between %d and 86400 seconds, not %d", k, minInterval, c.Interval))
				return
			}
		}
	}
	if _, err := a.st.AddCollectorRunBy(r.Context(), as.ID, key, body.Config, body.Checks, body.RunBy); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.appliances.AssetChanged(as.ContainerID, as.ID)
	if a.services != nil {
		a.services.Changed()
	}
	w.WriteHeader(http.StatusNoContent)
}

// PATCH /asset/{id}/kind {"kind"}.
func (a *API) setKind(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	var body struct {
		Kind *string `json:"kind"`
	}
	if !readJSON(w, r, &body, maxManagementBody, false) {
		return
	}
	if body.Kind == nil {
		writeError(w, http.StatusBadRequest, "kind is required")
		return
	}
	if len(*body.Kind) > 64 {
		writeError(w, http.StatusBadRequest, "kind is longer than 64 bytes")
		return
	}
	if err := a.st.SetAssetKind(r.Context(), as.ID, *body.Kind); err != nil {
		a.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type disabledCheck struct {
	Collector string `json:"collector"`
	Check     string `json:"check"`
}

// GET /asset/{id}?fields=a,b&collectors=key,…: the whole asset, or only the
// fields asked (InfraSonar's agents ask fields=name,disabledChecks and
// collectors=key; the misspelt ?field= is accepted too).
func (a *API) getAsset(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	cols, err := a.st.Collectors(r.Context(), as.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	disabled := []disabledCheck{}
	for _, c := range cols {
		for k, cc := range c.Checks {
			if cc.Disabled {
				disabled = append(disabled, disabledCheck{c.Key, k})
			}
		}
	}
	sort.Slice(disabled, func(i, j int) bool {
		if disabled[i].Collector != disabled[j].Collector {
			return disabled[i].Collector < disabled[j].Collector
		}
		return disabled[i].Check < disabled[j].Check
	})
	collectorJSON := func(c state.Collector, fields map[string]bool) map[string]any {
		runBy := "appliance"
		if c.RunBy == state.RunByHub {
			runBy = state.RunByHub
		}
		all := map[string]any{"key": c.Key, "config": c.Config, "checks": c.Checks, "runBy": runBy}
		if fields == nil {
			return all
		}
		out := map[string]any{}
		for f := range fields {
			if v, ok := all[f]; ok {
				out[f] = v
			}
		}
		return out
	}
	q := r.URL.Query()
	fieldList := q.Get("fields")
	if fieldList == "" {
		fieldList = q.Get("field")
	}
	_, wantCollectors := q["collectors"]
	colFields := splitList(q.Get("collectors"))
	if len(colFields) == 0 {
		colFields = nil // all collector fields
	}
	collectors := make([]map[string]any, 0, len(cols))
	for _, c := range cols {
		collectors = append(collectors, collectorJSON(c, colFields))
	}
	all := map[string]any{
		"id": as.ID, "name": as.Name, "kind": as.Kind, "containerId": as.ContainerID,
		"disabledChecks": disabled, "collectors": collectors,
	}
	if fieldList == "" && !wantCollectors {
		writeJSON(w, http.StatusOK, all)
		return
	}
	out := map[string]any{}
	for f := range splitList(fieldList) {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	if wantCollectors {
		out["collectors"] = collectors
	}
	writeJSON(w, http.StatusOK, out)
}

func splitList(s string) map[string]bool {
	out := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out[f] = true
		}
	}
	return out
}

// POST /asset/{id}/collector/{key}/check/{check}: one check result.
func (a *API) postCheck(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	key, check := r.PathValue("key"), r.PathValue("check")
	for what, v := range map[string]string{"collector key": key, "check key": check} {
		if err := validKey(v); err != nil {
			writeError(w, http.StatusBadRequest, what+" "+err.Error())
			return
		}
	}
	// One round trip: the asset, the caller's scope, the collector and
	// the asset's checks.
	ct, err := a.st.CheckTargetOf(r.Context(), id, p.Container, key, check)
	if errors.Is(err, state.ErrNotFound) || (err == nil && !ct.Within) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("asset %d not found", id))
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	as := ct.Asset
	if !ct.HasCollector {
		writeError(w, http.StatusConflict, fmt.Sprintf("collector %q is not on asset %d; add it first with POST /api/v1/asset/%d/collector/%s", key, as.ID, as.ID, key))
		return
	}
	if !ct.Exists && ct.Checks >= maxChecksPerAsset {
		a.ingester.Rejected()
		writeError(w, http.StatusConflict, fmt.Sprintf("asset %d already has results of %d checks, the most one asset may have; delete the asset or use fewer check names", as.ID, ct.Checks))
		return
	}
	// Bound the results decoded at once: decoded, a result takes many
	// times its size in memory.
	select {
	case a.ingestSlots <- struct{}{}:
		defer func() { <-a.ingestSlots }()
	case <-r.Context().Done():
		return
	}
	t := ingest.Target{ContainerID: as.ContainerID, AssetID: as.ID, AssetName: as.Name, Collector: key, Check: check}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		a.ingester.Rejected()
		writeBodyError(w, err)
		return
	}
	cd, err := model.DecodeCheckData(bytes.NewReader(body), model.Limits{})
	if err != nil {
		a.ingester.RejectedData(r.Context(), t, err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.ingester.Ingest(r.Context(), t, cd); err != nil {
		switch {
		case errors.Is(err, model.ErrInvalid), errors.Is(err, tsstore.ErrOutOfRange):
			writeError(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, ingest.ErrQuota):
			writeError(w, http.StatusTooManyRequests, err.Error()+"; fewer item or metric names, or ask the operator for a larger quota")
		case errors.Is(err, tsstore.ErrConflict):
			writeError(w, http.StatusConflict, fmt.Sprintf("a different result of %s/%s on asset %d for timestamp %d is already stored: %v", key, check, as.ID, cd.Timestamp, err))
		default:
			a.serverError(w, r, err)
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type checkErrorJSON struct {
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

type resultJSON struct {
	AssetID    int64           `json:"assetId"`
	Collector  string          `json:"collector"`
	Check      string          `json:"check"`
	Timestamp  int64           `json:"timestamp"`
	ReceivedAt time.Time       `json:"receivedAt"`
	ChangedAt  time.Time       `json:"changedAt"`
	LastSeenAt *time.Time      `json:"lastSeenAt"`
	Data       json.RawMessage `json:"data"`
	Error      *checkErrorJSON `json:"error"`
	Runtime    float64         `json:"runtime"`
	Version    string          `json:"version,omitempty"`
}

// GET /asset/{id}/collector/{key}/check/{check}: the latest result.
func (a *API) getCheck(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	key, check := r.PathValue("key"), r.PathValue("check")
	res, err := a.st.LatestResult(r.Context(), as.ID, key, check)
	if errors.Is(err, state.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no result of %s/%s on asset %d yet", key, check, as.ID))
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := resultJSON{
		AssetID: as.ID, Collector: key, Check: check, Timestamp: res.Timestamp,
		ReceivedAt: res.ReceivedAt, ChangedAt: res.ChangedAt, LastSeenAt: res.LastSeenAt,
		Data: res.Data, Runtime: res.Duration, Version: res.Version,
	}
	if out.Data == nil {
		out.Data = json.RawMessage("null")
	}
	if res.ErrorMessage != "" {
		sev := model.SeverityMedium
		if res.ErrorSeverity != nil {
			sev = model.Severity(*res.ErrorSeverity)
		}
		out.Error = &checkErrorJSON{Message: res.ErrorMessage, Severity: sev.String()}
	}
	writeJSON(w, http.StatusOK, out)
}

// DELETE /asset/{id}.
func (a *API) deleteAsset(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	if err := a.st.DeleteAsset(r.Context(), as.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.appliances.AssetChanged(as.ContainerID, as.ID)
	a.alerts.AssetDeleted(as.ID)
	// Its time series go with it: nothing may stay labelled with an id
	// that no longer names the asset.
	m := labels.MustNewMatcher(labels.MatchEqual, tsstore.LabelAssetID, strconv.FormatInt(as.ID, 10))
	scope := tsstore.Scope{ContainerIDs: []string{strconv.FormatInt(as.ContainerID, 10)}}
	if err := a.series.Delete(r.Context(), scope, time.Unix(0, 0), a.now().Add(24*time.Hour), m); err != nil {
		a.logger.Error("deleting the time series of a deleted asset failed", "asset_id", as.ID, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// POST /container/{id}/container {"name"} → 201 {"containerId"}.
func (a *API) createContainer(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, ok := a.container(w, r, p, id); !ok {
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &body, maxManagementBody, true) {
		return
	}
	if err := validName(body.Name); err != nil {
		writeError(w, http.StatusBadRequest, "container "+err.Error())
		return
	}
	depth, err := a.st.Depth(r.Context(), id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if depth+1 > maxDepth {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("containers nest at most %d levels deep", maxDepth))
		return
	}
	cid, err := a.st.CreateContainer(r.Context(), id, body.Name)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"containerId": cid})
}

type containerJSON struct {
	ID        int64           `json:"id"`
	Name      string          `json:"name"`
	ParentID  *int64          `json:"parentId"`
	CreatedAt time.Time       `json:"createdAt"`
	Children  []containerJSON `json:"children,omitempty"`
}

// GET /container/{id}: the container and its direct children. The parent
// is shown only when it is within the token's scope.
func (a *API) getContainer(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	c, ok := a.container(w, r, p, id)
	if !ok {
		return
	}
	kids, err := a.st.Children(r.Context(), id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := containerJSON{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt, Children: []containerJSON{}}
	if c.ID != p.Container {
		out.ParentID = c.ParentID
	}
	for _, k := range kids {
		out.Children = append(out.Children, containerJSON{ID: k.ID, Name: k.Name, ParentID: k.ParentID, CreatedAt: k.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /container/{id}/assets.
func (a *API) listAssets(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, ok := a.container(w, r, p, id); !ok {
		return
	}
	assets, err := a.st.Assets(r.Context(), id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	type assetJSON struct {
		ID          int64     `json:"id"`
		Name        string    `json:"name"`
		Kind        string    `json:"kind"`
		ContainerID int64     `json:"containerId"`
		CreatedAt   time.Time `json:"createdAt"`
	}
	out := make([]assetJSON, 0, len(assets))
	for _, as := range assets {
		out = append(out, assetJSON{as.ID, as.Name, as.Kind, as.ContainerID, as.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// POST /container/{id}/token {"name","permissions":[…],"expiresAt"?} → 201
// {"tokenId","token"}: the token is shown this once.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, ok := a.container(w, r, p, id); !ok {
		return
	}
	var body struct {
		Name        string     `json:"name"`
		Permissions []string   `json:"permissions"`
		ExpiresAt   *time.Time `json:"expiresAt"`
	}
	if !readJSON(w, r, &body, maxManagementBody, true) {
		return
	}
	if err := validName(body.Name); err != nil {
		writeError(w, http.StatusBadRequest, "token "+err.Error())
		return
	}
	perms, err := auth.ParsePermissions(body.Permissions)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if perms == 0 {
		writeError(w, http.StatusBadRequest, "permissions must name at least one flag")
		return
	}
	if extra := perms &^ p.Perms; extra != 0 {
		writeError(w, http.StatusForbidden, "cannot grant permissions this token does not hold: "+extra.String())
		return
	}
	if body.ExpiresAt != nil && !body.ExpiresAt.After(a.now()) {
		writeError(w, http.StatusBadRequest, "expiresAt is in the past")
		return
	}
	if p.ExpiresAt != nil && (body.ExpiresAt == nil || body.ExpiresAt.After(*p.ExpiresAt)) {
		writeError(w, http.StatusForbidden, "a token cannot outlive the token that creates it: give expiresAt no later than "+p.ExpiresAt.Format(time.RFC3339))
		return
	}
	tok, err := auth.NewToken()
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	creator := p.TokenID
	tid, err := a.st.CreateToken(r.Context(), state.Token{
		ContainerID: id, Name: body.Name, Hash: auth.HashToken(tok), Permissions: uint64(perms),
		CreatedBy: &creator, ExpiresAt: body.ExpiresAt,
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.logger.Info("token created", "token_id", tid, "container_id", id, "permissions", perms.String(), "by_token_id", p.TokenID)
	writeJSON(w, http.StatusCreated, struct {
		TokenID int64  `json:"tokenId"`
		Token   string `json:"token"`
	}{tid, tok.Reveal()})
}

// GET /container/{id}/tokens: the container's tokens, never their values.
func (a *API) listTokens(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, ok := a.container(w, r, p, id); !ok {
		return
	}
	toks, err := a.st.Tokens(r.Context(), id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	type tokenJSON struct {
		TokenID     int64      `json:"tokenId"`
		Name        string     `json:"name"`
		ContainerID int64      `json:"containerId"`
		Permissions []string   `json:"permissions"`
		CreatedBy   *int64     `json:"createdBy"`
		CreatedAt   time.Time  `json:"createdAt"`
		ExpiresAt   *time.Time `json:"expiresAt"`
		LastUsedAt  *time.Time `json:"lastUsedAt"`
		RevokedAt   *time.Time `json:"revokedAt"`
	}
	out := make([]tokenJSON, 0, len(toks))
	for _, t := range toks {
		out = append(out, tokenJSON{t.ID, t.Name, t.ContainerID, auth.Permission(t.Permissions).Names(), t.CreatedBy, t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// DELETE /token/{tokenId}: revoke a token of a container in scope.
func (a *API) deleteToken(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "tokenId")
	if !ok {
		return
	}
	notFound := func() { writeError(w, http.StatusNotFound, fmt.Sprintf("token %d not found", id)) }
	t, err := a.st.Token(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		notFound()
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	in, err := a.st.Within(r.Context(), t.ContainerID, p.Container)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !in || t.RevokedAt != nil {
		notFound()
		return
	}
	if extra := auth.Permission(t.Permissions) &^ p.Perms; extra != 0 {
		writeError(w, http.StatusForbidden, "cannot revoke a token that holds permissions this token does not: "+extra.String())
		return
	}
	chain, err := a.st.CreatorChain(r.Context(), p.TokenID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if slices.Contains(chain, id) {
		writeError(w, http.StatusForbidden, "a token cannot revoke a token that created it")
		return
	}
	if err := a.st.RevokeToken(r.Context(), id, a.now()); err != nil {
		if errors.Is(err, state.ErrNotFound) {
			notFound()
			return
		}
		a.serverError(w, r, err)
		return
	}
	a.logger.Info("token revoked", "token_id", id, "by_token_id", p.TokenID)
	w.WriteHeader(http.StatusNoContent)
}
