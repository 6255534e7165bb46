package expr

// The reference evaluator: the straightforward tree walk the package had
// before conditions were compiled, kept to check the compiled evaluator
// against (TestDifferential, FuzzEval).

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// rval is a value during evaluation. It has at most four word-sized fields so
// that the compiler keeps it in registers (a model.Value is 72 bytes, and
// copying those was most of the cost of evaluating). Strings and lists stay
// in the model.Value they come from (a literal, a metric) and p points to it.
type rval struct {
	k model.Kind
	i int64 // an int, or a bool as 0 or 1
	f float64
	p *model.Value // strings and lists
}

func rBool(b bool) rval {
	if b {
		return rval{k: model.KindBool, i: 1}
	}
	return rval{k: model.KindBool}
}

func (v rval) bool() bool { return v.i != 0 }

func rInt(i int64) rval            { return rval{k: model.KindInt, i: i} }
func rFloat(f float64) rval        { return rval{k: model.KindFloat, f: f} }
func (v rval) isNum() bool         { return v.k == model.KindInt || v.k == model.KindFloat }
func (v rval) str() string         { return v.p.Str }
func (v rval) list() []model.Value { return v.p.List }

func (v rval) toFloat() float64 {
	if v.k == model.KindInt {
		return float64(v.i)
	}
	return v.f
}

// rFromModel makes a rval of *p; p must outlive the evaluation.
func rFromModel(p *model.Value) rval {
	switch p.Kind {
	case model.KindInt:
		return rInt(p.Int)
	case model.KindFloat:
		return rFloat(p.F)
	case model.KindBool:
		return rBool(p.Bool)
	}
	return rval{k: p.Kind, p: p}
}

func rString(s string) rval {
	return rval{k: model.KindString, p: &model.Value{Kind: model.KindString, Str: s}}
}

// refEval carries the environment and the first error of one evaluation,
// so that a node returns only its value.
type refEval struct {
	env *Env
	err error
}

// fail records an evaluation error at n and returns the zero value.
func (x *refEval) fail(n *node, format string, args ...any) rval {
	if x.err == nil {
		x.err = &EvalError{Pos: n.pos, Msg: fmt.Sprintf(format, args...)}
	}
	return rval{}
}

// failKind records an error about a value of the wrong kind.
func (x *refEval) failKind(n *node, format, what string, k model.Kind) rval {
	return x.fail(n, format, what, article(k))
}

// Eval evaluates the condition. A missing metric gives Missing and no error;
// an error is an *EvalError.
func refEvalExpr(e *Expr, env *Env) (Result, error) {
	x := refEval{env: env}
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

func (x *refEval) eval(n *node) rval {
	switch n.op {
	case opLit:
		return rFromModel(&n.val)
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

func (x *refEval) logic(n *node) rval {
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

func (x *refEval) not(n *node) rval {
	v := x.eval(n.args[0])
	if x.err != nil {
		return v
	}
	if v.k != model.KindBool {
		return x.failKind(n, "%q needs true or false, not %s", "not", v.k)
	}
	return rBool(!v.bool())
}

func (x *refEval) neg(n *node) rval {
	v := x.eval(n.args[0])
	if x.err != nil {
		return v
	}
	switch v.k {
	case model.KindInt:
		if v.i == math.MinInt64 {
			return x.fail(n, "integer overflow")
		}
		return rInt(-v.i)
	case model.KindFloat:
		return rFloat(-v.f)
	}
	return x.failKind(n, "%q needs a number, not %s", "-", v.k)
}

// lookup returns the value of the metric n refers to in m.
func (x *refEval) lookup(m Metrics, n *node) rval {
	if im, ok := m.(ItemMetrics); ok {
		if i := refIndex(im, n); i >= 0 {
			return rFromModel(&im[i].Value)
		}
		return x.missing()
	}
	return x.lookupSlow(m, n)
}

// lookupSlow is lookup through the Metrics interface, kept apart so that
// lookup stays small.
func (x *refEval) lookupSlow(m Metrics, n *node) rval {
	if m != nil {
		if v, ok := m.Metric(n.name); ok {
			return rFromModel(&v)
		}
	}
	return x.missing()
}

func (x *refEval) missing() rval {
	if x.err == nil {
		x.err = errMissing
	}
	return rval{}
}

func refHas(m Metrics, n *node) bool {
	switch m := m.(type) {
	case nil:
		return false
	case ItemMetrics:
		return refIndex(m, n) >= 0
	}
	_, ok := m.Metric(n.name)
	return ok
}

// refIndex returns where the metric n refers to is in m, or -1, by a plain scan.
func refIndex(m ItemMetrics, n *node) int {
	for i := range m {
		if m[i].Name == n.name {
			return i
		}
	}
	return -1
}

func (x *refEval) compare(n *node, l, r rval) rval {
	var c int // -1, 0, 1; or 2 for unordered (NaN)
	switch {
	case l.k == model.KindInt && r.k == model.KindInt:
		c = refCmp3(l.i < r.i, l.i > r.i)
	case l.isNum() && r.isNum():
		a, b := l.toFloat(), r.toFloat()
		c = refCmp3(a < b, a > b)
		if a != b && c == 0 {
			c = 2
		}
	case l.k == model.KindString && r.k == model.KindString:
		c = strings.Compare(l.str(), r.str())
	case l.k == model.KindBool && r.k == model.KindBool:
		if n.op != opEq && n.op != opNe {
			return x.fail(n, "bools can only be compared with == and !=")
		}
		c = refCmp3(false, l.bool() != r.bool())
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
	return rBool(b)
}

func refCmp3(less, more bool) int {
	if less {
		return -1
	}
	if more {
		return 1
	}
	return 0
}

func (x *refEval) arith(n *node, l, r rval) rval {
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
		return rInt(c)
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
	return rFloat(f)
}

func (x *refEval) call(n *node) rval {
	switch n.fn {
	case fnExists:
		a := n.args[0]
		m := x.env.Item
		if a.op == opPrev {
			m = x.env.Prev
		}
		return rBool(refHas(m, a))
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
			return rFloat(math.Abs(v.f))
		}
		return x.failKind(n, "%s needs a number, not %s", "abs", v.k)
	case fnLen:
		switch v.k {
		case model.KindString:
			return rInt(int64(utf8.RuneCountInString(v.str())))
		case model.KindList:
			return rInt(int64(len(v.list())))
		}
		return x.failKind(n, "%s needs a string or a list, not %s", "len", v.k)
	case fnLower, fnUpper:
		if v.k != model.KindString {
			return x.failKind(n, "%s needs a string, not %s", fnName[n.fn], v.k)
		}
		if n.fn == fnLower {
			return rString(strings.ToLower(v.str()))
		}
		return rString(strings.ToUpper(v.str()))
	case fnMatch:
		if v.k != model.KindString {
			return x.failKind(n, "%s needs a string, not %s", "match", v.k)
		}
		return rBool(n.re.MatchString(v.str()))
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
			return rBool(strings.Contains(v.str(), y.str()))
		case model.KindList:
			for i := range v.list() {
				if refEqual(rFromModel(&v.list()[i]), y) {
					return rBool(true)
				}
			}
			return rBool(false)
		}
		return x.failKind(n, "%s needs a string or a list, not %s", "contains", v.k)
	}
	return x.fail(n, "unknown function")
}

// equal reports whether two scalars are equal; numbers compare by value.
func refEqual(a, b rval) bool {
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

func (x *refEval) minMax(n *node) rval {
	var best rval
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
			best = rFloat(math.Min(f, g))
		} else {
			best = rFloat(math.Max(f, g))
		}
	}
	return best
}

func (x *refEval) rate(n *node) rval {
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
	return rFloat(d / dt)
}
