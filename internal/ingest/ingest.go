// Package ingest takes validated check data and fans it out: every numeric
// metric to the time-series store, the latest result to the state store.
package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// ResultStore is the part of the state store ingest writes to.
type ResultStore interface {
	PutResult(ctx context.Context, r state.Result, unchanged, noCount bool) error
	PutResults(ctx context.Context, puts []state.ResultPut) error
}

// Ingester stores check results.
type Ingester struct {
	results ResultStore
	series  tsstore.Store
	logger  *slog.Logger
	now     func() time.Time

	// locks serialise the results of one check (striped by a hash of
	// asset, collector and check), so two agents posting the same check at
	// once are stored one after the other: the time-series store detects
	// the conflict only between committed appends.
	locks [256]sync.Mutex

	quota    *seriesQuota
	observer Observer

	resultsTotal *prometheus.CounterVec
	samplesTotal prometheus.Counter
}

// Options tune an Ingester. The zero value is the default.
type Options struct {
	// MaxSeriesPerContainer bounds the active series (a sample within
	// the last 3 hours) of each container; 0 means 1,000,000, negative
	// means no limit.
	MaxSeriesPerContainer int
	// Observer, when set, sees every stored result (in order, per check)
	// and every refused one: the condition engine.
	Observer Observer
}

// Observer is told of results as they are stored or refused.
type Observer interface {
	// Observe is called after a result was stored, with the check's lock
	// held, so the results of one check arrive in order.
	Observe(ctx context.Context, t Target, cd *CheckData)
	// Rejected is called for a result refused as bad input.
	Rejected(ctx context.Context, t Target, reason error)
}

// CheckData is model.CheckData, named here for Observer.
type CheckData = model.CheckData

// New returns an Ingester. reg may be nil.
func New(results ResultStore, series tsstore.Store, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time, opts Options) *Ingester {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if opts.MaxSeriesPerContainer == 0 {
		opts.MaxSeriesPerContainer = 1_000_000
	}
	in := &Ingester{
		results: results, series: series, logger: logger, now: now,
		quota:    newSeriesQuota(opts.MaxSeriesPerContainer, 3*time.Hour),
		observer: opts.Observer,
		resultsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sonde_hub_check_results_total",
			Help: "Check results received, by outcome (stored, rejected, failed).",
		}, []string{"outcome"}),
		samplesTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sonde_hub_samples_appended_total",
			Help: "Numeric samples written to the time-series store.",
		}),
	}
	if reg != nil {
		reg.MustRegister(in.resultsTotal, in.samplesTotal)
	}
	return in
}

// Target says whose result it is.
type Target struct {
	ContainerID int64
	AssetID     int64
	AssetName   string
	Collector   string
	Check       string
}

// Rejected counts a result refused before Ingest (bad input).
func (in *Ingester) Rejected() { in.resultsTotal.WithLabelValues("rejected").Inc() }

// RejectedData counts a result of a known check refused before Ingest
// (it did not decode), and tells the observer.
func (in *Ingester) RejectedData(ctx context.Context, t Target, reason error) {
	in.reject(ctx, t, reason)
}

func (in *Ingester) reject(ctx context.Context, t Target, reason error) {
	in.Rejected()
	if in.observer != nil {
		in.observer.Rejected(ctx, t, reason)
	}
}

func (in *Ingester) observe(ctx context.Context, t Target, cd *model.CheckData) {
	if in.observer != nil {
		in.observer.Observe(ctx, t, cd)
	}
}

// Ingest validates the timestamp and stores the result. The samples are in
// the time-series WAL and the result in the state store when it returns
// nil. An error wrapping model.ErrInvalid or tsstore.ErrOutOfRange means
// bad input; ErrQuota a container over its series quota;
// tsstore.ErrConflict means a different result for the same
// check and time was stored before. Nothing is stored then.
func (in *Ingester) Ingest(ctx context.Context, t Target, cd *model.CheckData) error {
	now := in.now()
	if err := cd.Validate(now, model.Limits{}); err != nil {
		in.reject(ctx, t, err)
		return err
	}
	mu := in.lock(t)
	mu.Lock()
	defer mu.Unlock()
	if samples := Samples(t, cd); len(samples) > 0 {
		if err := in.quota.admit(t.ContainerID, samples, now); err != nil {
			in.reject(ctx, t, err)
			return err
		}
		if err := in.series.Append(ctx, samples); err != nil {
			outcome := "failed"
			if errors.Is(err, tsstore.ErrConflict) || errors.Is(err, tsstore.ErrOutOfRange) {
				outcome = "rejected"
			}
			in.resultsTotal.WithLabelValues(outcome).Inc()
			err = fmt.Errorf("writing %d samples of %s/%s on asset %d to the time-series store: %w",
				len(samples), t.Collector, t.Check, t.AssetID, err)
			if errors.Is(err, tsstore.ErrOutOfRange) && in.observer != nil {
				in.observer.Rejected(ctx, t, err)
			}
			return err
		}
		in.samplesTotal.Add(float64(len(samples)))
	}
	if err := in.results.PutResult(ctx, result(t, cd, now), cd.Unchanged, cd.NoCount); err != nil {
		in.resultsTotal.WithLabelValues("failed").Inc()
		return err
	}
	in.resultsTotal.WithLabelValues("stored").Inc()
	in.observe(ctx, t, cd)
	return nil
}

// result is the state store's record of a check result.
func result(t Target, cd *model.CheckData, now time.Time) state.Result {
	r := state.Result{
		AssetID: t.AssetID, Collector: t.Collector, Check: t.Check,
		Timestamp: cd.Timestamp, ReceivedAt: now, Duration: cd.Duration, Version: cd.Version,
	}
	if cd.HasResult {
		r.Data = cd.ResultJSON()
	}
	if cd.Error != nil {
		r.ErrorMessage = cd.Error.Message
		sev := int(cd.Error.Severity)
		r.ErrorSeverity = &sev
	}
	return r
}

// ErrGone is returned for a result whose asset or collector was deleted
// while it was on its way: it is refused, not retried.
var ErrGone = errors.New("the asset or its collector no longer exists")

// Item is one result of a batch.
type Item struct {
	Target Target
	Data   *model.CheckData
}

// IngestBatch stores several results as Ingest does, with one commit to
// the time-series store and one transaction in the state store for all of
// them: an appliance replaying its buffer sends thousands a second. It
// returns one error per item, nil for a stored one; an error means what it
// means for Ingest. When the batch's samples cannot be appended together,
// each item is appended on its own, so that one bad result does not refuse
// the others.
func (in *Ingester) IngestBatch(ctx context.Context, items []Item) []error {
	errs := make([]error, len(items))
	now := in.now()
	// Lock every check of the batch, in a fixed order.
	stripes := make([]int, 0, len(items))
	seen := map[int]bool{}
	for _, it := range items {
		i := in.stripe(it.Target)
		if !seen[i] {
			seen[i] = true
			stripes = append(stripes, i)
		}
	}
	sort.Ints(stripes)
	for _, i := range stripes {
		in.locks[i].Lock()
	}
	defer func() {
		for _, i := range stripes {
			in.locks[i].Unlock()
		}
	}()
	samples := make([][]tsstore.Sample, len(items))
	var all []tsstore.Sample
	for i, it := range items {
		if err := it.Data.Validate(now, model.Limits{}); err != nil {
			in.reject(ctx, it.Target, err)
			errs[i] = err
			continue
		}
		samples[i] = Samples(it.Target, it.Data)
		if len(samples[i]) == 0 {
			continue
		}
		if err := in.quota.admit(it.Target.ContainerID, samples[i], now); err != nil {
			in.reject(ctx, it.Target, err)
			errs[i] = err
			continue
		}
		all = append(all, samples[i]...)
	}
	if len(all) > 0 {
		if err := in.series.Append(ctx, all); err == nil {
			in.samplesTotal.Add(float64(len(all)))
		} else {
			for i, it := range items {
				if errs[i] != nil || len(samples[i]) == 0 {
					continue
				}
				if err := in.series.Append(ctx, samples[i]); err != nil {
					outcome := "failed"
					if errors.Is(err, tsstore.ErrConflict) || errors.Is(err, tsstore.ErrOutOfRange) {
						outcome = "rejected"
					}
					in.resultsTotal.WithLabelValues(outcome).Inc()
					errs[i] = fmt.Errorf("writing %d samples of %s/%s on asset %d to the time-series store: %w",
						len(samples[i]), it.Target.Collector, it.Target.Check, it.Target.AssetID, err)
					continue
				}
				in.samplesTotal.Add(float64(len(samples[i])))
			}
		}
	}
	puts := make([]state.ResultPut, 0, len(items))
	var stored []int
	for i, it := range items {
		if errs[i] != nil {
			continue
		}
		puts = append(puts, state.ResultPut{Result: result(it.Target, it.Data, now), Unchanged: it.Data.Unchanged, NoCount: it.Data.NoCount})
		stored = append(stored, i)
	}
	if len(puts) == 0 {
		return errs
	}
	if err := in.results.PutResults(ctx, puts); err != nil {
		// One result may fail alone (its asset was deleted meanwhile):
		// store the others one by one.
		for k, i := range stored {
			if err := in.results.PutResult(ctx, puts[k].Result, puts[k].Unchanged, puts[k].NoCount); err != nil {
				if strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
					err = fmt.Errorf("%w: %v", ErrGone, err)
					in.resultsTotal.WithLabelValues("rejected").Inc()
				} else {
					in.resultsTotal.WithLabelValues("failed").Inc()
				}
				errs[i] = err
				continue
			}
			in.resultsTotal.WithLabelValues("stored").Inc()
			in.observe(ctx, items[i].Target, items[i].Data)
		}
		return errs
	}
	in.resultsTotal.WithLabelValues("stored").Add(float64(len(stored)))
	for _, i := range stored {
		in.observe(ctx, items[i].Target, items[i].Data)
	}
	return errs
}

func (in *Ingester) lock(t Target) *sync.Mutex {
	return &in.locks[in.stripe(t)]
}

func (in *Ingester) stripe(t Target) int {
	h := fnv.New32a()
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], uint64(t.AssetID))
	h.Write(id[:])
	h.Write([]byte(t.Collector))
	h.Write([]byte{0})
	h.Write([]byte(t.Check))
	return int(h.Sum32() % uint32(len(in.locks)))
}

// Samples turns the numeric metrics of a result into time-series samples:
// metric sonde_<type>_<metric> with Sonde's fixed labels; booleans become
// 0/1; strings and lists are left to the state store.
func Samples(t Target, cd *model.CheckData) []tsstore.Sample {
	n := cd.SampleCount()
	if n == 0 {
		return nil
	}
	out := make([]tsstore.Sample, 0, n)
	ms := cd.Timestamp * 1000
	base := tsstore.SeriesKey{
		ContainerID: strconv.FormatInt(t.ContainerID, 10),
		AssetID:     strconv.FormatInt(t.AssetID, 10),
		Asset:       t.AssetName,
		Collector:   t.Collector,
		Check:       t.Check,
	}
	for _, typ := range cd.Types {
		prefix := "sonde_" + Sanitize(typ.Name) + "_"
		for _, it := range typ.Items {
			for _, m := range it.Metrics {
				v, ok := m.Value.Number()
				if !ok {
					continue
				}
				k := base
				k.Metric = prefix + Sanitize(m.Name)
				k.Item = it.Name
				out = append(out, tsstore.Sample{Key: k, T: ms, V: v})
			}
		}
	}
	return out
}

// Sanitize replaces every character outside [a-zA-Z0-9_] with '_', so a
// type or metric name can be part of a Prometheus metric name.
func Sanitize(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !validByte(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if validByte(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func validByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
