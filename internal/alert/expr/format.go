package expr

import (
	"strconv"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// format writes the canonical form of n: single spaces around binary
// operators, ", " between arguments, and only the parentheses the
// precedence rules need.
func (n *node) format(b *strings.Builder) {
	switch n.op {
	case opLit:
		b.WriteString(literal(n.val))
	case opItem:
		b.WriteString("item.")
		b.WriteString(n.name)
	case opPrev:
		b.WriteString("prev.")
		b.WriteString(n.name)
	case opCall:
		b.WriteString(fnName[n.fn])
		b.WriteByte('(')
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(", ")
			}
			a.format(b)
		}
		b.WriteByte(')')
	case opNeg, opNot:
		b.WriteString(opText[n.op])
		if n.op == opNot {
			b.WriteByte(' ')
		}
		n.args[0].formatIn(b, n.args[0].op.prec() < n.op.prec())
	default:
		p := n.op.prec()
		l, r := n.args[0], n.args[1]
		l.formatIn(b, l.op.prec() < p || (n.op.isCompare() && l.op.prec() == p))
		b.WriteByte(' ')
		b.WriteString(opText[n.op])
		b.WriteByte(' ')
		r.formatIn(b, r.op.prec() <= p)
	}
}

func (n *node) formatIn(b *strings.Builder, parens bool) {
	if parens {
		b.WriteByte('(')
	}
	n.format(b)
	if parens {
		b.WriteByte(')')
	}
}

// literal writes a literal so that it reads back as the same kind: a float
// always has a decimal point or an exponent.
func literal(v model.Value) string {
	switch v.Kind {
	case model.KindInt:
		return strconv.FormatInt(v.Int, 10)
	case model.KindFloat:
		s := strconv.FormatFloat(v.F, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	case model.KindString:
		return strconv.Quote(v.Str)
	case model.KindBool:
		return strconv.FormatBool(v.Bool)
	}
	return "?"
}
