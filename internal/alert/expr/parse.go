// Package expr is the expression language of Sonde's alert conditions: a
// small, loop-free language evaluated once per item of a type when a check
// result arrives. docs/CONDITIONS.md describes it for users.
package expr

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// Limits on a condition, so that parsing and evaluating one has a bounded cost.
const (
	MaxLength  = 4096 // bytes of source
	MaxDepth   = 64   // levels of the syntax tree
	MaxNodes   = 1000 // nodes of the syntax tree
	MaxPattern = 256  // bytes of a regular expression
)

// ParseError is a syntax or static type error in a condition. Pos is a byte
// offset from 0; Line and Col count from 1, Col in characters.
type ParseError struct {
	Pos, Line, Col int
	Msg            string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("position %d (line %d, column %d): %s", e.Pos, e.Line, e.Col, e.Msg)
}

// Expr is a parsed condition. It is immutable and safe for concurrent use.
type Expr struct {
	root    *node
	code    *code // root compiled for evaluation
	metrics []string
}

// Metrics returns the names of the metrics the condition refers to, through
// item., prev., rate() or exists(), sorted and without duplicates.
func (e *Expr) Metrics() []string { return append([]string(nil), e.metrics...) }

// String returns the condition in canonical form: it parses back to an
// expression with the same String.
func (e *Expr) String() string {
	var b strings.Builder
	e.root.format(&b)
	return b.String()
}

type op uint8

const (
	opLit  op = iota + 1
	opItem    // item.<name>
	opPrev    // prev.<name>
	opCall    // fn(args)
	opNeg     // -x
	opNot     // not x
	opOr      // binary operators from here on
	opAnd
	opEq
	opNe
	opLt
	opLe
	opGt
	opGe
	opAdd
	opSub
	opMul
	opDiv
	opMod
)

var opText = [...]string{
	opNeg: "-", opNot: "not", opOr: "or", opAnd: "and",
	opEq: "==", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">=",
	opAdd: "+", opSub: "-", opMul: "*", opDiv: "/", opMod: "%",
}

// prec is the binding strength of an operator; operands bind tightest.
func (o op) prec() int {
	switch o {
	case opOr:
		return 1
	case opAnd:
		return 2
	case opNot:
		return 3
	case opEq, opNe, opLt, opLe, opGt, opGe:
		return 4
	case opAdd, opSub:
		return 5
	case opMul, opDiv, opMod:
		return 6
	case opNeg:
		return 7
	}
	return 8
}

func (o op) isCompare() bool { return o >= opEq && o <= opGe }

// typ is the type of a node as far as it is known before evaluation.
type typ uint8

const (
	tAny typ = iota // depends on a metric
	tNum            // int or float
	tInt
	tFloat
	tStr
	tBool
)

func (t typ) isNum() bool { return t == tNum || t == tInt || t == tFloat }
func (t typ) maybe(u typ) bool {
	if t == tAny || t == u {
		return true
	}
	return u == tNum && t.isNum()
}

func (t typ) String() string {
	switch t {
	case tNum, tInt, tFloat:
		return "a number"
	case tStr:
		return "a string"
	case tBool:
		return "a bool"
	}
	return "a value"
}

type fn uint8

const (
	fnAbs fn = iota + 1
	fnLen
	fnLower
	fnUpper
	fnMatch
	fnContains
	fnMin
	fnMax
	fnRate
	fnExists
)

var funcs = map[string]fn{
	"abs": fnAbs, "len": fnLen, "lower": fnLower, "upper": fnUpper,
	"match": fnMatch, "contains": fnContains, "min": fnMin, "max": fnMax,
	"rate": fnRate, "exists": fnExists,
}

var fnName = [...]string{
	fnAbs: "abs", fnLen: "len", fnLower: "lower", fnUpper: "upper",
	fnMatch: "match", fnContains: "contains", fnMin: "min", fnMax: "max",
	fnRate: "rate", fnExists: "exists",
}

type node struct {
	op    op
	fn    fn
	typ   typ
	pos   int
	depth int
	val   model.Value    // opLit
	name  string         // opItem, opPrev
	re    *regexp.Regexp // match
	args  []*node        // operands or call arguments
}

// Parse reads a condition. The error, if any, is a *ParseError.
func Parse(src string) (*Expr, error) {
	p := &parser{src: src}
	if len(src) > MaxLength {
		return nil, p.errAt(MaxLength, "the condition is longer than %d bytes", MaxLength)
	}
	p.next()
	root := p.parseOr()
	if p.err == nil && p.tok.kind != tEOF {
		p.fail("unexpected %s after the end of the condition", p.tok.describe())
	}
	if p.err == nil && !root.typ.maybe(tBool) {
		p.errNode(root, "a condition must be true or false, not %s", root.typ)
	}
	if p.err != nil {
		return nil, p.err
	}
	e := &Expr{root: root}
	// The canonical form spaces operators and escapes strings, so it can be
	// longer than the source; it too must parse.
	if n := len(e.String()); n > MaxLength {
		return nil, p.errAt(0, "the condition is %d bytes long once written canonically, more than %d", n, MaxLength)
	}
	seen := map[string]bool{}
	root.walk(func(n *node) {
		if (n.op == opItem || n.op == opPrev) && !seen[n.name] {
			seen[n.name] = true
			e.metrics = append(e.metrics, n.name)
		}
	})
	sort.Strings(e.metrics)
	e.code = compile(root)
	return e, nil
}

func (n *node) walk(f func(*node)) {
	f(n)
	for _, a := range n.args {
		a.walk(f)
	}
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tIntLit
	tFloatLit
	tString
	tOp // operators and punctuation: text holds the symbol
)

type token struct {
	kind tokKind
	pos  int
	text string
	val  model.Value
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of condition"
	case tString:
		return "string " + strconv.Quote(t.val.Str)
	}
	return strconv.Quote(t.text)
}

type parser struct {
	src   string
	off   int
	tok   token
	prevT token // the token before tok, for messages
	err   *ParseError
	nodes int
	nest  int
	ntok  int // tokens read so far
}

func (p *parser) errAt(pos int, format string, args ...any) *ParseError {
	line, col := 1, 1
	for _, r := range p.src[:min(pos, len(p.src))] {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &ParseError{Pos: pos, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// fail records the first error, at the current token.
func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = p.errAt(p.tok.pos, format, args...)
	}
}

func (p *parser) errNode(n *node, format string, args ...any) {
	if p.err == nil {
		p.err = p.errAt(n.pos, format, args...)
	}
}

// next advances to the next token. After an error it stays at end of input.
func (p *parser) next() {
	p.prevT = p.tok
	p.ntok++
	if p.err != nil {
		p.tok = token{kind: tEOF, pos: p.off}
		return
	}
	s := p.src
	for p.off < len(s) && (s[p.off] == ' ' || s[p.off] == '\t' || s[p.off] == '\n' || s[p.off] == '\r') {
		p.off++
	}
	start := p.off
	p.tok = token{kind: tEOF, pos: start}
	if start >= len(s) {
		return
	}
	c := s[start]
	switch {
	case isLetter(c):
		for p.off < len(s) && (isLetter(s[p.off]) || isDigit(s[p.off])) {
			p.off++
		}
		p.tok = token{kind: tIdent, pos: start, text: s[start:p.off]}
	case isDigit(c) || (c == '.' && start+1 < len(s) && isDigit(s[start+1])):
		p.number(start)
	case c == '"':
		p.str(start)
	default:
		two := ""
		if start+1 < len(s) {
			two = s[start : start+2]
		}
		switch two {
		case "==", "!=", "<=", ">=":
			p.off += 2
			p.tok = token{kind: tOp, pos: start, text: two}
			return
		}
		if strings.IndexByte("+-*/%<>(),.", c) >= 0 {
			p.off++
			p.tok = token{kind: tOp, pos: start, text: s[start:p.off]}
			return
		}
		r, _ := utf8.DecodeRuneInString(s[start:])
		switch r {
		case '=':
			p.err = p.errAt(start, `unexpected "="; equality is written "=="`)
		case '!':
			p.err = p.errAt(start, `unexpected "!"; negation is written "not"`)
		case '&', '|':
			p.err = p.errAt(start, `unexpected %q; use "and" or "or"`, r)
		case '\'':
			p.err = p.errAt(start, `strings are written in double quotes`)
		default:
			p.err = p.errAt(start, "unexpected character %q", r)
		}
		p.tok = token{kind: tEOF, pos: start}
	}
}

func isLetter(c byte) bool { return c == '_' || (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func (p *parser) number(start int) {
	s := p.src
	float := false
	for p.off < len(s) && isDigit(s[p.off]) {
		p.off++
	}
	if p.off < len(s) && s[p.off] == '.' {
		float = true
		p.off++
		for p.off < len(s) && isDigit(s[p.off]) {
			p.off++
		}
	}
	if p.off < len(s) && (s[p.off] == 'e' || s[p.off] == 'E') {
		float = true
		p.off++
		if p.off < len(s) && (s[p.off] == '+' || s[p.off] == '-') {
			p.off++
		}
		if p.off >= len(s) || !isDigit(s[p.off]) {
			p.err = p.errAt(start, "malformed number %q", s[start:p.off])
			return
		}
		for p.off < len(s) && isDigit(s[p.off]) {
			p.off++
		}
	}
	if p.off < len(s) && (isLetter(s[p.off]) || s[p.off] == '.') {
		p.err = p.errAt(start, "malformed number %q", s[start:p.off+1])
		return
	}
	text := s[start:p.off]
	if float {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			p.err = p.errAt(start, "number %s is out of range", text)
			return
		}
		p.tok = token{kind: tFloatLit, pos: start, text: text, val: model.FloatValue(f)}
		return
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		p.err = p.errAt(start, "integer %s is out of range; write it as a float (%s.0)", text, text)
		return
	}
	p.tok = token{kind: tIntLit, pos: start, text: text, val: model.IntValue(i)}
}

func (p *parser) str(start int) {
	s := p.src
	i := start + 1
	for i < len(s) && s[i] != '"' && s[i] != '\n' {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	if i >= len(s) || s[i] != '"' {
		p.err = p.errAt(start, "string is not closed")
		return
	}
	p.off = i + 1
	v, err := strconv.Unquote(s[start:p.off])
	if err != nil {
		p.err = p.errAt(start, "malformed string: bad escape sequence")
		return
	}
	p.tok = token{kind: tString, pos: start, text: s[start:p.off], val: model.StringValue(v)}
}

func (p *parser) isOp(text string) bool { return p.tok.kind == tOp && p.tok.text == text }
func (p *parser) isWord(w string) bool  { return p.tok.kind == tIdent && p.tok.text == w }

// mk builds a node and enforces the size and depth limits.
func (p *parser) mk(n *node) *node {
	p.nodes++
	n.depth = 1
	for _, a := range n.args {
		n.depth = max(n.depth, a.depth+1)
	}
	if p.nodes > MaxNodes {
		p.errNode(n, "the condition has more than %d operands and operators", MaxNodes)
	} else if n.depth > MaxDepth {
		p.errNode(n, "the condition is nested more than %d levels deep", MaxDepth)
	}
	return n
}

// bad is the placeholder operand returned after an error.
var bad = &node{op: opLit, val: model.BoolValue(false), typ: tBool}

func (p *parser) parseOr() *node {
	l := p.parseAnd()
	for p.err == nil && p.isWord("or") {
		l = p.logical(l, opOr, p.parseAnd)
	}
	return l
}

func (p *parser) parseAnd() *node {
	l := p.parseNot()
	for p.err == nil && p.isWord("and") {
		l = p.logical(l, opAnd, p.parseNot)
	}
	return l
}

func (p *parser) logical(l *node, o op, operand func() *node) *node {
	pos := p.tok.pos
	p.next()
	r := operand()
	for _, x := range []*node{l, r} {
		if !x.typ.maybe(tBool) {
			p.errNode(x, "%q needs true or false on both sides, not %s", opText[o], x.typ)
		}
	}
	return p.mk(&node{op: o, pos: pos, typ: tBool, args: []*node{l, r}})
}

func (p *parser) parseNot() *node {
	if !p.isWord("not") {
		return p.parseCompare()
	}
	pos := p.tok.pos
	p.next()
	if !p.enter() {
		return bad
	}
	x := p.parseNot()
	p.nest--
	if !x.typ.maybe(tBool) {
		p.errNode(x, `"not" needs true or false, not %s`, x.typ)
	}
	return p.mk(&node{op: opNot, pos: pos, typ: tBool, args: []*node{x}})
}

var compareOps = map[string]op{"==": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}

func (p *parser) parseCompare() *node {
	l := p.parseSum()
	o, ok := compareOps[p.tok.text]
	if p.err != nil || p.tok.kind != tOp || !ok {
		return l
	}
	pos := p.tok.pos
	p.next()
	r := p.parseSum()
	if p.tok.kind == tOp && compareOps[p.tok.text] != 0 {
		p.fail("comparisons do not chain; combine them with \"and\"")
	}
	switch {
	case l.typ == tAny || r.typ == tAny:
	case l.typ.isNum() != r.typ.isNum() || (!l.typ.isNum() && l.typ != r.typ):
		p.errNode(r, "cannot compare %s with %s", l.typ, r.typ)
	}
	if (l.typ == tBool || r.typ == tBool) && o != opEq && o != opNe {
		p.errNode(r, "bools can only be compared with == and !=")
	}
	return p.mk(&node{op: o, pos: pos, typ: tBool, args: []*node{l, r}})
}

func (p *parser) parseSum() *node {
	l := p.parseProduct()
	for p.err == nil && (p.isOp("+") || p.isOp("-")) {
		o := opAdd
		if p.tok.text == "-" {
			o = opSub
		}
		l = p.arith(l, o, p.parseProduct)
	}
	return l
}

func (p *parser) parseProduct() *node {
	l := p.parseUnary()
	for p.err == nil && (p.isOp("*") || p.isOp("/") || p.isOp("%")) {
		o := map[string]op{"*": opMul, "/": opDiv, "%": opMod}[p.tok.text]
		l = p.arith(l, o, p.parseUnary)
	}
	return l
}

func (p *parser) arith(l *node, o op, operand func() *node) *node {
	pos := p.tok.pos
	p.next()
	r := operand()
	for _, x := range []*node{l, r} {
		if !x.typ.maybe(tNum) {
			p.errNode(x, "%q needs numbers, not %s", opText[o], x.typ)
		}
	}
	if (o == opDiv || o == opMod) && r.op == opLit && ((r.val.Kind == model.KindInt && r.val.Int == 0) || (r.val.Kind == model.KindFloat && r.val.F == 0)) {
		p.errNode(r, "division by zero")
	}
	t := tNum
	switch {
	case o == opDiv:
		t = tFloat
	case l.typ == tFloat || r.typ == tFloat:
		t = tFloat
	case l.typ == tInt && r.typ == tInt:
		t = tInt
	}
	return p.mk(&node{op: o, pos: pos, typ: t, args: []*node{l, r}})
}

func (p *parser) enter() bool {
	p.nest++
	if p.nest > MaxDepth {
		p.fail("the condition is nested more than %d levels deep", MaxDepth)
		return false
	}
	return true
}

func (p *parser) parseUnary() *node {
	if !p.isOp("-") {
		return p.parsePrimary()
	}
	pos := p.tok.pos
	p.next()
	if !p.enter() {
		return bad
	}
	x := p.parseUnary()
	p.nest--
	if !x.typ.maybe(tNum) {
		p.errNode(x, `"-" needs a number, not %s`, x.typ)
		return bad
	}
	// A negative literal is one literal, so that String is stable.
	if x.op == opLit && x.val.Kind == model.KindInt && x.val.Int >= 0 {
		return &node{op: opLit, pos: pos, typ: tInt, val: model.IntValue(-x.val.Int), depth: 1}
	}
	if x.op == opLit && x.val.Kind == model.KindFloat && !math.Signbit(x.val.F) {
		return &node{op: opLit, pos: pos, typ: tFloat, val: model.FloatValue(-x.val.F), depth: 1}
	}
	return p.mk(&node{op: opNeg, pos: pos, typ: x.typ, args: []*node{x}})
}

func (p *parser) parsePrimary() *node {
	if p.err != nil {
		return bad
	}
	t := p.tok
	switch t.kind {
	case tIntLit:
		p.next()
		return p.mk(&node{op: opLit, pos: t.pos, typ: tInt, val: t.val})
	case tFloatLit:
		p.next()
		return p.mk(&node{op: opLit, pos: t.pos, typ: tFloat, val: t.val})
	case tString:
		p.next()
		return p.mk(&node{op: opLit, pos: t.pos, typ: tStr, val: t.val})
	case tIdent:
		switch t.text {
		case "true", "false":
			p.next()
			return p.mk(&node{op: opLit, pos: t.pos, typ: tBool, val: model.BoolValue(t.text == "true")})
		case "item", "prev":
			return p.parseRef()
		case "and", "or", "not":
		default:
			if f, ok := funcs[t.text]; ok {
				return p.parseCall(f)
			}
			p.fail("unknown name %q; a metric is written item.%s or prev.%s", t.text, t.text, t.text)
			return bad
		}
	case tOp:
		if t.text == "(" {
			p.next()
			if !p.enter() {
				return bad
			}
			x := p.parseOr()
			p.nest--
			if p.err == nil && !p.isOp(")") {
				p.fail(`expected ")" to close the "(" at position %d, found %s`, t.pos, p.tok.describe())
			}
			p.next()
			return x
		}
	}
	if p.ntok == 1 {
		p.fail("expected an operand, found %s", t.describe())
	} else {
		p.fail("expected an operand after %s, found %s", p.prevT.describe(), t.describe())
	}
	return bad
}

func (p *parser) parseRef() *node {
	t := p.tok
	p.next()
	if !p.isOp(".") {
		p.fail(`expected "." and a metric name after %q`, t.text)
		return bad
	}
	p.next()
	if p.tok.kind != tIdent {
		p.fail("expected a metric name after %q, found %s", t.text+".", p.tok.describe())
		return bad
	}
	name := p.tok.text
	p.next()
	o := opItem
	if t.text == "prev" {
		o = opPrev
	}
	return p.mk(&node{op: o, pos: t.pos, typ: tAny, name: name})
}

func (p *parser) parseCall(f fn) *node {
	t := p.tok
	p.next()
	if !p.isOp("(") {
		p.fail(`expected "(" after %q`, t.text)
		return bad
	}
	p.next()
	if !p.enter() {
		return bad
	}
	var args []*node
	for p.err == nil && !p.isOp(")") {
		args = append(args, p.parseOr())
		if p.err != nil || p.isOp(")") {
			break
		}
		if !p.isOp(",") {
			p.fail(`expected "," or ")" in the arguments of %s, found %s`, t.text, p.tok.describe())
			break
		}
		p.next()
	}
	p.nest--
	p.next()
	if p.err != nil {
		return bad
	}
	n := &node{op: opCall, fn: f, pos: t.pos, args: args}
	p.checkCall(n)
	return p.mk(n)
}

// checkCall checks the arity and the known argument types of a call and sets
// its type.
func (p *parser) checkCall(n *node) {
	name := fnName[n.fn]
	want := func(count int) bool {
		if len(n.args) != count {
			p.errNode(n, "%s takes %d argument(s), not %d", name, count, len(n.args))
			return false
		}
		return true
	}
	arg := func(i int, t typ, what string) {
		if !n.args[i].typ.maybe(t) {
			p.errNode(n.args[i], "%s needs %s, not %s", name, what, n.args[i].typ)
		}
	}
	switch n.fn {
	case fnAbs:
		n.typ = tNum
		if want(1) {
			arg(0, tNum, "a number")
			if n.args[0].typ.isNum() {
				n.typ = n.args[0].typ
			}
		}
	case fnLen:
		n.typ = tInt
		if want(1) {
			if a := n.args[0]; a.typ != tAny && a.typ != tStr {
				p.errNode(a, "len needs a string or a list, not %s", a.typ)
			}
		}
	case fnLower, fnUpper:
		n.typ = tStr
		if want(1) {
			arg(0, tStr, "a string")
		}
	case fnMatch:
		n.typ = tBool
		if want(2) {
			arg(0, tStr, "a string")
			pat := n.args[1]
			if pat.op != opLit || pat.val.Kind != model.KindString {
				p.errNode(pat, "the pattern of match must be a string literal")
				return
			}
			if len(pat.val.Str) > MaxPattern {
				p.errNode(pat, "the pattern is longer than %d bytes", MaxPattern)
				return
			}
			re, err := regexp.Compile(pat.val.Str)
			if err != nil {
				p.errNode(pat, "bad pattern: %v", err)
				return
			}
			n.re = re
		}
	case fnContains:
		n.typ = tBool
		if want(2) {
			if a := n.args[0]; a.typ != tAny && a.typ != tStr {
				p.errNode(a, "contains needs a string or a list, not %s", a.typ)
			} else if a.typ == tStr {
				arg(1, tStr, "a string to look for")
			}
		}
	case fnMin, fnMax:
		if len(n.args) < 2 {
			p.errNode(n, "%s takes at least 2 arguments, not %d", name, len(n.args))
			return
		}
		n.typ = tInt
		for i, a := range n.args {
			arg(i, tNum, "numbers")
			switch {
			case a.typ == tFloat:
				n.typ = tFloat
			case a.typ != tInt && n.typ == tInt:
				n.typ = tNum
			}
		}
	case fnRate, fnExists:
		n.typ = tBool
		if n.fn == fnRate {
			n.typ = tFloat
		}
		if want(1) {
			a := n.args[0]
			if a.op != opItem && (a.op != opPrev || n.fn == fnRate) {
				form := "item.<metric> or prev.<metric>"
				if n.fn == fnRate {
					form = "item.<metric>"
				}
				p.errNode(a, "the argument of %s must be %s", name, form)
			}
		}
	}
}
