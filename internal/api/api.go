// Package api is the hub's HTTPS front door: the REST API at /api/v1 (the
// InfraSonar agent calls, byte-compatible, and Sonde's management calls),
// the Prometheus read API at /prometheus/api/v1, /metrics and /healthz.
// Every handler is scoped by container: a token acts on its container and
// everything below it, and an object outside that scope is "not found".
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/promapi"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// MaxBody is the largest request body accepted (InfraSonar collectors cap
// check data at 500 KB).
const MaxBody = 500 * 1000

// maxManagementBody bounds the bodies of management calls.
const maxManagementBody = 64 * 1024

// Config is what the API needs.
type Config struct {
	State    *state.Store
	Series   tsstore.Store
	Ingester *ingest.Ingester
	Logger   *slog.Logger
	// Gatherer serves /metrics; Registerer receives the API's own metrics.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// RequestsPerSecond and Burst limit each token; 0 disables the limit.
	RequestsPerSecond float64
	Burst             float64
	// ContainerRequestsPerSecond and ContainerBurst limit all the tokens
	// of one container together; 0 disables the limit.
	ContainerRequestsPerSecond float64
	ContainerBurst             float64
	// MaxIngestInFlight bounds the check results decoded at once (their
	// decoded form takes many times their size); 0 means 4 per CPU.
	MaxIngestInFlight int
	// RootID is the root container: only its tokens read /metrics.
	RootID int64
	// AuthFailuresPerMinute limits failed authentications per client
	// address; 0 means 30.
	AuthFailuresPerMinute float64
	Now                   func() time.Time
	// Appliances is the appliance stream server; nil when the hub serves
	// none.
	Appliances Appliances
	// Alerts is the condition engine.
	Alerts *alert.Engine
	// Services runs the hub's own service checks; nil when it runs none.
	Services Services
	// AllowPrivateWebhooks accepts http:// webhook URLs (the outbox then
	// also reaches private addresses): tests and labs only.
	AllowPrivateWebhooks bool
	// MailConfigured says the hub can send e-mail.
	MailConfigured bool
	// MailDomains, when not empty, are the only domains e-mail rules may
	// send to (and their subdomains).
	MailDomains []string
}

// API serves the hub's HTTP routes.
type API struct {
	st         *state.Store
	series     tsstore.Store
	ingester   *ingest.Ingester
	appliances Appliances
	services   Services
	alerts     *alert.Engine
	logger     *slog.Logger

	allowPrivateWebhooks bool
	mailConfigured       bool
	mailDomains          []string
	gatherer             prometheus.Gatherer
	now                  func() time.Time

	rootID       int64
	perToken     *limiter
	perContainer *limiter
	authFails    *limiter
	ingestSlots  chan struct{}
	reqSeconds   *prometheus.HistogramVec
	mux          *http.ServeMux
	routeList    []Route
}

// New builds the API.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxIngestInFlight <= 0 {
		cfg.MaxIngestInFlight = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.AuthFailuresPerMinute <= 0 {
		cfg.AuthFailuresPerMinute = 30
	}
	if cfg.Appliances == nil {
		cfg.Appliances = noAppliances{}
	}
	a := &API{
		appliances: cfg.Appliances, services: cfg.Services,
		alerts: cfg.Alerts, allowPrivateWebhooks: cfg.AllowPrivateWebhooks, mailConfigured: cfg.MailConfigured, mailDomains: cfg.MailDomains,
		st: cfg.State, series: cfg.Series, ingester: cfg.Ingester, logger: cfg.Logger,
		gatherer: cfg.Gatherer, now: cfg.Now,
		rootID:       cfg.RootID,
		perToken:     newLimiter(cfg.RequestsPerSecond, cfg.Burst, cfg.Now),
		perContainer: newLimiter(cfg.ContainerRequestsPerSecond, cfg.ContainerBurst, cfg.Now),
		authFails:    newLimiter(cfg.AuthFailuresPerMinute/60, cfg.AuthFailuresPerMinute, cfg.Now),
		ingestSlots:  make(chan struct{}, cfg.MaxIngestInFlight),
		reqSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sonde_hub_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "code"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(a.reqSeconds)
	}
	a.routes()
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK, route: r.Method + " " + r.URL.Path}
	sw.Header().Set("X-Content-Type-Options", "nosniff")
	sw.Header().Set("Cache-Control", "no-store")
	sw.Header().Set("Strict-Transport-Security", "max-age=31536000")
	a.mux.ServeHTTP(sw, r)
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	a.reqSeconds.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	a.logger.Debug("request", "method", r.Method, "route", route, "status", sw.code, "duration", time.Since(start), "remote", r.RemoteAddr)
}

type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
	// swallow drops the body the mux writes for an unknown route or
	// method, which is replaced by a JSON error.
	swallow bool
	route   string // method and path, for those errors
}

func (w *statusWriter) WriteHeader(code int) {
	if w.written {
		return
	}
	w.code, w.written = code, true
	if (code == http.StatusMethodNotAllowed || code == http.StatusNotFound) && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		// The mux's own answer: make it JSON like every other error.
		msg := "no such route: " + w.route
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed: " + w.route + "; allowed: " + w.Header().Get("Allow")
		}
		writeError(w.ResponseWriter, code, msg)
		w.swallow = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Route is one route of the API, for the tenancy test and documentation.
type Route struct {
	Pattern string
	Need    auth.Permission
}

// Routes lists the token-authenticated routes.
func (a *API) Routes() []Route { return a.routeList }

func (a *API) routes() {
	m := http.NewServeMux()
	a.mux = m
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	api := auth.API
	// The InfraSonar agent calls (INFRASONAR-WIRE.md §5).
	a.handle(m, "GET /api/v1/container/id", api, a.containerID)
	a.handle(m, "POST /api/v1/container/{cid}/asset", api|auth.AssetManagement, a.createAsset)
	a.handle(m, "POST /api/v1/asset/{id}/collector/{key}", api|auth.AssetManagement, a.addCollector)
	a.handle(m, "PATCH /api/v1/asset/{id}/kind", api|auth.AssetManagement, a.setKind)
	a.handle(m, "GET /api/v1/asset/{id}", api|auth.Read, a.getAsset)
	a.handle(m, "POST /api/v1/asset/{id}/collector/{key}/check/{check}", api|auth.InsertCheckData, a.postCheck)
	// Management and reads.
	a.handle(m, "GET /api/v1/asset/{id}/collector/{key}/check/{check}", api|auth.Read, a.getCheck)
	a.handle(m, "DELETE /api/v1/asset/{id}", api|auth.AssetManagement, a.deleteAsset)
	a.handle(m, "PATCH /api/v1/asset/{id}/zone", api|auth.AssetManagement, a.setZone)
	a.handle(m, "GET /api/v1/container/{id}/appliances", api|auth.Read, a.listAppliances)
	a.handle(m, "DELETE /api/v1/appliance/{id}", api|auth.ContainerAdmin, a.revokeAppliance)
	a.handle(m, "PATCH /api/v1/appliance/{id}/zone", api|auth.ContainerAdmin, a.setApplianceZone)
	a.handle(m, "POST /api/v1/container/{id}/container", api|auth.ContainerAdmin, a.createContainer)
	a.handle(m, "GET /api/v1/container/{id}", api|auth.Read, a.getContainer)
	a.handle(m, "GET /api/v1/container/{id}/assets", api|auth.Read, a.listAssets)
	a.handle(m, "POST /api/v1/container/{id}/token", api|auth.ContainerTokens, a.createToken)
	a.handle(m, "GET /api/v1/container/{id}/tokens", api|auth.ContainerTokens, a.listTokens)
	a.handle(m, "DELETE /api/v1/token/{tokenId}", api|auth.ContainerTokens, a.deleteToken)
	a.alertRoutes(m)
	// Prometheus read API and the hub's own metrics.
	prom := http.StripPrefix("/prometheus/api/v1", promapi.New(a.series, func(r *http.Request) (tsstore.Scope, error) {
		p, ok := principalFrom(r.Context())
		if !ok {
			return tsstore.Scope{}, errors.New("no principal")
		}
		ids, err := a.st.Subtree(r.Context(), p.Container)
		if err != nil {
			return tsstore.Scope{}, err
		}
		scope := tsstore.Scope{ContainerIDs: make([]string, len(ids))}
		for i, id := range ids {
			scope.ContainerIDs[i] = strconv.FormatInt(id, 10)
		}
		return scope, nil
	}, a.logger))
	a.handle(m, "/prometheus/api/v1/", auth.Read, func(w http.ResponseWriter, r *http.Request, p principal) {
		prom.ServeHTTP(w, r)
	})
	metrics := promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{})
	a.handle(m, "GET /metrics", auth.Read, func(w http.ResponseWriter, r *http.Request, p principal) {
		// The hub's metrics describe every tenant: root container only.
		if p.Container != a.rootID {
			writeError(w, http.StatusForbidden, "the hub's metrics need a token of the root container")
			return
		}
		metrics.ServeHTTP(w, r)
	})
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (a *API) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	a.logger.Error("request failed", "method", r.Method, "route", r.Pattern, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; the hub's log has the details")
}

// readJSON decodes a JSON body into v. strict rejects unknown fields (the
// management calls); the agent calls are lenient so future agents work.
func readJSON(w http.ResponseWriter, r *http.Request, v any, limit int64, strict bool) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		writeBodyError(w, err)
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "the body holds more than one JSON value")
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "unexpected data after the JSON body")
		return false
	}
	return true
}

func writeBodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "the body is empty; a JSON object is expected")
	case errors.As(err, &syn):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error()))
	case errors.As(err, &typ):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value))
	default:
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
	}
}

// pathID reads a numeric id from the path. Ids are positive.
func pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %q is not a positive integer", name, s))
		return 0, false
	}
	return id, true
}

// validKey checks a collector or check key: what goes into paths, labels
// and configuration keys.
func validKey(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q must be 1 to 64 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && c != '-' && c != '.' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return fmt.Errorf("%q may hold only letters, digits, '_', '-' and '.'", s)
		}
	}
	return nil
}

// validName checks a human-given name (container, asset, token).
func validName(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("name is empty")
	}
	if len(s) > 200 {
		return fmt.Errorf("name is %d bytes, more than 200", len(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("name holds a control character")
		}
	}
	return nil
}

// clientAddr is the client's IP address, for throttling failed logins.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tokenFromRequest reads "Authorization: Bearer <token>".
func tokenFromRequest(r *http.Request) (secret.Secret, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return secret.Secret{}, false
	}
	return secret.New(strings.TrimSpace(tok)), true
}
