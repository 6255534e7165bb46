package local

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// scopeMatcher returns the matcher that confines a read to the scope's
// containers: container_id="<id>" for one container, otherwise
// container_id=~"<id1>|<id2>|…" with every ID regex-quoted. Empty IDs are
// ignored (they would match the series without a container_id); a scope
// left with no ID is tsstore.ErrEmptyScope.
func scopeMatcher(scope tsstore.Scope) (*labels.Matcher, error) {
	m, _, err := scopeMatcherAndKey(scope)
	return m, err
}

// scopeMatcherAndKey returns the scope's matcher, as scopeMatcher does, and
// the key that identifies the scope for the per-scope read limit: its
// sorted, deduplicated, non-empty container IDs, each prefixed with its
// length so that no two scopes share a key.
func scopeMatcherAndKey(scope tsstore.Scope) (*labels.Matcher, string, error) {
	ids := make([]string, 0, len(scope.ContainerIDs))
	for _, id := range scope.ContainerIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, "", tsstore.ErrEmptyScope
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	var key strings.Builder
	for _, id := range ids {
		key.WriteString(strconv.Itoa(len(id)))
		key.WriteByte(':')
		key.WriteString(id)
	}

	var (
		m   *labels.Matcher
		err error
	)
	if len(ids) == 1 {
		m, err = labels.NewMatcher(labels.MatchEqual, tsstore.LabelContainerID, ids[0])
	} else {
		for i, id := range ids {
			ids[i] = regexp.QuoteMeta(id)
		}
		m, err = labels.NewMatcher(labels.MatchRegexp, tsstore.LabelContainerID, strings.Join(ids, "|"))
	}
	if err != nil {
		return nil, "", fmt.Errorf("building the scope matcher: %w", err)
	}
	return m, key.String(), nil
}

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
