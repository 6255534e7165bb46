// Package tsstore defines the hub's time-series store: where every numeric
// metric of every check result goes, and what the Prometheus-compatible read
// API queries. The embedded implementation lives in tsstore/local; a
// remote-write implementation for a distributed TSDB can sit beside it.
package tsstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Label names every Sonde series carries, besides the metric name.
const (
	LabelContainerID = "container_id"
	LabelAssetID     = "asset_id"
	LabelAsset       = "asset"
	LabelCollector   = "collector"
	LabelCheck       = "check"
	LabelItem        = "item"
)

// ErrEmptyScope is returned when a read is asked for with a scope that
// names no container: such a read could only leak or return nothing.
var ErrEmptyScope = errors.New("query scope names no container")

// ErrConflict is wrapped by an Append error when a series already holds a
// different value at a sample's time: a result for that time was stored
// before, with other values.
var ErrConflict = errors.New("a different value is already stored for this series at this time")

// ErrOutOfRange is wrapped by an Append error when a sample's time is
// outside what the store accepts: older than its out-of-order window or
// its retention, or too far in the future.
var ErrOutOfRange = errors.New("sample time outside the range the store accepts")

// SeriesKey identifies one series: the metric name and Sonde's fixed labels.
type SeriesKey struct {
	Metric      string // already sanitised: sonde_<type>_<metric>
	ContainerID string
	AssetID     string
	Asset       string
	Collector   string
	Check       string
	Item        string
}

// Sample is one value of one series at one time.
type Sample struct {
	Key SeriesKey
	T   int64 // milliseconds since the Unix epoch
	V   float64
}

// Scope restricts a read to the series of the given containers. Every read
// method adds a container_id matcher built from it to every selector, so a
// query can never see another tenant's series, whatever its PromQL says.
type Scope struct {
	ContainerIDs []string
}

// Matcher returns the matcher that confines a read to the scope's
// containers: container_id="<id>" for one container, otherwise
// container_id=~"<id1>|<id2>|…" with every ID regex-quoted. Empty IDs are
// ignored (they would match the series without a container_id); a scope
// left with no ID is ErrEmptyScope.
func (scope Scope) Matcher() (*labels.Matcher, error) {
	m, _, err := scope.MatcherAndKey()
	return m, err
}

// MatcherAndKey returns the scope's matcher, as Matcher does, and
// the key that identifies the scope for the per-scope read limit: its
// sorted, deduplicated, non-empty container IDs, each prefixed with its
// length so that no two scopes share a key.
func (scope Scope) MatcherAndKey() (*labels.Matcher, string, error) {
	ids := make([]string, 0, len(scope.ContainerIDs))
	for _, id := range scope.ContainerIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, "", ErrEmptyScope
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
		m, err = labels.NewMatcher(labels.MatchEqual, LabelContainerID, ids[0])
	} else {
		for i, id := range ids {
			ids[i] = regexp.QuoteMeta(id)
		}
		m, err = labels.NewMatcher(labels.MatchRegexp, LabelContainerID, strings.Join(ids, "|"))
	}
	if err != nil {
		return nil, "", fmt.Errorf("building the scope matcher: %w", err)
	}
	return m, key.String(), nil
}

// Store is the hub's time-series store.
type Store interface {
	// Append stores the samples durably (in the WAL) before it returns,
	// all or none: when one is refused (ErrConflict, ErrOutOfRange) none is
	// stored. Samples that are duplicates of stored ones (same series,
	// time and value) are not an error.
	Append(ctx context.Context, samples []Sample) error
	// Query evaluates an instant PromQL query at ts.
	Query(ctx context.Context, scope Scope, query string, ts time.Time) (parser.Value, error)
	// QueryRange evaluates a range PromQL query.
	QueryRange(ctx context.Context, scope Scope, query string, start, end time.Time, step time.Duration) (parser.Value, error)
	// Series returns the label sets of the series that match any of the
	// matcher sets (each set is one selector, e.g. `up{job="x"}`).
	Series(ctx context.Context, scope Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]labels.Labels, error)
	// LabelNames returns the label names of the matching series, sorted.
	LabelNames(ctx context.Context, scope Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error)
	// LabelValues returns the values of one label of the matching series, sorted.
	LabelValues(ctx context.Context, scope Scope, name string, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error)
	// Delete removes the samples of the matching series between start and end.
	Delete(ctx context.Context, scope Scope, start, end time.Time, matchers ...*labels.Matcher) error
	// Close flushes and closes the store.
	Close() error
}
