package expr

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// Result is the outcome of a condition for one item.
type Result uint8

// The outcomes. Missing means the condition referred to a metric the item (or
// its previous value) does not have, outside an exists() guard.
const (
	False Result = iota
	True
	Missing
)

// String names the result.
func (r Result) String() string {
	switch r {
	case False:
		return "false"
	case True:
		return "true"
	case Missing:
		return "missing"
	}
	return "Result(?)"
}

// Metrics gives the values of an item's metrics by name.
type Metrics interface {
	Metric(name string) (model.Value, bool)
}

// MapMetrics is a Metrics held in a map.
type MapMetrics map[string]model.Value

// Metric returns the value of the named metric.
func (m MapMetrics) Metric(name string) (model.Value, bool) {
	v, ok := m[name]
	return v, ok
}

// ItemMetrics is a Metrics over an item's metric list, as decoded from a
// check result. Looking a name up scans the list; the evaluator remembers
// where each reference was last found, so items of one type, whose metrics
// come in the same order, are looked up with one comparison.
type ItemMetrics []model.Metric

// Metric returns the value of the named metric.
func (m ItemMetrics) Metric(name string) (model.Value, bool) {
	for i := range m {
		if m[i].Name == name {
			return m[i].Value, true
		}
	}
	return model.Value{}, false
}

var (
	_ Metrics = MapMetrics(nil)
	_ Metrics = ItemMetrics(nil)
)

// Env is what a condition is evaluated against: one item's metrics now and
// in the previous result, and the times of both results. Prev may be nil
// when there is no previous result.
type Env struct {
	Item, Prev    Metrics
	Now, PrevTime time.Time
}

// EvalError is an error found while evaluating a condition, such as a
// string compared with a number or a division by zero. Pos is the byte
// offset of the operator or function at fault.
type EvalError struct {
	Pos int
	Msg string
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("evaluating the condition at position %d: %s", e.Pos, e.Msg)
}

// errMissing travels up the tree when a metric is absent.
var errMissing = errors.New("missing metric")

// val is a value during evaluation. It has at most four word-sized fields so
// that the compiler keeps it in registers (a model.Value is 72 bytes, and
// copying those was most of the cost of evaluating). Strings and lists stay
// in the model.Value they come from (a literal, a metric) and p points to it.
type val struct {
	k model.Kind
	i int64 // an int, or a bool as 0 or 1
	f float64
	p *model.Value // strings and lists
}

func boolVal(b bool) val {
	if b {
		return val{k: model.KindBool, i: 1}
	}
	return val{k: model.KindBool}
}

func (v val) bool() bool { return v.i != 0 }

func intVal(i int64) val          { return val{k: model.KindInt, i: i} }
func floatVal(f float64) val      { return val{k: model.KindFloat, f: f} }
func (v val) isNum() bool         { return v.k == model.KindInt || v.k == model.KindFloat }
func (v val) str() string         { return v.p.Str }
func (v val) list() []model.Value { return v.p.List }

func (v val) toFloat() float64 {
	if v.k == model.KindInt {
		return float64(v.i)
	}
	return v.f
}

// fromModel makes a val of *p; p must outlive the evaluation.
func fromModel(p *model.Value) val {
	switch p.Kind {
	case model.KindInt:
		return intVal(p.Int)
	case model.KindFloat:
		return floatVal(p.F)
	case model.KindBool:
		return boolVal(p.Bool)
	}
	return val{k: p.Kind, p: p}
}

func stringVal(s string) val {
	return val{k: model.KindString, p: &model.Value{Kind: model.KindString, Str: s}}
}

// evaluator carries the environment and the first error of one evaluation,
// so that a node returns only its value.
type evaluator struct {
	env *Env
	err error
}

// fail records an evaluation error at n and returns the zero value.
func (x *evaluator) fail(n *node, format string, args ...any) val {
	if x.err == nil {
		x.err = &EvalError{Pos: n.pos, Msg: fmt.Sprintf(format, args...)}
	}
	return val{}
}

// failKind records an error about a value of the wrong kind.
func (x *evaluator) failKind(n *node, format, what string, k model.Kind) val {
	return x.fail(n, format, what, article(k))
}

// Eval evaluates the condition. A missing metric gives Missing and no error;
// an error is an *EvalError.
func (e *Expr) Eval(env *Env) (Result, error) {
	x := evaluator{env: env}
	v := x.eval(e.root)
	switch {
	case x.err == errMissing:
		return Missing, nil
	case x.err != nil:
		return False, x.err
	case v.k != model.KindBool:
		x.fail(e.root, "a condition must be true or false, but this one gave %s", article(v.k))
		return False, x.err
	case v.bool():
		return True, nil
	}
	return False, nil
}

func article(k model.Kind) string {
	if k == model.KindInt {
		return "an int"
	}
	return "a " + k.String()
}

func (x *evaluator) eval(n *node) val {
	switch n.op {
	case opLit:
		return n.lit
	case opItem:
		return x.lookup(x.env.Item, n)
	case opPrev:
		return x.lookup(x.env.Prev, n)
	case opCall:
		return x.call(n)
	case opAnd, opOr:
		return x.logic(n)
	case opNot:
		return x.not(n)
	case opNeg:
		return x.neg(n)
	}
	l := x.eval(n.args[0])
	if x.err != nil {
		return l
	}
	r := x.eval(n.args[1])
	if x.err != nil {
		return r
	}
	if n.op.isCompare() {
		return x.compare(n, l, r)
	}
	return x.arith(n, l, r)
}

func (x *evaluator) logic(n *node) val {
	l := x.eval(n.args[0])
	if x.err != nil {
		return l
	}
	if l.k != model.KindBool {
		return x.failKind(n, "%q needs true or false, not %s", opText[n.op], l.k)
	}
	if l.bool() == (n.op == opOr) {
		return l
	}
	r := x.eval(n.args[1])
	if x.err != nil {
		return r
	}
	if r.k != model.KindBool {
		return x.failKind(n, "%q needs true or false, not %s", opText[n.op], r.k)
	}
	return r
}

func (x *evaluator) not(n *node) val {
	v := x.eval(n.args[0])
	if x.err != nil {
		return v
	}
	if v.k != model.KindBool {
		return x.failKind(n, "%q needs true or false, not %s", "not", v.k)
	}
	return boolVal(!v.bool())
}

func (x *evaluator) neg(n *node) val {
	v := x.eval(n.args[0])
	if x.err != nil {
		return v
	}
	switch v.k {
	case model.KindInt:
		if v.i == math.MinInt64 {
			return x.fail(n, "integer overflow")
		}
		return intVal(-v.i)
	case model.KindFloat:
		return floatVal(-v.f)
	}
	return x.failKind(n, "%q needs a number, not %s", "-", v.k)
}

// lookup returns the value of the metric n refers to in m.
func (x *evaluator) lookup(m Metrics, n *node) val {
	if im, ok := m.(ItemMetrics); ok {
		if i := im.index(n); i >= 0 {
			return fromModel(&im[i].Value)
		}
		return x.missing()
	}
	return x.lookupSlow(m, n)
}

// lookupSlow is lookup through the Metrics interface, kept apart so that
// lookup stays small.
func (x *evaluator) lookupSlow(m Metrics, n *node) val {
	if m != nil {
		if v, ok := m.Metric(n.name); ok {
			return fromModel(&v)
		}
	}
	return x.missing()
}

func (x *evaluator) missing() val {
	if x.err == nil {
		x.err = errMissing
	}
	return val{}
}

func has(m Metrics, n *node) bool {
	switch m := m.(type) {
	case nil:
		return false
	case ItemMetrics:
		return m.index(n) >= 0
	}
	_, ok := m.Metric(n.name)
	return ok
}

// index returns where the metric n refers to is in m, or -1, trying first
// where it was found last time.
func (m ItemMetrics) index(n *node) int {
	h := int(n.hint.Load())
	if h < len(m) && m[h].Name == n.name {
		return h
	}
	for i := range m {
		if m[i].Name == n.name {
			n.hint.Store(int32(i))
			return i
		}
	}
	return -1
}

func (x *evaluator) compare(n *node, l, r val) val {
	var c int // -1, 0, 1; or 2 for unordered (NaN)
	switch {
	case l.k == model.KindInt && r.k == model.KindInt:
		c = cmp3(l.i < r.i, l.i > r.i)
	case l.isNum() && r.isNum():
		a, b := l.toFloat(), r.toFloat()
		c = cmp3(a < b, a > b)
		if a != b && c == 0 {
			c = 2
		}
	case l.k == model.KindString && r.k == model.KindString:
		c = strings.Compare(l.str(), r.str())
	case l.k == model.KindBool && r.k == model.KindBool:
		if n.op != opEq && n.op != opNe {
			return x.fail(n, "bools can only be compared with == and !=")
		}
		c = cmp3(false, l.bool() != r.bool())
	default:
		return x.fail(n, "cannot compare %s with %s", article(l.k), article(r.k))
	}
	var b bool
	switch n.op {
	case opEq:
		b = c == 0
	case opNe:
		b = c != 0
	case opLt:
		b = c == -1
	case opLe:
		b = c == -1 || c == 0
	case opGt:
		b = c == 1
	case opGe:
		b = c == 1 || c == 0
	}
	return boolVal(b)
}

func cmp3(less, more bool) int {
	if less {
		return -1
	}
	if more {
		return 1
	}
	return 0
}

func (x *evaluator) arith(n *node, l, r val) val {
	if !l.isNum() || !r.isNum() {
		bad := l
		if l.isNum() {
			bad = r
		}
		return x.failKind(n, "%q needs numbers, not %s", opText[n.op], bad.k)
	}
	if l.k == model.KindInt && r.k == model.KindInt && n.op != opDiv {
		a, b := l.i, r.i
		var c int64
		switch n.op {
		case opAdd:
			c = a + b
			if (c > a) != (b > 0) {
				return x.fail(n, "integer overflow")
			}
		case opSub:
			c = a - b
			if (c < a) != (b > 0) {
				return x.fail(n, "integer overflow")
			}
		case opMul:
			if a != 0 && b != 0 {
				c = a * b
				if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
					return x.fail(n, "integer overflow")
				}
			}
		case opMod:
			if b == 0 {
				return x.fail(n, "division by zero")
			}
			if b != -1 {
				c = a % b
			}
		}
		return intVal(c)
	}
	a, b := l.toFloat(), r.toFloat()
	var f float64
	switch n.op {
	case opAdd:
		f = a + b
	case opSub:
		f = a - b
	case opMul:
		f = a * b
	default:
		if b == 0 {
			return x.fail(n, "division by zero")
		}
		if n.op == opMod {
			f = math.Mod(a, b)
		} else {
			f = a / b
		}
	}
	return floatVal(f)
}

func (x *evaluator) call(n *node) val {
	switch n.fn {
	case fnExists:
		a := n.args[0]
		m := x.env.Item
		if a.op == opPrev {
			m = x.env.Prev
		}
		return boolVal(has(m, a))
	case fnRate:
		return x.rate(n)
	case fnMin, fnMax:
		return x.minMax(n)
	}
	v := x.eval(n.args[0])
	if x.err != nil {
		return v
	}
	switch n.fn {
	case fnAbs:
		switch v.k {
		case model.KindInt:
			if v.i == math.MinInt64 {
				return x.fail(n, "integer overflow")
			}
			if v.i < 0 {
				v.i = -v.i
			}
			return v
		case model.KindFloat:
			return floatVal(math.Abs(v.f))
		}
		return x.failKind(n, "%s needs a number, not %s", "abs", v.k)
	case fnLen:
		switch v.k {
		case model.KindString:
			return intVal(int64(utf8.RuneCountInString(v.str())))
		case model.KindList:
			return intVal(int64(len(v.list())))
		}
		return x.failKind(n, "%s needs a string or a list, not %s", "len", v.k)
	case fnLower, fnUpper:
		if v.k != model.KindString {
			return x.failKind(n, "%s needs a string, not %s", fnName[n.fn], v.k)
		}
		if n.fn == fnLower {
			return stringVal(strings.ToLower(v.str()))
		}
		return stringVal(strings.ToUpper(v.str()))
	case fnMatch:
		if v.k != model.KindString {
			return x.failKind(n, "%s needs a string, not %s", "match", v.k)
		}
		return boolVal(n.re.MatchString(v.str()))
	case fnContains:
		y := x.eval(n.args[1])
		if x.err != nil {
			return y
		}
		switch v.k {
		case model.KindString:
			if y.k != model.KindString {
				return x.failKind(n, "%s needs a string to look for in a string, not %s", "contains", y.k)
			}
			return boolVal(strings.Contains(v.str(), y.str()))
		case model.KindList:
			for i := range v.list() {
				if equal(fromModel(&v.list()[i]), y) {
					return boolVal(true)
				}
			}
			return boolVal(false)
		}
		return x.failKind(n, "%s needs a string or a list, not %s", "contains", v.k)
	}
	return x.fail(n, "unknown function")
}

// equal reports whether two scalars are equal; numbers compare by value.
func equal(a, b val) bool {
	switch {
	case a.k == model.KindInt && b.k == model.KindInt:
		return a.i == b.i
	case a.isNum() && b.isNum():
		return a.toFloat() == b.toFloat()
	case a.k != b.k:
		return false
	case a.k == model.KindString:
		return a.str() == b.str()
	case a.k == model.KindBool:
		return a.bool() == b.bool()
	}
	return false
}

func (x *evaluator) minMax(n *node) val {
	var best val
	for i, a := range n.args {
		v := x.eval(a)
		if x.err != nil {
			return v
		}
		if !v.isNum() {
			return x.failKind(n, "%s needs numbers, not %s", fnName[n.fn], v.k)
		}
		if i == 0 {
			best = v
			continue
		}
		if best.k == model.KindInt && v.k == model.KindInt {
			if (n.fn == fnMin) == (v.i < best.i) {
				best = v
			}
			continue
		}
		f, g := best.toFloat(), v.toFloat()
		if n.fn == fnMin {
			best = floatVal(math.Min(f, g))
		} else {
			best = floatVal(math.Max(f, g))
		}
	}
	return best
}

func (x *evaluator) rate(n *node) val {
	ref := n.args[0]
	cur := x.lookup(x.env.Item, ref)
	old := x.lookup(x.env.Prev, ref)
	if x.err != nil {
		return cur
	}
	if !cur.isNum() || !old.isNum() {
		bad := cur
		if cur.isNum() {
			bad = old
		}
		return x.failKind(n, "%s needs a number, not %s", "rate", bad.k)
	}
	dt := x.env.Now.Sub(x.env.PrevTime).Seconds()
	if x.env.PrevTime.IsZero() || dt <= 0 {
		return x.fail(n, "rate needs the previous result to be older than the current one")
	}
	var d float64
	if cur.k == model.KindInt && old.k == model.KindInt {
		d = float64(cur.i - old.i)
	} else {
		d = cur.toFloat() - old.toFloat()
	}
	return floatVal(d / dt)
}
