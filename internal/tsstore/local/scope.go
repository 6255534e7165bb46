package local

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// scopedQueryable hands out queriers that add the scope matcher to every
// call. It deliberately implements only storage.Queryable, so none of the
// optional interfaces the PromQL engine probes for (cost sampling, …) can
// reach the unscoped storage.
type scopedQueryable struct {
	inner storage.Queryable
	scope *labels.Matcher
}

// Querier returns a querier of the inner storage confined to the scope.
func (q scopedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	inner, err := q.inner.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &scopedQuerier{inner: inner, scope: q.scope}, nil
}

// scopedQuerier forwards to the inner querier with the scope matcher
// appended to the matchers of every call. It implements each method of
// storage.Querier explicitly instead of embedding the inner querier, so a
// method added to the interface later cannot bypass the scope.
type scopedQuerier struct {
	inner storage.Querier
	scope *labels.Matcher
}

var _ storage.Querier = (*scopedQuerier)(nil)

// withScope returns a new slice: the scope's matcher, then the caller's.
//
// The scope's matcher comes first because the TSDB's PostingsForMatchers
// looks the matchers up in order (after moving those that subtract, such
// as l!="x", to the end, keeping the others' order) and stops as soon as
// one of them selects no series: a scope without series in a block or in
// the head then costs one postings lookup there, instead of first running
// the caller's regular expressions over every value of their labels, which
// are all tenants' values. It does not help otherwise: each matcher's
// postings are computed on their own over the whole index and only then
// intersected, so the TSDB offers no way to run a regular expression over
// the scope's series only.
func (q *scopedQuerier) withScope(ms []*labels.Matcher) []*labels.Matcher {
	out := make([]*labels.Matcher, 0, len(ms)+1)
	out = append(out, q.scope)
	return append(out, ms...)
}

// Select returns the matching series of the scope's containers.
func (q *scopedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return q.inner.Select(ctx, sortSeries, hints, q.withScope(ms)...)
}

// LabelValues returns the values of a label in the matching series of the
// scope's containers.
func (q *scopedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.inner.LabelValues(ctx, name, hints, q.withScope(ms)...)
}

// LabelNames returns the label names of the matching series of the scope's
// containers.
func (q *scopedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.inner.LabelNames(ctx, hints, q.withScope(ms)...)
}

// Close closes the inner querier.
func (q *scopedQuerier) Close() error {
	return q.inner.Close()
}
