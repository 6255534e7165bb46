// Package alert is the hub's condition engine: it evaluates the conditions
// of a container on every check result as it arrives, opens and closes
// alerts (one per condition, asset and item), raises monitoring-health
// notifications (a check silent, an appliance gone, a check erroring), and
// queues a delivery for every notification rule that matches, in the same
// transaction as the change, so that a restart neither loses nor repeats
// one. The Outbox sends the queued deliveries.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sonde-monitoring/sonde/internal/alert/expr"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// Config configures an Engine.
type Config struct {
	State  *state.Store
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now        func() time.Time
	Registerer prometheus.Registerer
	// Peers are told of the changes made here; nil for a single hub.
	Peers Peers
}

// Engine evaluates conditions and keeps alerts and notifications. It is
// safe for concurrent use; results of one check must be observed in order
// (ingest serialises them).
type Engine struct {
	st    *state.Store
	log   *slog.Logger
	now   func() time.Time
	wake  chan struct{}
	evals prometheus.Counter
	fails prometheus.Counter
	limit *ruleLimiter
	peers Peers

	mu          sync.Mutex // guards the fields below
	byContainer map[int64][]*condition
	rules       map[int64][]*rule
	chains      map[int64][]int64
	ruleChains  map[int64][]int64
	labels      map[int64][]string
	maint       []state.Maintenance
	// open maps (condition, asset) to the open alerts' ids by item. A map
	// is never changed once published: writers copy it, so evaluation
	// reads it without the lock.
	open  map[[2]int64]map[string]int64
	notes map[noteKey]int64
	// condErrs counts the open condition-error notifications by asset, so
	// that a clean evaluation looks for one to close only when there is.
	condErrs map[int64]int
	checks   map[checkKey]*checkState
	// health is the sweeper's memory of appliance buffers.
	dropped   map[int64]int64
	dropUntil map[int64]time.Time
}

type noteKey struct {
	container int64
	kind      string
	subject   string
}

type checkKey struct {
	asset            int64
	collector, check string
}

// checkState is what the engine remembers of one check: the previous
// result's items (for prev. and rate()) and the tick counters.
type checkState struct {
	mu   sync.Mutex
	ts   int64
	prev map[string]map[string]model.Item // type → item name → item
	// ticks counts, by condition and item, the results in a row in which
	// the condition held (or, for an open alert, did not).
	ticks map[int64]map[string]*tick
}

type tick struct{ hits, clears int }

// New returns an engine; Load reads its state.
func New(cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		st: cfg.State, log: cfg.Logger, now: cfg.Now, peers: cfg.Peers,
		wake: make(chan struct{}, 1),
		evals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sonde_hub_condition_evaluations_total",
			Help: "Conditions evaluated on an item.",
		}),
		fails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sonde_hub_condition_errors_total",
			Help: "Condition evaluations that failed (a type error in the data, a division by zero).",
		}),
		chains:     map[int64][]int64{},
		ruleChains: map[int64][]int64{},
		labels:     map[int64][]string{},
		open:       map[[2]int64]map[string]int64{},
		notes:      map[noteKey]int64{},
		condErrs:   map[int64]int{},
		checks:     map[checkKey]*checkState{},
		dropped:    map[int64]int64{},
		dropUntil:  map[int64]time.Time{},
	}
	dropped := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sonde_hub_notifications_rate_limited_total",
		Help: "Alert and notification events not sent because their rule exceeded its rate.",
	})
	e.limit = newRuleLimiter(e.log, dropped)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(e.evals, e.fails, dropped)
	}
	return e
}

// Load reads conditions, rules, maintenance windows and the open alerts and
// notifications from the state store.
func (e *Engine) Load(ctx context.Context) error {
	if err := e.loadConditions(ctx); err != nil {
		return err
	}
	if err := e.loadRules(ctx); err != nil {
		return err
	}
	if err := e.loadMaintenance(ctx); err != nil {
		return err
	}
	return e.loadOpen(ctx)
}

// loadOpen reads the open alerts and notifications.
func (e *Engine) loadOpen(ctx context.Context) error {
	alerts, err := e.st.OpenAlerts(ctx)
	if err != nil {
		return err
	}
	notes, err := e.st.Notifications(ctx, state.NotificationFilter{Status: "open", Limit: 1 << 30})
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.open = map[[2]int64]map[string]int64{}
	for _, a := range alerts {
		k := [2]int64{a.ConditionID, a.AssetID}
		if e.open[k] == nil {
			e.open[k] = map[string]int64{}
		}
		e.open[k][a.Item] = a.ID
	}
	e.notes = map[noteKey]int64{}
	e.condErrs = map[int64]int{}
	for _, n := range notes {
		e.setNoteLocked(noteKey{n.ContainerID, n.Kind, n.Subject}, n.ID)
	}
	return nil
}

// Kinds of change the engine tells its peers of, and applies from them.
const (
	ChangeConditions  = "conditions"
	ChangeRules       = "rules"
	ChangeMaintenance = "maintenance"
	ChangeLabels      = "labels"
	ChangeAlerts      = "alerts"
	// ChangeAssetGone: an asset was deleted; what the engine remembers of
	// it goes.
	ChangeAssetGone = "asset_gone"
	// ChangeAll reads everything again (after missed changes).
	ChangeAll = "all"
)

// Peers are the other hubs sharing the state store: each evaluates the
// results it receives with its own copy of the conditions, rules,
// maintenance windows, labels and open alerts, which must follow changes
// made on any hub.
type Peers interface {
	// Changed says that something of the given kind changed on this hub
	// (for ChangeLabels, the labels of asset).
	Changed(kind string, asset int64)
}

// changed tells the peers of a change.
func (e *Engine) changed(kind string, asset int64) {
	if e.peers != nil {
		e.peers.Changed(kind, asset)
	}
}

// Apply takes into account a change another hub made: it reads again what
// changed.
func (e *Engine) Apply(ctx context.Context, kind string, asset int64) error {
	switch kind {
	case ChangeConditions:
		return e.loadConditions(ctx)
	case ChangeRules:
		return e.loadRules(ctx)
	case ChangeMaintenance:
		return e.loadMaintenance(ctx)
	case ChangeLabels:
		e.forgetLabels(asset)
		return nil
	case ChangeAlerts:
		return e.loadOpen(ctx)
	case ChangeAssetGone:
		e.forgetAsset(asset)
		return nil
	case ChangeAll:
		e.mu.Lock()
		clear(e.labels)
		e.mu.Unlock()
		return e.Load(ctx)
	}
	return fmt.Errorf("unknown change %q", kind)
}

// ConditionsChanged reloads the conditions after a change through the API.
func (e *Engine) ConditionsChanged(ctx context.Context) error {
	if err := e.loadConditions(ctx); err != nil {
		return err
	}
	e.changed(ChangeConditions, 0)
	return nil
}

func (e *Engine) loadConditions(ctx context.Context) error {
	all, err := e.st.Conditions(ctx, 0)
	if err != nil {
		return err
	}
	by := map[int64][]*condition{}
	for _, c := range all {
		cc, err := compile(c)
		if err != nil {
			// Validated when stored; a condition that no longer
			// parses (a stricter language) is reported, not fatal.
			e.log.Error("a stored condition does not compile; it is ignored", "condition_id", c.ID, "err", err)
			continue
		}
		by[c.ContainerID] = append(by[c.ContainerID], cc)
	}
	e.mu.Lock()
	e.byContainer = by
	e.mu.Unlock()
	return nil
}

// RulesChanged reloads the notification rules.
func (e *Engine) RulesChanged(ctx context.Context) error {
	if err := e.loadRules(ctx); err != nil {
		return err
	}
	e.changed(ChangeRules, 0)
	return nil
}

func (e *Engine) loadRules(ctx context.Context) error {
	all, err := e.st.Rules(ctx, 0)
	if err != nil {
		return err
	}
	by := map[int64][]*rule{}
	for _, r := range all {
		cr, err := compileRule(r)
		if err != nil {
			e.log.Error("a stored rule does not compile; it is ignored", "rule_id", r.ID, "err", err)
			continue
		}
		by[r.ContainerID] = append(by[r.ContainerID], cr)
	}
	e.mu.Lock()
	e.rules = by
	e.mu.Unlock()
	return nil
}

// MaintenanceChanged reloads the maintenance windows.
func (e *Engine) MaintenanceChanged(ctx context.Context) error {
	if err := e.loadMaintenance(ctx); err != nil {
		return err
	}
	e.changed(ChangeMaintenance, 0)
	return nil
}

func (e *Engine) loadMaintenance(ctx context.Context) error {
	ms, err := e.st.MaintenanceWindows(ctx, nil, e.now())
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.maint = ms
	e.mu.Unlock()
	return nil
}

// LabelsChanged forgets the cached labels of an asset.
func (e *Engine) LabelsChanged(asset int64) {
	e.forgetLabels(asset)
	e.changed(ChangeLabels, asset)
}

// AssetDeleted forgets what the engine remembers of a deleted asset: its
// checks' previous results and tick counts, and its labels.
func (e *Engine) AssetDeleted(asset int64) {
	e.forgetAsset(asset)
	e.changed(ChangeAssetGone, asset)
}

func (e *Engine) forgetAsset(asset int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.checks {
		if k.asset == asset {
			delete(e.checks, k)
		}
	}
	delete(e.labels, asset)
}

func (e *Engine) forgetLabels(asset int64) {
	e.mu.Lock()
	delete(e.labels, asset)
	e.mu.Unlock()
}

// chain returns a container and its ancestors (cached: containers do not
// move).
func (e *Engine) chain(ctx context.Context, container int64) ([]int64, error) {
	e.mu.Lock()
	c, ok := e.chains[container]
	e.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := e.st.Ancestors(ctx, container)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.chains[container] = c
	e.mu.Unlock()
	return c, nil
}

// ruleChain returns a container and the ancestors whose rules see its
// events (cached; TreeChanged forgets).
func (e *Engine) ruleChain(ctx context.Context, container int64) ([]int64, error) {
	e.mu.Lock()
	c, ok := e.ruleChains[container]
	e.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := e.st.RuleChain(ctx, container)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.ruleChains[container] = c
	e.mu.Unlock()
	return c, nil
}

// TreeChanged forgets the cached container chains: call it when a
// container starts or stops inheriting access.
func (e *Engine) TreeChanged() {
	e.mu.Lock()
	e.chains = map[int64][]int64{}
	e.ruleChains = map[int64][]int64{}
	e.mu.Unlock()
}

func (e *Engine) assetLabels(ctx context.Context, asset int64) ([]string, error) {
	e.mu.Lock()
	l, ok := e.labels[asset]
	e.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := e.st.AssetLabels(ctx, asset)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.labels[asset] = l
	e.mu.Unlock()
	return l, nil
}

// applicable lists the conditions of the container and its ancestors that
// apply to the check of t.
func (e *Engine) applicable(chain []int64, labels []string, t ingest.Target) []*condition {
	var out []*condition
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range chain {
		for _, cond := range e.byContainer[c] {
			if cond.Disabled || (cond.Collector != "" && cond.Collector != t.Collector) || (cond.Check != "" && cond.Check != t.Check) {
				continue
			}
			if len(cond.Labels) > 0 && !anyIn(cond.Labels, labels) {
				continue
			}
			out = append(out, cond)
		}
	}
	return out
}

func anyIn(want, have []string) bool {
	for _, w := range want {
		for _, h := range have {
			if w == h {
				return true
			}
		}
	}
	return false
}

// actions are what one observation changes, applied in one transaction.
type actions struct {
	container  int64 // of the asset the alerts are about
	asset      int64
	opens      []openAction
	closes     []closeAction
	noteOpens  []state.Notification
	noteCloses []noteClose
}

type noteClose struct {
	id  int64
	key noteKey
}

type openAction struct {
	cond    *condition
	item    string
	message func() string // rendered only for the alerts that open
}

type closeAction struct {
	cond   *condition
	item   string
	id     int64
	reason string
	actor  string
}

func (a *actions) empty() bool { return a.changes() == 0 }

func (a *actions) changes() int {
	return len(a.opens) + len(a.closes) + len(a.noteOpens) + len(a.noteCloses)
}

// truncate keeps at most n changes: closes first (they end something),
// then notifications (few, and they say what is wrong, such as the limit
// itself), then opens.
func (a *actions) truncate(n int) {
	keep := func(l int) int {
		k := min(l, n)
		n -= k
		return k
	}
	a.closes = a.closes[:keep(len(a.closes))]
	a.noteCloses = a.noteCloses[:keep(len(a.noteCloses))]
	a.noteOpens = a.noteOpens[:keep(len(a.noteOpens))]
	a.opens = a.opens[:keep(len(a.opens))]
}

// Observe evaluates a stored result: the conditions that apply to it, and
// the health of its check. Errors are logged; they never reach ingest.
func (e *Engine) Observe(ctx context.Context, t ingest.Target, cd *model.CheckData) {
	chain, err := e.chain(ctx, t.ContainerID)
	if err != nil {
		e.log.Error("evaluating conditions: reading the container tree failed", "container_id", t.ContainerID, "err", err)
		return
	}
	labels, err := e.assetLabels(ctx, t.AssetID)
	if err != nil {
		e.log.Error("evaluating conditions: reading the asset's labels failed", "asset_id", t.AssetID, "err", err)
		return
	}
	acts := actions{container: t.ContainerID, asset: t.AssetID}
	e.resultHealth(t, cd, &acts)
	if conds := e.applicable(chain, labels, t); len(conds) > 0 {
		e.evaluate(t, cd, conds, &acts)
	} else {
		e.mu.Lock()
		delete(e.checks, checkKey{t.AssetID, t.Collector, t.Check})
		e.mu.Unlock()
	}
	if !acts.empty() {
		e.apply(ctx, labels, t.AssetName, &acts)
	}
}

// Rejected raises an invalid-data notification for a result the hub
// refused; the next valid result of the check closes it.
func (e *Engine) Rejected(ctx context.Context, t ingest.Target, reason error) {
	labels, err := e.assetLabels(ctx, t.AssetID)
	if err != nil {
		e.log.Error("recording refused data failed", "err", err)
		return
	}
	asset := t.AssetID
	acts := actions{container: t.ContainerID, asset: t.AssetID}
	subject := checkSubject(t)
	if e.noteID(noteKey{t.ContainerID, KindInvalidData, subject}) != 0 {
		return
	}
	// Only about a check the asset has (configured, or with a stored
	// result): a made-up check name must not open a notification each.
	if known, err := e.st.CheckKnown(ctx, t.AssetID, t.Collector, t.Check); err != nil || !known {
		if err != nil {
			e.log.Error("recording refused data failed", "err", err)
		}
		return
	}
	acts.noteOpens = append(acts.noteOpens, state.Notification{
		ContainerID: t.ContainerID, AssetID: &asset, Kind: KindInvalidData, Subject: subject,
		Severity: int(model.SeverityLow),
		Message:  truncate(fmt.Sprintf("a result of %s/%s on %s was refused: %v", t.Collector, t.Check, t.AssetName, reason), maxMessage),
	})
	e.apply(ctx, labels, t.AssetName, &acts)
}

func checkSubject(t ingest.Target) string {
	return strconv.FormatInt(t.AssetID, 10) + "/" + t.Collector + "/" + t.Check
}

func (e *Engine) noteID(k noteKey) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.notes[k]
}

// resultHealth opens or closes the notifications a result settles: a check
// error, refused data, a silent check or agent.
func (e *Engine) resultHealth(t ingest.Target, cd *model.CheckData, acts *actions) {
	subject := checkSubject(t)
	asset := t.AssetID
	e.mu.Lock()
	defer e.mu.Unlock()
	errKey := noteKey{t.ContainerID, KindCheckError, subject}
	if cd.Error != nil {
		if e.notes[errKey] == 0 {
			acts.noteOpens = append(acts.noteOpens, state.Notification{
				ContainerID: t.ContainerID, AssetID: &asset, Kind: KindCheckError, Subject: subject,
				Severity: int(cd.Error.Severity),
				Message:  truncate(fmt.Sprintf("check %s/%s on %s failed: %s", t.Collector, t.Check, t.AssetName, cd.Error.Message), maxMessage),
			})
		}
	} else if id := e.notes[errKey]; id != 0 {
		acts.noteCloses = append(acts.noteCloses, noteClose{id, errKey})
	}
	for _, k := range []noteKey{
		{t.ContainerID, KindInvalidData, subject},
		{t.ContainerID, KindCheckMissing, subject},
		{t.ContainerID, KindAgentSilent, strconv.FormatInt(t.AssetID, 10) + "/" + t.Collector},
	} {
		if id := e.notes[k]; id != 0 {
			acts.noteCloses = append(acts.noteCloses, noteClose{id, k})
		}
	}
}

// evaluate runs the conditions on a result and counts ticks.
func (e *Engine) evaluate(t ingest.Target, cd *model.CheckData, conds []*condition, acts *actions) {
	key := checkKey{t.AssetID, t.Collector, t.Check}
	e.mu.Lock()
	cs := e.checks[key]
	if cs == nil {
		cs = &checkState{ticks: map[int64]map[string]*tick{}}
		e.checks[key] = cs
	}
	e.mu.Unlock()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cd.Timestamp < cs.ts {
		return // an old result replayed late: the state has moved on
	}
	types := cd.Types
	hasData := cd.HasResult
	if !hasData && cd.Unchanged && cs.prev != nil {
		// The same data as last time: the conditions hold (or not) again.
		hasData = true
		types = nil
		for name, items := range cs.prev {
			typ := model.Type{Name: name}
			for _, it := range items {
				typ.Items = append(typ.Items, it)
			}
			types = append(types, typ)
		}
	}
	if !hasData {
		return // an error without data says nothing of the items
	}
	cur := make(map[string]*model.Type, len(conds))
	for _, c := range conds {
		cur[c.Type] = nil
	}
	for i := range types {
		if _, ok := cur[types[i].Name]; ok {
			cur[types[i].Name] = &types[i]
		}
	}
	now := time.Unix(cd.Timestamp, 0)
	prevTime := time.Unix(cs.ts, 0)
	e.mu.Lock()
	openSnap := make([]map[string]int64, len(conds))
	for i, c := range conds {
		openSnap[i] = e.open[[2]int64{c.ID, t.AssetID}]
	}
	condErrsOpen := e.condErrs[t.AssetID] > 0
	e.mu.Unlock()
	// One Env for every item and condition: it carries the evaluator's
	// lookup hints from one item to the next, and pointing it at these two
	// lists (set for each item) boxes nothing.
	var curList, prevList expr.ItemMetrics
	env := &expr.Env{Item: &curList, Prev: &prevList, Now: now, PrevTime: prevTime}
	var evals, fails int
	overBudget := false
	errs := make([]error, len(conds))
	errItems := make([]string, len(conds))
	// Expression conditions go item by item: an item's metrics are boxed
	// once for all the conditions of its type.
	done := make([]bool, len(conds))
	var group []int
	for i, c := range conds {
		if c.Kind != KindExpression || done[i] {
			continue
		}
		group = group[:0]
		for k := i; k < len(conds); k++ {
			if !done[k] && conds[k].Kind == KindExpression && conds[k].Type == c.Type {
				group = append(group, k)
				done[k] = true
			}
		}
		typ := cur[c.Type]
		if typ == nil {
			continue
		}
		prevItems := cs.prev[c.Type]
		for j := range typ.Items {
			if evals+len(group) > MaxEvaluationsPerResult {
				overBudget = true
				break
			}
			it := &typ.Items[j]
			curList, prevList = it.Metrics, nil
			var prevMetrics []model.Metric
			hasPrev := false
			if p, ok := prevItems[it.Name]; ok {
				prevList, prevMetrics, hasPrev = p.Metrics, p.Metrics, true
			}
			for _, k := range group {
				ck := conds[k]
				evals++
				r, err := ck.expr.Eval(env)
				if err != nil {
					fails++
					if errs[k] == nil {
						errs[k], errItems[k] = err, it.Name
					}
					continue
				}
				switch r {
				case expr.True:
					if !e.hold(cs, ck, it.Name, openSnap[k], acts, func() string {
						var prev expr.Metrics
						if hasPrev {
							prev = expr.ItemMetrics(prevMetrics)
						}
						return render(ck.msg, t.AssetName, ck.Name, it.Name, expr.ItemMetrics(it.Metrics), prev)
					}) {
						overBudget = true
					}
				case expr.False:
					e.clear(cs, ck, it.Name, openSnap[k], acts)
				}
			}
		}
	}
	present := map[string]map[string]bool{} // by type, built once
	for i, c := range conds {
		open := openSnap[i]
		typ := cur[c.Type]
		prevItems := cs.prev[c.Type]
		switch c.Kind {
		case KindItemsMissing, KindItemsMustExist:
			if overBudget {
				break
			}
			p, ok := present[c.Type]
			if !ok {
				p = map[string]bool{}
				if typ != nil {
					for j := range typ.Items {
						p[typ.Items[j].Name] = true
					}
					evals += len(typ.Items)
				}
				present[c.Type] = p
			}
			var names []string
			if c.Kind == KindItemsMustExist {
				names = c.Items
			} else {
				// The items of the last result, the ones counted or
				// open: what can be missing now.
				seen := make(map[string]bool, len(prevItems)+len(cs.ticks[c.ID])+len(open))
				for name := range prevItems {
					seen[name] = true
				}
				for name := range cs.ticks[c.ID] {
					seen[name] = true
				}
				for name := range open {
					seen[name] = true
				}
				for name := range seen {
					names = append(names, name)
				}
			}
			if evals+len(names) > MaxEvaluationsPerResult {
				overBudget = true
				break
			}
			evals += len(names)
			for _, name := range names {
				if p[name] {
					e.clear(cs, c, name, open, acts)
					continue
				}
				var prevM expr.Metrics
				if pi, ok := prevItems[name]; ok {
					prevM = expr.ItemMetrics(pi.Metrics)
				}
				if !e.hold(cs, c, name, open, acts, func() string {
					return render(c.msg, t.AssetName, c.Name, name, nil, prevM)
				}) {
					overBudget = true
				}
			}
		}
		if errs[i] != nil || condErrsOpen {
			e.conditionHealth(t, c, errs[i], errItems[i], acts)
		}
	}
	// An expression condition forgets the counts of items gone from the
	// result (renamed processes, interfaces) unless their alert is open:
	// otherwise they would fill MaxTrackedItems for good.
	for i, c := range conds {
		m := cs.ticks[c.ID]
		typ := cur[c.Type]
		if c.Kind != KindExpression || len(m) == 0 || typ == nil {
			continue
		}
		p, ok := present[c.Type]
		if !ok {
			p = make(map[string]bool, len(typ.Items))
			for j := range typ.Items {
				p[typ.Items[j].Name] = true
			}
			present[c.Type] = p
		}
		for item := range m {
			if !p[item] && openSnap[i][item] == 0 {
				delete(m, item)
			}
		}
		if len(m) == 0 {
			delete(cs.ticks, c.ID)
		}
	}
	e.limitHealth(t, overBudget, acts)
	// Bound the writes one result causes: the changes beyond the cap keep
	// their counts (and are found again) and happen with the next results.
	if n := acts.changes(); n > MaxAlertChangesPerResult {
		acts.truncate(MaxAlertChangesPerResult)
		e.log.Warn("more alert changes in one result than the hub records at once; the rest follow with the next results",
			"asset_id", t.AssetID, "collector", t.Collector, "check", t.Check, "changes", n, "recorded", MaxAlertChangesPerResult)
	}
	e.evals.Add(float64(evals))
	e.fails.Add(float64(fails))
	// Remember this result's items of the types the conditions read.
	prev := make(map[string]map[string]model.Item, len(cur))
	for name, typ := range cur {
		if typ == nil {
			continue
		}
		m := make(map[string]model.Item, len(typ.Items))
		for _, it := range typ.Items {
			m[it.Name] = it
		}
		prev[name] = m
	}
	cs.prev, cs.ts = prev, cd.Timestamp
}

// hold counts a result in which the condition holds for the item, and
// opens an alert when it held Ticks times in a row. It returns false when
// the item could not be counted: the condition already counts
// MaxTrackedItems items on the asset.
func (e *Engine) hold(cs *checkState, c *condition, item string, open map[string]int64, acts *actions, message func() string) bool {
	m := cs.ticks[c.ID]
	if m == nil {
		m = map[string]*tick{}
		cs.ticks[c.ID] = m
	}
	tk := m[item]
	if tk == nil {
		if len(m) >= MaxTrackedItems {
			return false
		}
		tk = &tick{}
		m[item] = tk
	}
	tk.hits++
	tk.clears = 0
	if open[item] == 0 && tk.hits >= c.Ticks {
		acts.opens = append(acts.opens, openAction{cond: c, item: item, message: message})
	}
	return true
}

// clear counts a result in which the condition does not hold, and closes
// an open alert after ClearTicks such results in a row.
func (e *Engine) clear(cs *checkState, c *condition, item string, open map[string]int64, acts *actions) {
	m := cs.ticks[c.ID]
	id := open[item]
	if id == 0 {
		if m != nil {
			delete(m, item)
			if len(m) == 0 {
				delete(cs.ticks, c.ID)
			}
		}
		return
	}
	if m == nil {
		m = map[string]*tick{}
		cs.ticks[c.ID] = m
	}
	tk := m[item]
	if tk == nil {
		tk = &tick{}
		m[item] = tk
	}
	tk.hits = 0
	tk.clears++
	if tk.clears >= c.ClearTicks {
		acts.closes = append(acts.closes, closeAction{cond: c, item: item, id: id, reason: "the condition no longer holds"})
	}
}

// Bounds on the work one result causes.
const (
	// MaxEvaluationsPerResult bounds the conditions × items evaluated on
	// one result; beyond it, evaluation stops and an evaluation_limit
	// notification says so.
	MaxEvaluationsPerResult = 200_000
	// MaxAlertChangesPerResult bounds the alerts and notifications opened
	// and closed by one result; the others follow with the next results.
	MaxAlertChangesPerResult = 100
	// MaxTrackedItems bounds the items one condition counts on one check
	// of an asset (an agent that renames its items every time must not
	// grow the hub's memory).
	MaxTrackedItems = 1000
)

// limitHealth opens an evaluation_limit notification when a result had
// more items × conditions than the budget, and closes it when one fits.
func (e *Engine) limitHealth(t ingest.Target, over bool, acts *actions) {
	k := noteKey{t.ContainerID, KindEvaluationLimit, checkSubject(t)}
	id := e.noteID(k)
	switch {
	case over && id == 0:
		asset := t.AssetID
		acts.noteOpens = append(acts.noteOpens, state.Notification{
			ContainerID: t.ContainerID, AssetID: &asset, Kind: KindEvaluationLimit, Subject: k.subject,
			Severity: int(model.SeverityHigh),
			Message: fmt.Sprintf("check %s/%s on %s has more items × conditions than the hub evaluates on one result (%d); conditions were skipped: use fewer conditions on this type or narrow them by collector, check or label",
				t.Collector, t.Check, t.AssetName, MaxEvaluationsPerResult),
		})
	case !over && id != 0:
		acts.noteCloses = append(acts.noteCloses, noteClose{id, k})
	}
}

// conditionHealth opens a condition-error notification when a condition
// failed on an item of the asset, and closes it when it ran cleanly.
func (e *Engine) conditionHealth(t ingest.Target, c *condition, err error, item string, acts *actions) {
	k := noteKey{t.ContainerID, KindConditionError, strconv.FormatInt(c.ID, 10) + "/" + strconv.FormatInt(t.AssetID, 10)}
	id := e.noteID(k)
	switch {
	case err != nil && id == 0:
		asset := t.AssetID
		acts.noteOpens = append(acts.noteOpens, state.Notification{
			ContainerID: t.ContainerID, AssetID: &asset, Kind: KindConditionError, Subject: k.subject,
			Severity: int(model.SeverityMedium),
			Message: truncate(fmt.Sprintf("condition %q (%d) failed on item %q of asset %s: %v; fix the condition or guard it",
				c.Name, c.ID, item, t.AssetName, err), maxMessage),
		})
	case err == nil && id != 0:
		acts.noteCloses = append(acts.noteCloses, noteClose{id, k})
	}
}

// inMaintenance reports whether the asset, or a container of chain, is in
// a maintenance window at now.
func (e *Engine) inMaintenance(chain []int64, asset int64, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.maint {
		if now.Before(m.StartsAt) || !now.Before(m.EndsAt) {
			continue
		}
		if m.AssetID != nil {
			if *m.AssetID == asset {
				return true
			}
			continue
		}
		for _, c := range chain {
			if c == m.ContainerID {
				return true
			}
		}
	}
	return false
}

// rulesFor lists the rules of a container and its ancestors.
func (e *Engine) rulesFor(chain []int64) []*rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*rule
	for _, c := range chain {
		out = append(out, e.rules[c]...)
	}
	return out
}

// apply writes what an observation changed, with the deliveries it causes,
// in one transaction; then updates the engine's memory. On failure nothing
// changes, and the next result tries again.
func (e *Engine) apply(ctx context.Context, labels []string, assetName string, acts *actions) bool {
	now := e.now()
	// Rules and maintenance windows reach an event from the containers
	// above it up to one that stops inheritance: a customer that stops
	// it keeps its events from its MSP.
	chain, err := e.ruleChain(ctx, acts.container)
	if err != nil {
		e.log.Error("recording alert changes failed: reading the container tree", "err", err)
		return false
	}
	maintFor := func(assetID int64) bool { return e.inMaintenance(chain, assetID, now) }
	rules := e.rulesFor(chain)
	type opened struct {
		k    [2]int64
		item string
		id   int64
	}
	var opens []opened
	var closes []opened
	noteOpens := map[noteKey]int64{}
	var noteCloses []noteKey
	err = e.st.InTx(ctx, func(tx *state.Tx) error {
		opens, closes, noteCloses = opens[:0], closes[:0], noteCloses[:0]
		clear(noteOpens)
		for _, o := range acts.opens {
			assetID := acts.asset
			if maintFor(assetID) {
				continue // suppressed: it opens when the window ends and it still holds
			}
			a := state.Alert{
				ContainerID: acts.container, AssetID: assetID, ConditionID: o.cond.ID, Item: o.item,
				Severity: o.cond.Severity, Message: o.message(), OpenedAt: now,
			}
			id, isNew, err := tx.OpenAlert(a)
			if err != nil {
				return err
			}
			opens = append(opens, opened{[2]int64{o.cond.ID, assetID}, o.item, id})
			if !isNew {
				continue
			}
			a.ID, a.Status = id, "open"
			if err := queueAlert(tx, e.limit, rules, chain, labels, a, assetName, o.cond.Name, "alert.open", false, now); err != nil {
				return err
			}
		}
		for _, c := range acts.closes {
			a, ok, err := tx.CloseAlert(c.id, now, c.reason, c.actor)
			if err != nil {
				return err
			}
			closes = append(closes, opened{[2]int64{c.cond.ID, acts.asset}, c.item, c.id})
			if !ok {
				continue
			}
			if err := queueAlert(tx, e.limit, rules, chain, labels, a, assetName, c.cond.Name, "alert.close", maintFor(a.AssetID), now); err != nil {
				return err
			}
		}
		for _, n := range acts.noteOpens {
			var assetID int64
			if n.AssetID != nil {
				assetID = *n.AssetID
			}
			if maintFor(assetID) {
				continue
			}
			n.OpenedAt = now
			id, isNew, err := tx.OpenNotification(n)
			if err != nil {
				return err
			}
			noteOpens[noteKey{n.ContainerID, n.Kind, n.Subject}] = id
			if !isNew {
				continue
			}
			n.ID, n.Status = id, "open"
			if err := queueNotification(tx, e.limit, rules, chain, labels, n, "notification.open", false, now); err != nil {
				return err
			}
		}
		for _, c := range acts.noteCloses {
			n, ok, err := tx.CloseNotification(c.id, now)
			if err != nil {
				return err
			}
			// Closed, or gone already (its asset was deleted): forget it.
			noteCloses = append(noteCloses, c.key)
			if !ok {
				continue
			}
			var assetID int64
			if n.AssetID != nil {
				assetID = *n.AssetID
			}
			if err := queueNotification(tx, e.limit, rules, chain, labels, n, "notification.close", maintFor(assetID), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.log.Error("recording alert changes failed; the next result tries again", "err", err)
		return false
	}
	e.mu.Lock()
	for _, o := range opens {
		m := copyMap(e.open[o.k])
		m[o.item] = o.id
		e.open[o.k] = m
	}
	for _, c := range closes {
		m := copyMap(e.open[c.k])
		if m[c.item] == c.id {
			delete(m, c.item)
		}
		if len(m) == 0 {
			delete(e.open, c.k)
		} else {
			e.open[c.k] = m
		}
	}
	for k, id := range noteOpens {
		e.setNoteLocked(k, id)
	}
	for _, k := range noteCloses {
		if id, ok := noteOpens[k]; !ok || id == 0 {
			e.dropNoteLocked(k)
		}
	}
	e.mu.Unlock()
	if len(opens)+len(closes)+len(noteOpens)+len(noteCloses) > 0 {
		e.changed(ChangeAlerts, 0)
	}
	e.kick()
	return true
}

// setNoteLocked records an open notification; e.mu is held.
func (e *Engine) setNoteLocked(k noteKey, id int64) {
	if _, had := e.notes[k]; !had && k.kind == KindConditionError {
		e.condErrs[condErrAsset(k.subject)]++
	}
	e.notes[k] = id
}

// dropNoteLocked forgets a closed notification; e.mu is held.
func (e *Engine) dropNoteLocked(k noteKey) {
	if _, had := e.notes[k]; had && k.kind == KindConditionError {
		a := condErrAsset(k.subject)
		if e.condErrs[a]--; e.condErrs[a] <= 0 {
			delete(e.condErrs, a)
		}
	}
	delete(e.notes, k)
}

// condErrAsset reads the asset of a condition-error subject,
// "<condition>/<asset>".
func condErrAsset(subject string) int64 {
	_, a, _ := strings.Cut(subject, "/")
	id, _ := strconv.ParseInt(a, 10, 64)
	return id
}

func copyMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// kick wakes the outbox.
func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Wake is signalled when deliveries were queued.
func (e *Engine) Wake() <-chan struct{} { return e.wake }

// ErrClosed is returned when closing an alert that is closed already.
var ErrClosed = errors.New("the alert is closed already")

// CloseAlert closes an alert by hand (the API), queueing its deliveries.
// If its condition still holds, the next result opens a new one.
func (e *Engine) CloseAlert(ctx context.Context, id int64, reason, actor string) error {
	a, err := e.st.Alert(ctx, id)
	if err != nil {
		return err
	}
	if a.Status != "open" {
		return ErrClosed
	}
	as, err := e.st.Asset(ctx, a.AssetID)
	if err != nil {
		return err
	}
	cond := state.Condition{ID: a.ConditionID}
	if c, err := e.st.Condition(ctx, a.ConditionID); err == nil {
		cond = c
	}
	labels, err := e.assetLabels(ctx, a.AssetID)
	if err != nil {
		return err
	}
	acts := actions{container: a.ContainerID, asset: a.AssetID}
	acts.closes = append(acts.closes, closeAction{cond: &condition{Condition: cond}, item: a.Item, id: a.ID, reason: reason, actor: actor})
	if !e.apply(ctx, labels, as.Name, &acts) {
		return errors.New("closing the alert failed; the hub's log has the details")
	}
	// Count afresh: a condition that still holds opens a new alert after
	// its ticks.
	// (Lock order: a check's lock before the engine's, never after.)
	var states []*checkState
	e.mu.Lock()
	for k, c := range e.checks {
		if k.asset == a.AssetID {
			states = append(states, c)
		}
	}
	e.mu.Unlock()
	for _, c := range states {
		c.mu.Lock()
		delete(c.ticks[a.ConditionID], a.Item)
		c.mu.Unlock()
	}
	return nil
}

// CloseConditionAlerts closes the open alerts of a condition that was
// deleted or changed.
func (e *Engine) CloseConditionAlerts(ctx context.Context, cond int64, reason, actor string) error {
	// Another hub may have opened some: read them afresh.
	if err := e.loadOpen(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	var ids []int64
	for k, m := range e.open {
		if k[0] == cond {
			for _, id := range m {
				ids = append(ids, id)
			}
		}
	}
	e.mu.Unlock()
	for _, id := range ids {
		if err := e.CloseAlert(ctx, id, reason, actor); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, state.ErrNotFound) {
			return err
		}
	}
	return nil
}
