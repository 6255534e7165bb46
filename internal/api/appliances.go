package api

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/stream"
)

// Appliances is the hub's end of the appliance streams as the API sees it.
type Appliances interface {
	// AssetChanged says that the configuration of an asset in container
	// changed, or that the asset went away: the appliance serving it gets
	// the change.
	AssetChanged(container, asset int64)
	// Revoked disconnects a revoked appliance.
	Revoked(appliance int64)
	// ApplianceChanged says that an appliance's record (its zone) changed.
	ApplianceChanged(appliance int64)
	// Live reports on a connected appliance; ok is false when it is not
	// connected to this hub.
	Live(appliance int64) (live stream.Live, ok bool)
}

// Services is the hub's runner of service checks.
type Services interface {
	// Changed says that the service checks may have changed.
	Changed()
}

// noAppliances stands in when the hub serves no appliance stream.
type noAppliances struct{}

func (noAppliances) AssetChanged(int64, int64)           {}
func (noAppliances) Revoked(int64)                       {}
func (noAppliances) ApplianceChanged(int64)              {}
func (noAppliances) Live(int64) (l stream.Live, ok bool) { return l, false }

type applianceJSON struct {
	ID             int64              `json:"id"`
	Name           string             `json:"name"`
	Zone           int                `json:"zone"`
	Connected      bool               `json:"connected"`
	Version        string             `json:"version,omitempty"`
	ConnectedSince *time.Time         `json:"connectedSince,omitempty"`
	RemoteAddress  string             `json:"remoteAddress,omitempty"`
	LastData       *time.Time         `json:"lastData,omitempty"`
	Buffered       int64              `json:"buffered"`
	Dropped        int64              `json:"dropped"`
	Probes         []stream.ProbeInfo `json:"probes"`
	MissingProbes  []string           `json:"missingProbes,omitempty"`
	ClockSkew      float64            `json:"clockSkewSeconds"`
	Assets         int                `json:"assets"`
	CreatedAt      time.Time          `json:"createdAt"`
	LastSeenAt     *time.Time         `json:"lastSeenAt,omitempty"`
	CertNotAfter   *time.Time         `json:"certificateNotAfter,omitempty"`
	RevokedAt      *time.Time         `json:"revokedAt,omitempty"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// GET /container/{id}/appliances → the container's appliances, connected
// or not, with what the connected ones report.
func (a *API) listAppliances(w http.ResponseWriter, r *http.Request, p principal) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, ok := a.container(w, r, p, id); !ok {
		return
	}
	list, err := a.st.Appliances(r.Context(), id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := make([]applianceJSON, 0, len(list))
	for _, ap := range list {
		j := applianceJSON{
			ID: ap.ID, Name: ap.Name, Zone: ap.Zone, Probes: []stream.ProbeInfo{},
			CreatedAt: ap.CreatedAt.UTC(), LastSeenAt: utcPtr(ap.LastSeenAt),
			CertNotAfter: utcPtr(ap.CertNotAfter), RevokedAt: utcPtr(ap.RevokedAt),
		}
		if live, ok := a.appliances.Live(ap.ID); ok {
			since := live.ConnectedSince.UTC()
			j.Connected, j.ConnectedSince, j.RemoteAddress, j.Version = true, &since, live.RemoteAddr, live.Version
			if !live.LastData.IsZero() {
				ld := live.LastData.UTC()
				j.LastData = &ld
			}
			j.Buffered, j.Dropped, j.MissingProbes = live.Buffered, live.Dropped, live.Missing
			j.ClockSkew, j.Assets = live.ClockSkew.Seconds(), live.Assets
			if live.Probes != nil {
				j.Probes = append([]stream.ProbeInfo(nil), live.Probes...)
				sort.Slice(j.Probes, func(x, y int) bool { return j.Probes[x].Key < j.Probes[y].Key })
			}
		} else if ap.ConnectedAt(a.now()) {
			// Connected to another hub: what it recorded.
			j.Connected, j.Dropped, j.MissingProbes = true, ap.BufferDropped, ap.MissingProbes
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// appliance loads the appliance named in the path and checks it is in
// scope.
func (a *API) appliance(w http.ResponseWriter, r *http.Request, p principal) (state.Appliance, bool) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return state.Appliance{}, false
	}
	ap, err := a.st.ApplianceByID(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		writeError(w, http.StatusNotFound, "appliance not found")
		return ap, false
	}
	if err != nil {
		a.serverError(w, r, err)
		return ap, false
	}
	in, err := a.st.Within(r.Context(), ap.ContainerID, p.Container)
	if err != nil {
		a.serverError(w, r, err)
		return ap, false
	}
	if !in {
		writeError(w, http.StatusNotFound, "appliance not found")
		return ap, false
	}
	return ap, true
}

// DELETE /appliance/{id}[?revokeToken=true] revokes an appliance: its
// certificate is refused from now on and its stream is closed. With
// revokeToken the token it enrolled with is revoked too, so that it cannot
// enroll again (other appliances enrolled with that token keep their
// certificates).
func (a *API) revokeAppliance(w http.ResponseWriter, r *http.Request, p principal) {
	ap, ok := a.appliance(w, r, p)
	if !ok {
		return
	}
	revokeToken := r.URL.Query().Get("revokeToken")
	if revokeToken != "" && revokeToken != "true" && revokeToken != "false" {
		writeError(w, http.StatusBadRequest, "revokeToken must be true or false")
		return
	}
	if ap.RevokedAt == nil {
		if err := a.st.RevokeAppliance(r.Context(), ap.ID, a.now()); err != nil && !errors.Is(err, state.ErrNotFound) {
			a.serverError(w, r, err)
			return
		}
	}
	a.appliances.Revoked(ap.ID)
	if revokeToken == "true" && ap.TokenID != nil {
		if !p.Perms.Has(auth.ContainerTokens) {
			writeError(w, http.StatusForbidden, "revoking the token needs the permission CONTAINER_TOKENS (the appliance is revoked)")
			return
		}
		if err := a.st.RevokeToken(r.Context(), *ap.TokenID, a.now()); err != nil && !errors.Is(err, state.ErrNotFound) {
			a.serverError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// PATCH /appliance/{id}/zone {"zone": 0–9}: which assets it serves. An
// enrolled appliance cannot choose its zone itself.
func (a *API) setApplianceZone(w http.ResponseWriter, r *http.Request, p principal) {
	ap, ok := a.appliance(w, r, p)
	if !ok {
		return
	}
	var body struct {
		Zone *int `json:"zone"`
	}
	if !readJSON(w, r, &body, maxManagementBody, false) {
		return
	}
	if body.Zone == nil || *body.Zone < 0 || *body.Zone > 9 {
		writeError(w, http.StatusBadRequest, "zone is required: a number from 0 to 9")
		return
	}
	if err := a.st.SetApplianceZone(r.Context(), ap.ID, *body.Zone); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.appliances.ApplianceChanged(ap.ID)
	w.WriteHeader(http.StatusNoContent)
}

// PATCH /asset/{id}/zone {"zone": 0–9}: which appliances may serve it.
func (a *API) setZone(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	var body struct {
		Zone *int `json:"zone"`
	}
	if !readJSON(w, r, &body, maxManagementBody, false) {
		return
	}
	if body.Zone == nil || *body.Zone < 0 || *body.Zone > 9 {
		writeError(w, http.StatusBadRequest, "zone is required: a number from 0 to 9")
		return
	}
	if err := a.st.SetAssetZone(r.Context(), as.ID, *body.Zone); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.appliances.AssetChanged(as.ContainerID, as.ID)
	w.WriteHeader(http.StatusNoContent)
}
