package expr

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
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
// check result; so is a *ItemMetrics (see Env). Looking a name up scans the list; the evaluator remembers in
// the Env where each name was last found, so that items of one type, whose
// metrics come in the same order, are looked up with one comparison.
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
//
// Eval also keeps in the Env where it found each metric in an ItemMetrics,
// so the cheapest way to evaluate conditions over the items of a type is to
// reuse one Env, setting its fields for each item: metrics then come in the
// same order and are found at the first try. Any number of Evals may use one
// Env at the same time, but the Env must not be changed or copied while one
// is running.
//
// Storing an ItemMetrics in Item or Prev allocates (a slice does not fit in
// an interface). To reuse an Env without allocating, point Item and Prev at
// two ItemMetrics variables once and set those for each item; a nil or empty
// list is treated like a nil Metrics:
//
//	var cur, old expr.ItemMetrics
//	env := expr.Env{Item: &cur, Prev: &old, Now: now, PrevTime: prevTime}
//	for _, it := range items {
//		cur, old = it.Metrics, prevMetrics[it.Name] // old nil if none
//		r, err := cond.Eval(&env)
//		...
//	}
type Env struct {
	Item, Prev    Metrics
	Now, PrevTime time.Time

	// Byte slotOf(name) of hints (byte s&3 of word s>>2) is where a metric
	// of that name was last found in an ItemMetrics, a guess that is always
	// checked (255: not kept). Read and written atomically, so that
	// concurrent Evals on one Env do not race.
	hints [hintSlots / 4]uint32
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
// that the compiler keeps it in registers (a model.Value is 72 bytes, and a
// struct of more than four fields or 32 bytes is copied through memory).
// Strings and lists stay in the model.Value they come from (a literal, a
// metric) and p points to it.
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

// stringVal makes a val of a string built during evaluation.
func stringVal(s string) val {
	return val{k: model.KindString, p: &model.Value{Kind: model.KindString, Str: s}}
}

// Comparisons are evaluated as an outcome -1, 0, 1 or 2 (unordered: a NaN),
// and a mask of the outcomes for which the comparison is true, bit c+1.
const (
	cmpLess    = 1 << 0
	cmpEqual   = 1 << 1
	cmpGreater = 1 << 2
	cmpNaN     = 1 << 3
)

func cmpMask(o op) uint8 {
	switch o {
	case opEq:
		return cmpEqual
	case opNe:
		return cmpLess | cmpGreater | cmpNaN
	case opLt:
		return cmpLess
	case opLe:
		return cmpLess | cmpEqual
	case opGt:
		return cmpGreater
	case opGe:
		return cmpGreater | cmpEqual
	}
	return 0
}

// mirror turns a mask for "a OP b" into the mask for "b OP a".
func mirror(m uint8) uint8 {
	return m&(cmpEqual|cmpNaN) | (m&cmpLess)<<2 | (m&cmpGreater)>>2
}

func outcome(mask uint8, c int) val { return boolVal(mask>>uint(c+1)&1 != 0) }

// hintSlots is the size of Env's table of where metrics were last found.
// The table holds a byte a slot, four to a word.
const hintSlots = 256

// slotNames gives the first hintSlots metric names that conditions refer to
// a slot each, in the order they are parsed, so that the names of the
// conditions of a process (a few dozen, typically) do not share hint slots;
// later names are hashed into the table. It is bounded by hintSlots names.
var slotNames struct {
	sync.Mutex
	m map[string]uint8
}

// slotOf is the slot of Env.hints for a metric name.
func slotOf(name string) uint8 {
	slotNames.Lock()
	defer slotNames.Unlock()
	if s, ok := slotNames.m[name]; ok {
		return s
	}
	if len(slotNames.m) < hintSlots {
		if slotNames.m == nil {
			slotNames.m = make(map[string]uint8)
		}
		s := uint8(len(slotNames.m))
		slotNames.m[strings.Clone(name)] = s
		return s
	}
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return uint8(h % hintSlots)
}

// cop is the operation of a compiled node.
type cop uint8

const (
	cLit        cop = iota + 1
	cItem           // item.<name>
	cPrev           // prev.<name>
	cAnd            // args[0] and args[1]
	cOr             // args[0] or args[1]
	cNot            // not args[0]
	cNeg            // -args[0]
	cCmp            // args[0] OP args[1]
	cCmpRefNum      // a metric reference (name, slot, prev) OP the number lit
	cCmpRefStr      // a metric reference (name, slot, prev) OP the string lit
	cCmpCaseStr     // lower(args[0]) or upper(args[0]) OP the string lit
	cCmpNum         // args[0] OP the number lit
	cArith          // args[0] OP args[1], + - * / %
	cArithLeaf      // cArith of literals and metric references
	cExists         // exists(args[0])
	cRate           // rate(args[0])
	cMinMax         // min(args...), max(args...)
	cCall           // the other functions
)

// code is a node compiled for evaluation: the common shapes are fused into
// one node (a metric compared with a literal), and what can be worked out
// from the text is worked out at Parse. Like node it is immutable once
// built.
type code struct {
	op      cop
	mask    uint8 // comparisons: the outcomes that make it true
	prev    bool  // references: prev.<name> rather than item.<name>
	flipped bool  // cCmpRef*: the literal is written on the left
	slot    uint8 // references: slotOf(name)
	name    string
	lit     val      // cLit, cCmpRef*
	match   *matcher // match()
	n       *node    // the source: position, operator, function, pattern
	args    []*code
}

// compile compiles the checked syntax tree n.
func compile(n *node) *code {
	c := &code{n: n}
	for _, a := range n.args {
		c.args = append(c.args, compile(a))
	}
	switch n.op {
	case opLit:
		c.op = cLit
		c.lit = fromModel(&n.val)
	case opItem, opPrev:
		c.op = cItem
		if n.op == opPrev {
			c.op = cPrev
		}
		c.setRef(n)
	case opAnd:
		c.op = cAnd
	case opOr:
		c.op = cOr
	case opNot:
		c.op = cNot
	case opNeg:
		c.op = cNeg
	case opEq, opNe, opLt, opLe, opGt, opGe:
		c.op = cCmp
		c.mask = cmpMask(n.op)
		l, r := n.args[0], n.args[1]
		switch {
		case isRef(l) && r.op == opLit:
			c.fuse(l, r)
		case l.op == opLit && isRef(r):
			c.fuse(r, l)
			c.flipped = true
			c.mask = mirror(c.mask)
		case isCase(l) && r.op == opLit && r.val.Kind == model.KindString:
			c.fuseCase(l, r)
		case l.op == opLit && l.val.Kind == model.KindString && isCase(r):
			c.fuseCase(r, l)
			c.flipped = true
			c.mask = mirror(c.mask)
		case isNumLit(r):
			c.op = cCmpNum
			c.lit = fromModel(&r.val)
			c.args = c.args[:1]
		case isNumLit(l):
			c.op = cCmpNum
			c.lit = fromModel(&l.val)
			c.args = c.args[1:]
			c.flipped = true
			c.mask = mirror(c.mask)
		}
	case opAdd, opSub, opMul, opDiv, opMod:
		c.op = cArith
		if isLeaf(n.args[0]) && isLeaf(n.args[1]) {
			c.op = cArithLeaf
		}
	case opCall:
		switch n.fn {
		case fnExists:
			c.op = cExists
		case fnRate:
			c.op = cRate
		case fnMin, fnMax:
			c.op = cMinMax
		case fnMatch:
			c.op = cCall
			c.match = newMatcher(n.re)
		default:
			c.op = cCall
		}
	}
	return c
}

func isRef(n *node) bool { return n.op == opItem || n.op == opPrev }

func isLeaf(n *node) bool { return isRef(n) || n.op == opLit }

func isNumLit(n *node) bool {
	return n.op == opLit && (n.val.Kind == model.KindInt || n.val.Kind == model.KindFloat)
}

func isCase(n *node) bool {
	return n.op == opCall && (n.fn == fnLower || n.fn == fnUpper) && len(n.args) == 1
}

// fuseCase makes c, a comparison of lower(x) or upper(x) with the string
// lit, one node that compares without building the converted string when x
// is ASCII. c.n stays the comparison; args[0] is x and its parent the call.
func (c *code) fuseCase(call, lit *node) {
	c.op = cCmpCaseStr
	c.lit = fromModel(&lit.val)
	c.args = []*code{compile(call.args[0]), {n: call}}
}

func (c *code) setRef(ref *node) {
	c.prev = ref.op == opPrev
	c.name = ref.name
	c.slot = slotOf(ref.name)
}

// fuse makes c, a comparison of ref with lit, one node if lit is a number or
// a string.
func (c *code) fuse(ref, lit *node) {
	switch lit.val.Kind {
	case model.KindInt, model.KindFloat:
		c.op = cCmpRefNum
	case model.KindString:
		c.op = cCmpRefStr
	default:
		return
	}
	c.setRef(ref)
	c.lit = fromModel(&lit.val)
	c.args = nil
}

// evaluator carries the environment and the first error of one evaluation,
// so that a node returns only its value. Evaluation stops at the first error
// or missing metric.
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
	v := x.eval(e.code)
	if x.err == nil && v.k == model.KindBool {
		return Result(v.i), nil // False or True
	}
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

func (x *evaluator) eval(c *code) val {
	switch c.op {
	case cLit:
		return c.lit
	case cItem:
		return x.lookup(x.env.Item, c)
	case cPrev:
		return x.lookup(x.env.Prev, c)
	case cCmpRefNum:
		return x.cmpRefNum(c)
	case cCmpRefStr:
		return x.cmpRefStr(c)
	case cCmpCaseStr:
		return x.cmpCaseStr(c)
	case cAnd, cOr:
		return x.logic(c)
	case cNot:
		return x.not(c)
	case cNeg:
		return x.neg(c)
	case cExists:
		a := c.args[0]
		m := x.env.Item
		if a.prev {
			m = x.env.Prev
		}
		return boolVal(x.has(m, a))
	case cRate:
		return x.rate(c)
	case cMinMax:
		return x.minMax(c)
	case cCall:
		return x.call(c)
	case cCmpNum:
		v := x.eval(c.args[0])
		if x.err != nil {
			return v
		}
		return x.cmpNum(c, v)
	case cArithLeaf:
		l := x.leaf(c.args[0])
		if x.err != nil {
			return l
		}
		r := x.leaf(c.args[1])
		if x.err != nil {
			return r
		}
		return x.arith(c.n, l, r)
	}
	l := x.operand(c.args[0])
	if x.err != nil {
		return l
	}
	r := x.operand(c.args[1])
	if x.err != nil {
		return r
	}
	if c.op == cCmp {
		return x.compare(c.n, c.mask, l, r)
	}
	return x.arith(c.n, l, r)
}

// operand evaluates a, the operand of a node: literals and references,
// most operands, without going through eval's switch.
func (x *evaluator) operand(a *code) val {
	switch a.op {
	case cLit:
		return a.lit
	case cItem, cPrev:
		return x.ref(a)
	}
	return x.eval(a)
}

// ref returns the value of the reference of c (a cItem, cPrev or cCmpRef*).
func (x *evaluator) ref(c *code) val {
	m := x.env.Item
	if c.prev {
		m = x.env.Prev
	}
	return x.lookup(m, c)
}

// leaf evaluates a, a literal or a metric reference.
func (x *evaluator) leaf(a *code) val {
	if a.op == cLit {
		return a.lit
	}
	return x.ref(a)
}

func (x *evaluator) cmpRefNum(c *code) val {
	v := x.ref(c)
	if x.err != nil {
		return v
	}
	return x.cmpNum(c, v)
}

// cmpNum compares v with the number literal of c, a cCmpRefNum or cCmpNum.
func (x *evaluator) cmpNum(c *code, v val) val {
	switch {
	case v.k == model.KindInt && c.lit.k == model.KindInt:
		return outcome(c.mask, cmp3(v.i < c.lit.i, v.i > c.lit.i))
	case v.isNum():
		a, b := v.toFloat(), c.lit.toFloat()
		o := cmp3(a < b, a > b)
		if a != b && o == 0 {
			o = 2
		}
		return outcome(c.mask, o)
	}
	return x.compareSlow(c, v)
}

func (x *evaluator) cmpRefStr(c *code) val {
	v := x.ref(c)
	if x.err != nil {
		return v
	}
	if v.k == model.KindString {
		return outcome(c.mask, strings.Compare(v.str(), c.lit.str()))
	}
	return x.compareSlow(c, v)
}

func (x *evaluator) cmpCaseStr(c *code) val {
	v := x.operand(c.args[0])
	if x.err != nil {
		return v
	}
	call := c.args[1].n
	if v.k != model.KindString {
		return x.failKind(call, "%s needs a string, not %s", fnName[call.fn], v.k)
	}
	return outcome(c.mask, compareCase(v.str(), c.lit.str(), call.fn == fnUpper))
}

// compareCase is strings.Compare(strings.ToLower(s), t), or ToUpper if
// upper, without building the converted string when s is ASCII.
func compareCase(s, t string, upper bool) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			if upper {
				return strings.Compare(strings.ToUpper(s), t)
			}
			return strings.Compare(strings.ToLower(s), t)
		}
	}
	lo, hi, delta := byte('A'), byte('Z'), byte('a'-'A')
	if upper {
		lo, hi, delta = 'a', 'z', -delta
	}
	for i := 0; i < len(s) && i < len(t); i++ {
		a := s[i]
		if lo <= a && a <= hi {
			a += delta
		}
		if a != t[i] {
			return cmp3(a < t[i], true)
		}
	}
	return cmp3(len(s) < len(t), len(s) > len(t))
}

// compareSlow compares the value v with the literal of c when the
// fused comparison c has no fast path for its kind: it gives the errors.
func (x *evaluator) compareSlow(c *code, v val) val {
	mask := cmpMask(c.n.op)
	if c.flipped {
		return x.compare(c.n, mask, c.lit, v)
	}
	return x.compare(c.n, mask, v, c.lit)
}

func (x *evaluator) logic(c *code) val {
	l := x.operand(c.args[0])
	if x.err != nil {
		return l
	}
	if l.k != model.KindBool {
		return x.failKind(c.n, "%q needs true or false, not %s", opText[c.n.op], l.k)
	}
	if l.bool() == (c.op == cOr) {
		return l
	}
	r := x.operand(c.args[1])
	if x.err != nil {
		return r
	}
	if r.k != model.KindBool {
		return x.failKind(c.n, "%q needs true or false, not %s", opText[c.n.op], r.k)
	}
	return r
}

func (x *evaluator) not(c *code) val {
	v := x.operand(c.args[0])
	if x.err != nil {
		return v
	}
	if v.k != model.KindBool {
		return x.failKind(c.n, "%q needs true or false, not %s", "not", v.k)
	}
	return boolVal(!v.bool())
}

func (x *evaluator) neg(c *code) val {
	v := x.operand(c.args[0])
	if x.err != nil {
		return v
	}
	switch v.k {
	case model.KindInt:
		if v.i == math.MinInt64 {
			return x.fail(c.n, "integer overflow")
		}
		return intVal(-v.i)
	case model.KindFloat:
		return floatVal(-v.f)
	}
	return x.failKind(c.n, "%q needs a number, not %s", "-", v.k)
}

// lookup returns the value of the metric c refers to in m.
func (x *evaluator) lookup(m Metrics, c *code) val {
	var im ItemMetrics
	switch t := m.(type) {
	case ItemMetrics:
		im = t
	case *ItemMetrics:
		if t != nil {
			im = *t
		}
	default:
		return x.lookupSlow(m, c.name)
	}
	// index, by hand so that it is not a call.
	w := &x.env.hints[c.slot>>2]
	shift := uint(c.slot&3) * 8
	i := int(atomic.LoadUint32(w) >> shift & 0xff)
	if i >= len(im) || im[i].Name != c.name {
		if i = scan(im, c.name, w, shift); i < 0 {
			return x.missing()
		}
	}
	return fromModel(&im[i].Value)
}

// lookupSlow is lookup through the Metrics interface, kept apart so that
// lookup stays small.
func (x *evaluator) lookupSlow(m Metrics, name string) val {
	if m != nil {
		if v, ok := m.Metric(name); ok {
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

func (x *evaluator) has(m Metrics, c *code) bool {
	switch m := m.(type) {
	case nil:
		return false
	case ItemMetrics:
		return x.index(m, c) >= 0
	case *ItemMetrics:
		return m != nil && x.index(*m, c) >= 0
	}
	_, ok := m.Metric(c.name)
	return ok
}

// index returns where the metric c refers to is in m, or -1, trying first
// where a metric of its slot was found last time.
func (x *evaluator) index(m ItemMetrics, c *code) int {
	w := &x.env.hints[c.slot>>2]
	shift := uint(c.slot&3) * 8
	if i := int(atomic.LoadUint32(w) >> shift & 0xff); i < len(m) && m[i].Name == c.name {
		return i
	}
	return scan(m, c.name, w, shift)
}

// scan is the slow path of index: it looks name up in m and keeps where it
// found it in byte shift/8 of the hint word w.
func scan(m ItemMetrics, name string, w *uint32, shift uint) int {
	for i := range m {
		if m[i].Name == name {
			if i < 255 {
				for {
					old := atomic.LoadUint32(w)
					h := old&^(0xff<<shift) | uint32(i)<<shift
					if h == old || atomic.CompareAndSwapUint32(w, old, h) {
						break
					}
				}
			}
			return i
		}
	}
	return -1
}

func (x *evaluator) compare(n *node, mask uint8, l, r val) val {
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
	return outcome(mask, c)
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

// call evaluates abs, len, lower, upper, match and contains.
func (x *evaluator) call(c *code) val {
	n := c.n
	v := x.operand(c.args[0])
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
		return boolVal(c.match.MatchString(v.str()))
	case fnContains:
		y := x.operand(c.args[1])
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
			l := v.list()
			for i := range l {
				if equal(fromModel(&l[i]), y) {
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

func (x *evaluator) minMax(c *code) val {
	n := c.n
	var best val
	for i, a := range c.args {
		v := x.operand(a)
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

func (x *evaluator) rate(c *code) val {
	ref := c.args[0]
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
		return x.failKind(c.n, "%s needs a number, not %s", "rate", bad.k)
	}
	dt := x.env.Now.Sub(x.env.PrevTime).Seconds()
	if x.env.PrevTime.IsZero() || dt <= 0 {
		return x.fail(c.n, "rate needs the previous result to be older than the current one")
	}
	var d float64
	if cur.k == model.KindInt && old.k == model.KindInt {
		d = float64(cur.i - old.i)
	} else {
		d = cur.toFloat() - old.toFloat()
	}
	return floatVal(d / dt)
}
