package local

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// maxPointsPerSeries is the most points a query may ask the engine to
// compute per series at one level of evaluation: the steps of a range
// query, and the range of a subquery divided by its step. It is the limit
// Prometheus' HTTP API puts on range queries (60s resolution over a week).
const maxPointsPerSeries = 11_000

// checkQueryShape rejects, before evaluation, the queries whose shape alone
// makes them too expensive, whatever data they read: the engine holds every
// point a subquery computes for the whole of its evaluation window, and
// counts them against MaxSamples only after computing them (not at all
// for some nested subqueries), so `max_over_time(vector(1)[13h:1ms])`
// grew the process by gigabytes before failing. stmt is the prepared
// statement (durations resolved, step invariants wrapped); window is the
// range of a range query, zero for an instant query.
//
// It rejects:
//   - a subquery whose range divided by its step (one minute when it has
//     none) exceeds maxPointsPerSeries;
//   - a subquery whose evaluation window, its range plus the window of
//     the expression it is in (the range query's, the enclosing
//     subqueries'), holds more than maxSubqueryWindowPoints points at its
//     step, which the first rule alone lets nested subqueries do;
//   - subqueries that together evaluate more than MaxSamples points;
//   - a range selector longer than the retention, which no data outlives.
func (s *Store) checkQueryShape(stmt parser.Node, window time.Duration) error {
	var (
		total int64
		err   error
	)
	windowLimit := s.maxSubqueryWindowPoints()
	parser.Inspect(stmt, func(node parser.Node, path []parser.Node) error {
		switch n := node.(type) {
		case *parser.MatrixSelector:
			if n.Range > s.opts.Retention {
				err = fmt.Errorf("range selector [%s] is longer than the store's retention (%s)",
					fmtDuration(n.Range), fmtDuration(s.opts.Retention))
			}
		case *parser.SubqueryExpr:
			step := n.Step
			if step <= 0 {
				step = subqueryStep
			}
			if pts := int64(n.Range / step); pts > maxPointsPerSeries {
				err = fmt.Errorf("subquery [%s:%s] exceeds the maximum resolution of 11,000 points per series (%d points). Try a larger subquery step or a shorter range",
					fmtDuration(n.Range), fmtDuration(step), pts)
				break
			}
			w := subqueryWindow(window, path, n)
			pts := int64(w / step)
			if pts > windowLimit {
				err = fmt.Errorf("subquery [%s:%s] would be evaluated over %s, %d points per series, more than %d. Try a larger subquery step or a shorter query range",
					fmtDuration(n.Range), fmtDuration(step), fmtDuration(w), pts, windowLimit)
				break
			}
			total += pts
			if total > int64(s.opts.MaxSamples) {
				err = fmt.Errorf("the subqueries of the query would evaluate more than %d points per series. Try larger subquery steps or a shorter query range", s.opts.MaxSamples)
			}
		}
		return err
	})
	if err != nil {
		return &QueryError{Err: err}
	}
	return nil
}

// maxSubqueryWindowPoints is the most points per series one subquery may be
// evaluated at: enough for a subquery with the default step and the
// longest range the first rule allows in a range query over the whole
// retention (140,600 points for 90 days).
func (s *Store) maxSubqueryWindowPoints() int64 {
	return int64(s.opts.Retention/subqueryStep) + maxPointsPerSeries
}

// subqueryWindow returns the width of the time range the engine evaluates
// the subquery n over, path being its ancestors: n's range plus the window
// of the evaluator it runs in. That is the query's window (the range of a
// range query) widened by the range of every enclosing subquery; a
// subquery with an @ modifier is evaluated over its own range only, and the
// expression under a step-invariant node at one instant.
func subqueryWindow(window time.Duration, path []parser.Node, n *parser.SubqueryExpr) time.Duration {
	w := window
	widen := func(sq *parser.SubqueryExpr) {
		switch {
		case sq.Timestamp != nil || sq.StartOrEnd != 0:
			w = sq.Range
		case w > math.MaxInt64-sq.Range:
			// Saturated: the engine counts in milliseconds, where
			// the sum does not wrap around as it would here.
			w = math.MaxInt64
		default:
			w += sq.Range
		}
	}
	for _, p := range path {
		switch p := p.(type) {
		case *parser.StepInvariantExpr:
			w = 0
		case *parser.SubqueryExpr:
			widen(p)
		}
	}
	widen(n)
	return w
}

// fmtDuration formats d as PromQL does.
func fmtDuration(d time.Duration) string {
	return model.Duration(d).String()
}
