// Package local is the hub's embedded time-series store: tsstore.Store on
// Prometheus' TSDB (write-ahead log, head block, compacted blocks on disk)
// and its PromQL engine.
//
// Every read is confined to the containers of its tsstore.Scope by a
// storage.Queryable wrapper that adds a container_id matcher to every
// Select, LabelNames and LabelValues call the PromQL engine or the metadata
// readers make, so no PromQL expression can read another tenant's series.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// Defaults of Options.
const (
	// DefaultRetention is the default of Options.Retention.
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultOutOfOrderWindow is the default of Options.OutOfOrderWindow.
	DefaultOutOfOrderWindow = 24 * time.Hour
	// DefaultQueryTimeout is the default of Options.QueryTimeout.
	DefaultQueryTimeout = 30 * time.Second
	// DefaultMaxSamples is the default of Options.MaxSamples.
	DefaultMaxSamples = 5_000_000
	// DefaultMaxConcurrentQueries is the default of Options.MaxConcurrentQueries.
	DefaultMaxConcurrentQueries = 20
	// DefaultMaxConcurrentQueriesPerScope is the default of
	// Options.MaxConcurrentQueriesPerScope.
	DefaultMaxConcurrentQueriesPerScope = 4
	// DefaultLookbackDelta is the default of Options.LookbackDelta.
	DefaultLookbackDelta = 5 * time.Minute
	// DefaultFutureTolerance is the default of Options.FutureTolerance.
	DefaultFutureTolerance = time.Hour
)

// subqueryStep is the resolution of subqueries written without a step
// (`foo[1h:]`): Prometheus' default evaluation interval.
const subqueryStep = time.Minute

// maxBlockDuration caps the time range of a compacted block, as Prometheus does.
const maxBlockDuration = 31 * 24 * time.Hour

// ErrClosed is returned by every method of a Store that has been closed.
var ErrClosed = errors.New("time-series store is closed")

// ErrTooFarInFuture is the cause of rejecting a sample whose timestamp is
// further ahead of the hub's clock than Options.FutureTolerance: accepting
// it would move the store's newest time forward and make the out-of-order
// window reject every other series' current samples as too old.
var ErrTooFarInFuture = errors.New("sample timestamp too far in the future")

// ErrInvalidSample is the cause of rejecting an Append call that holds a
// sample without a metric name or a container ID.
var ErrInvalidSample = errors.New("invalid sample")

// Options configures a Store. A zero field selects its default.
type Options struct {
	// Retention is how long samples are kept. Default 90 days.
	Retention time.Duration
	// OutOfOrderWindow is how far behind the newest sample in the store a
	// sample may be and still be accepted: appliances replay buffered
	// results after an outage, and two agents may post out of order.
	// Default 24h; a negative value accepts in-order samples only.
	OutOfOrderWindow time.Duration
	// QueryTimeout bounds the evaluation of every query and of every
	// Series, LabelNames and LabelValues call, once it has its slots.
	// Default 30s.
	QueryTimeout time.Duration
	// MaxSamples is the most samples one query may hold in memory.
	// Default 5,000,000.
	MaxSamples int
	// MaxConcurrentQueries is how many reads (Query, QueryRange, Series,
	// LabelNames, LabelValues) run at once over all scopes; further reads
	// wait for a slot until their context ends. Default 20.
	MaxConcurrentQueries int
	// MaxConcurrentQueriesPerScope is how many reads of one scope (one
	// set of container IDs, whatever its order) run at once, so that one
	// tenant cannot take every slot of MaxConcurrentQueries; further
	// reads of that scope wait until their context ends. Default 4.
	MaxConcurrentQueriesPerScope int
	// LookbackDelta is how far back an instant selector looks for the
	// latest sample of a series. Raise it above the longest check interval
	// if graphs of slow checks show gaps. Default 5m.
	LookbackDelta time.Duration
	// FutureTolerance is how far ahead of the hub's clock a sample's
	// timestamp may be. Default 1h; a negative value disables the check.
	FutureTolerance time.Duration
}

func (o Options) withDefaults() Options {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.OutOfOrderWindow == 0 {
		o.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if o.OutOfOrderWindow < 0 {
		o.OutOfOrderWindow = 0
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.MaxConcurrentQueries <= 0 {
		o.MaxConcurrentQueries = DefaultMaxConcurrentQueries
	}
	if o.MaxConcurrentQueriesPerScope <= 0 {
		o.MaxConcurrentQueriesPerScope = DefaultMaxConcurrentQueriesPerScope
	}
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = DefaultLookbackDelta
	}
	if o.FutureTolerance == 0 {
		o.FutureTolerance = DefaultFutureTolerance
	}
	return o
}

// Store is the embedded implementation of tsstore.Store. Its methods are
// safe for concurrent use.
type Store struct {
	dir    string
	opts   Options
	logger *slog.Logger
	db     *tsdb.DB
	engine *promql.Engine

	// reads bounds the running reads (MaxConcurrentQueries, and
	// MaxConcurrentQueriesPerScope of each scope).
	reads *tsstore.ReadSlots

	// mu is held for reading by every operation and for writing by Close,
	// so that Close waits for running operations and later ones fail.
	mu     sync.RWMutex
	closed bool
}

var _ tsstore.Store = (*Store)(nil)

// Open opens (creating it if needed) the store in dir and replays its
// write-ahead log. logger may be nil; reg, if not nil, receives the TSDB's
// and the PromQL engine's metrics and must not already hold them.
func Open(dir string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()

	dbOpts := tsdb.DefaultOptions()
	dbOpts.RetentionDuration = opts.Retention.Milliseconds()
	dbOpts.OutOfOrderTimeWindow = opts.OutOfOrderWindow.Milliseconds()
	dbOpts.WALCompression = compression.Snappy
	// Let blocks grow by compaction up to a tenth of the retention (at
	// most 31 days), as Prometheus does; the TSDB default keeps every
	// block at two hours, which would leave about a thousand of them.
	maxBlock := min(opts.Retention/10, maxBlockDuration)
	dbOpts.MaxBlockDuration = max(maxBlock.Milliseconds(), dbOpts.MinBlockDuration)

	db, err := tsdb.Open(dir, logger.With("component", "tsdb"), reg, dbOpts, nil)
	if err != nil {
		return nil, fmt.Errorf("opening the time-series database in %s: %w", dir, err)
	}

	engine := promql.NewEngine(promql.EngineOpts{
		Logger:        logger.With("component", "promql"),
		Reg:           reg,
		MaxSamples:    opts.MaxSamples,
		Timeout:       opts.QueryTimeout,
		LookbackDelta: opts.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return subqueryStep.Milliseconds()
		},
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               parser.NewParser(parser.Options{}),
	})

	return &Store{
		dir:    dir,
		opts:   opts,
		logger: logger,
		db:     db,
		engine: engine,
		reads:  tsstore.NewReadSlots(opts.MaxConcurrentQueries, opts.MaxConcurrentQueriesPerScope),
	}, nil
}

// Options returns the options the store runs with, defaults filled in.
func (s *Store) Options() Options {
	return s.opts
}

// AppendError reports the samples of one Append call that the store
// refused; none of the call's samples were stored. errors.Is tells the
// reasons apart: tsstore.ErrOutOfRange with storage.ErrTooOldSample (older
// than the out-of-order window), storage.ErrOutOfBounds and
// storage.ErrOutOfOrderSample (when the window is disabled) or
// ErrTooFarInFuture; tsstore.ErrConflict with
// storage.ErrDuplicateSampleForTimestamp (a different value already stored
// at that time).
type AppendError struct {
	// Rejected is how many samples were rejected.
	Rejected int
	// Total is how many samples the call held.
	Total int
	// causes holds the first rejection of each distinct reason.
	causes []error
}

// Error describes the rejections.
func (e *AppendError) Error() string {
	return fmt.Sprintf("%d of %d samples rejected: %v", e.Rejected, e.Total, errors.Join(e.causes...))
}

// Unwrap returns the first rejection of each distinct reason.
func (e *AppendError) Unwrap() []error {
	return e.causes
}

// rejectionReason returns which of the per-sample errors, those that
// reject one sample without failing the rest of its Append call, err is;
// nil if it is none of them.
func rejectionReason(err error) error {
	for _, r := range [...]error{
		storage.ErrTooOldSample,
		storage.ErrOutOfBounds,
		storage.ErrOutOfOrderSample,
		storage.ErrDuplicateSampleForTimestamp,
		ErrTooFarInFuture,
	} {
		if errors.Is(err, r) {
			return r
		}
	}
	return nil
}

func (e *AppendError) add(i int, smp *tsstore.Sample, err error) *AppendError {
	if e == nil {
		e = &AppendError{}
	}
	e.Rejected++
	reason := rejectionReason(err)
	for _, c := range e.causes {
		if errors.Is(c, reason) {
			return e
		}
	}
	kind := tsstore.ErrOutOfRange
	if errors.Is(reason, storage.ErrDuplicateSampleForTimestamp) {
		kind = tsstore.ErrConflict
	}
	e.causes = append(e.causes, fmt.Errorf("sample %d (%s of container %s at %d): %w: %w",
		i, smp.Key.Metric, smp.Key.ContainerID, smp.T, kind, err))
	return e
}

// Append stores the samples in one transaction and commits it to the
// write-ahead log before it returns: the samples survive a crash of the
// process (they are written to the operating system, which fsyncs the WAL
// at segment boundaries and on Close, as Prometheus does). Re-appending a
// stored sample with the same value is not an error. Samples the TSDB
// refuses (too old, conflicting duplicate, too far in the future) are
// reported in an *AppendError and the whole call is rolled back, as is any
// other failure: a result is stored whole or not at all.
func (s *Store) Append(ctx context.Context, samples []tsstore.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("appending samples: %w", err)
	}
	for i := range samples {
		k := &samples[i].Key
		if k.Metric == "" || k.ContainerID == "" {
			return fmt.Errorf("appending samples: sample %d has no metric name or container ID: %w", i, ErrInvalidSample)
		}
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}

	maxT := int64(0)
	checkFuture := s.opts.FutureTolerance > 0
	if checkFuture {
		maxT = time.Now().Add(s.opts.FutureTolerance).UnixMilli()
	}

	app := s.db.AppenderV2(ctx)
	b := labels.NewScratchBuilder(7)
	var (
		rejected *AppendError
		lset     labels.Labels
		ref      storage.SeriesRef
		prev     *tsstore.SeriesKey
	)
	for i := range samples {
		smp := &samples[i]
		if checkFuture && smp.T > maxT {
			rejected = rejected.add(i, smp, ErrTooFarInFuture)
			continue
		}
		// Consecutive samples of one series (a replayed backlog) share
		// their labels and series reference.
		if prev == nil || smp.Key != *prev {
			lset = seriesLabels(&b, &smp.Key)
			ref = 0
			prev = &smp.Key
		}
		r, err := app.Append(ref, lset, 0, smp.T, smp.V, nil, nil, storage.AOptions{})
		if err != nil {
			if rejectionReason(err) != nil {
				rejected = rejected.add(i, smp, err)
				continue
			}
			return errors.Join(
				fmt.Errorf("appending sample %d (%s of container %s): %w", i, smp.Key.Metric, smp.Key.ContainerID, err),
				rollback(app))
		}
		ref = r
	}
	if err := ctx.Err(); err != nil {
		return errors.Join(fmt.Errorf("appending samples: %w", err), rollback(app))
	}
	if rejected != nil {
		// All or none: a result is never half stored.
		rejected.Total = len(samples)
		return errors.Join(rejected, rollback(app))
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("committing samples: %w", err)
	}
	return nil
}

func rollback(app storage.AppenderV2) error {
	if err := app.Rollback(); err != nil {
		return fmt.Errorf("rolling back samples: %w", err)
	}
	return nil
}

// seriesLabels builds the labels of a series key. The names are added in
// sorted order, so no sort is needed; empty values are left out.
func seriesLabels(b *labels.ScratchBuilder, k *tsstore.SeriesKey) labels.Labels {
	b.Reset()
	b.Add(model.MetricNameLabel, k.Metric)
	add := func(name, value string) {
		if value != "" {
			b.Add(name, value)
		}
	}
	add(tsstore.LabelAsset, k.Asset)
	add(tsstore.LabelAssetID, k.AssetID)
	add(tsstore.LabelCheck, k.Check)
	add(tsstore.LabelCollector, k.Collector)
	add(tsstore.LabelContainerID, k.ContainerID)
	add(tsstore.LabelItem, k.Item)
	return b.Labels()
}

// CompactHead writes everything in memory (the head and the out-of-order
// head) to blocks on disk, in two-hour ranges as the TSDB itself does.
// It is meant for tests and benchmarks that measure on-disk size: the
// store compacts on its own in production.
func (s *Store) CompactHead(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}

	head := s.db.Head()
	mint, maxt := head.MinTime(), head.MaxTime()
	if mint <= maxt {
		step := tsdb.DefaultBlockDuration
		start := mint - mod(mint, step)
		if (maxt-start)/step > 10_000 {
			// Too many ranges to walk: write one block.
			if err := s.db.CompactHead(tsdb.NewRangeHead(head, mint, maxt)); err != nil {
				return fmt.Errorf("compacting the head: %w", err)
			}
		} else {
			for t := start; t <= maxt; t += step {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("compacting the head: %w", err)
				}
				if err := s.db.CompactHead(tsdb.NewRangeHead(head, t, t+step-1)); err != nil {
					return fmt.Errorf("compacting the head range starting at %d: %w", t, err)
				}
			}
		}
	}
	if err := s.db.CompactOOOHead(ctx); err != nil {
		return fmt.Errorf("compacting the out-of-order head: %w", err)
	}
	return nil
}

// mod is the non-negative remainder of a divided by b.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// DiskBytes returns the bytes of the files under the store's directory:
// blocks, write-ahead log, head chunks and out-of-order log.
func (s *Store) DiskBytes() (int64, error) {
	var total int64
	err := filepath.WalkDir(s.dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // Removed by a concurrent compaction.
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measuring the store's directory %s: %w", s.dir, err)
	}
	return total, nil
}

// Close waits for running operations, closes the PromQL engine and closes
// the database, which flushes and fsyncs the write-ahead log and writes
// the head's full chunks to disk. Closing twice is not an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if err := s.engine.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the query engine: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the time-series database: %w", err))
	}
	return errors.Join(errs...)
}
