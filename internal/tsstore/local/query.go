package local

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// QueryError is returned by Query and QueryRange when the query cannot be
// prepared: it does not parse, it is of the wrong type for a range query,
// or its time range or step is invalid. It is the caller's mistake; its
// BadData method lets an HTTP layer that does not import this package
// answer 400 bad_data. Errors of evaluation are returned wrapped instead,
// with the PromQL engine's error types (promql.ErrQueryTimeout,
// promql.ErrQueryCanceled, promql.ErrTooManySamples, promql.ErrStorage…)
// reachable with errors.As.
type QueryError struct {
	Err error
}

// Error returns the message of the underlying error.
func (e *QueryError) Error() string {
	return e.Err.Error()
}

// Unwrap returns the underlying error, e.g. a parser.ParseErrors.
func (e *QueryError) Unwrap() error {
	return e.Err
}

// BadData reports that the error is the caller's mistake.
func (e *QueryError) BadData() bool {
	return true
}

// checkEveryN is how many series a metadata read goes through between two
// checks of its context.
const checkEveryN = 128

// acquire takes a read slot of the scope whose key is scopeKey and one of
// the store's, waiting for each until ctx ends, and returns their release.
// It fails once the store is closed; Close waits for the reads that hold
// a slot.
func (s *Store) acquire(ctx context.Context, scopeKey string) (release func(), err error) {
	releaseSlots, err := s.reads.Acquire(ctx, scopeKey)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		releaseSlots()
		return nil, ErrClosed
	}
	return func() {
		s.mu.RUnlock()
		releaseSlots()
	}, nil
}

// Query evaluates an instant PromQL query at ts over the scope's series.
// Preparation errors are *QueryError, among them the rejections of
// checkQueryShape; evaluation errors wrap the engine's.
func (s *Store) Query(ctx context.Context, scope tsstore.Scope, query string, ts time.Time) (parser.Value, error) {
	return s.eval(ctx, scope, 0, func(q storage.Queryable) (promql.Query, error) {
		return s.engine.NewInstantQuery(ctx, q, nil, query, ts)
	})
}

// QueryRange evaluates a range PromQL query over the scope's series.
// Preparation errors are *QueryError, among them a range of more than
// 11,000 steps; evaluation errors wrap the engine's.
func (s *Store) QueryRange(ctx context.Context, scope tsstore.Scope, query string, start, end time.Time, step time.Duration) (parser.Value, error) {
	if step <= 0 {
		return nil, &QueryError{Err: errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer")}
	}
	if end.Before(start) {
		return nil, &QueryError{Err: errors.New("end timestamp must not be before start time")}
	}
	if end.Sub(start)/step > maxPointsPerSeries {
		return nil, &QueryError{Err: errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")}
	}
	return s.eval(ctx, scope, end.Sub(start), func(q storage.Queryable) (promql.Query, error) {
		return s.engine.NewRangeQuery(ctx, q, nil, query, start, end, step)
	})
}

// eval prepares the query with newQuery, checks its shape (window is the
// range of a range query, zero for an instant one) and evaluates it.
func (s *Store) eval(ctx context.Context, scope tsstore.Scope, window time.Duration, newQuery func(storage.Queryable) (promql.Query, error)) (parser.Value, error) {
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return nil, err
	}
	release, err := s.acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	defer release()

	qry, err := newQuery(scopedQueryable{inner: s.db, scope: m})
	if err != nil {
		if _, ok := errors.AsType[promql.ErrQueryTimeout](err); ok {
			return nil, fmt.Errorf("preparing the query: %w", err)
		}
		if _, ok := errors.AsType[promql.ErrQueryCanceled](err); ok {
			return nil, fmt.Errorf("preparing the query: %w", err)
		}
		return nil, &QueryError{Err: err}
	}
	if err := s.checkQueryShape(qry.Statement(), window); err != nil {
		qry.Close() // Nothing was evaluated: no result to keep.
		return nil, err
	}
	// qry.Close is not called: it would hand the result's point slices
	// back to the engine's pools while the caller still reads them. The
	// garbage collector reclaims them instead.
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("evaluating the query: %w", res.Err)
	}
	return res.Value, nil
}

// querier returns a querier over [mint, maxt] confined to the scope,
// holding the read slots, a context that ends QueryTimeout after the slots
// were taken, and the function that closes the querier, ends the context
// and frees the slots.
func (s *Store) querier(ctx context.Context, scope tsstore.Scope, start, end time.Time) (context.Context, storage.Querier, func(), error) {
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return nil, nil, nil, err
	}
	release, err := s.acquire(ctx, key)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	q, err := scopedQueryable{inner: s.db, scope: m}.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		cancel()
		release()
		return nil, nil, nil, fmt.Errorf("opening a querier: %w", err)
	}
	return ctx, q, func() {
		if err := q.Close(); err != nil {
			s.logger.Warn("closing a querier", "err", err)
		}
		cancel()
		release()
	}, nil
}

// readError wraps the error of a metadata read; one caused by the end of
// its context is typed as the engine's (promql.ErrQueryTimeout or
// promql.ErrQueryCanceled) as well, so that callers classify it as they
// do a query's.
func readError(what string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", promql.ErrQueryTimeout(what), err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %w", promql.ErrQueryCanceled(what), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Series returns the label sets, sorted, of the scope's series that match
// any of the matcher sets between start and end. With no matcher set it
// returns all the scope's series. It fails with promql.ErrQueryTimeout
// after Options.QueryTimeout.
func (s *Store) Series(ctx context.Context, scope tsstore.Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]labels.Labels, error) {
	ctx, q, done, err := s.querier(ctx, scope, start, end)
	if err != nil {
		return nil, err
	}
	defer done()

	hints := &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}
	var set storage.SeriesSet
	switch len(matchers) {
	case 0:
		set = q.Select(ctx, true, hints)
	case 1:
		set = q.Select(ctx, true, hints, matchers[0]...)
	default:
		sets := make([]storage.SeriesSet, 0, len(matchers))
		for _, ms := range matchers {
			if err := ctx.Err(); err != nil {
				return nil, readError("listing series", err)
			}
			sets = append(sets, q.Select(ctx, true, hints, ms...))
		}
		set = storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	}

	var out []labels.Labels
	for i := 0; set.Next(); i++ {
		if i%checkEveryN == 0 {
			if err := ctx.Err(); err != nil {
				return nil, readError("listing series", err)
			}
		}
		// Copied: the querier's memory is released when it closes.
		out = append(out, set.At().Labels().Copy())
	}
	if err := set.Err(); err != nil {
		return nil, readError("listing series", err)
	}
	return out, nil
}

// LabelNames returns the sorted label names of the scope's series that
// match any of the matcher sets (all the scope's series with none). It
// fails with promql.ErrQueryTimeout after Options.QueryTimeout.
func (s *Store) LabelNames(ctx context.Context, scope tsstore.Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error) {
	ctx, q, done, err := s.querier(ctx, scope, start, end)
	if err != nil {
		return nil, err
	}
	defer done()

	out, err := union(ctx, matchers, func(ms []*labels.Matcher) ([]string, error) {
		names, _, err := q.LabelNames(ctx, nil, ms...)
		return names, err
	})
	if err != nil {
		return nil, readError("listing label names", err)
	}
	return out, nil
}

// LabelValues returns the sorted values of label name in the scope's
// series that match any of the matcher sets (all the scope's series with
// none). It fails with promql.ErrQueryTimeout after Options.QueryTimeout.
func (s *Store) LabelValues(ctx context.Context, scope tsstore.Scope, name string, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error) {
	ctx, q, done, err := s.querier(ctx, scope, start, end)
	if err != nil {
		return nil, err
	}
	defer done()

	out, err := union(ctx, matchers, func(ms []*labels.Matcher) ([]string, error) {
		values, _, err := q.LabelValues(ctx, name, nil, ms...)
		return values, err
	})
	if err != nil {
		return nil, readError(fmt.Sprintf("listing values of label %q", name), err)
	}
	return out, nil
}

// union calls list once per matcher set (once with none if there is no
// set) and returns the sorted union of the results, copied out of the
// querier's memory.
func union(ctx context.Context, matchers [][]*labels.Matcher, list func([]*labels.Matcher) ([]string, error)) ([]string, error) {
	if len(matchers) == 0 {
		matchers = [][]*labels.Matcher{nil}
	}
	var out []string
	for _, ms := range matchers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		vals, err := list(ms)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			out = append(out, strings.Clone(v))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Delete removes the samples between start and end of the scope's series
// that match all the matchers; with no matcher, of all the scope's series.
// The space is reclaimed when the affected blocks are next compacted.
func (s *Store) Delete(ctx context.Context, scope tsstore.Scope, start, end time.Time, matchers ...*labels.Matcher) error {
	m, err := scope.Matcher()
	if err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	ms := make([]*labels.Matcher, 0, len(matchers)+1)
	ms = append(ms, matchers...)
	ms = append(ms, m)
	if err := s.db.Delete(ctx, start.UnixMilli(), end.UnixMilli(), ms...); err != nil {
		return fmt.Errorf("deleting series: %w", err)
	}
	return nil
}
