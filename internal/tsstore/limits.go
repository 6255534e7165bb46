package tsstore

import "fmt"

// Bounds of a PromQL query a caller may send. Parsing PromQL (and adding
// a scope to it) costs time that grows faster than the query's length
// with nesting and operator chains: a 16 KiB chain of additions takes
// seconds. Real dashboards' queries are far below these bounds.
const (
	// MaxQueryBytes is the longest query accepted (VictoriaMetrics'
	// default -search.maxQueryLen).
	MaxQueryBytes = 16 << 10
	// MaxQueryDepth is the deepest nesting of brackets.
	MaxQueryDepth = 64
	// MaxQueryOperators is the most operators (arithmetic, comparison,
	// and/or/unless) one query may hold.
	MaxQueryOperators = 500
)

// LimitError is returned for a query beyond the bounds above: the caller's
// mistake (an HTTP layer answers 400 bad_data).
type LimitError struct{ msg string }

func (e *LimitError) Error() string { return e.msg }

// BadData reports that the error is the caller's mistake.
func (e *LimitError) BadData() bool { return true }

// CheckQueryLimits refuses a query longer, deeper or with more operators
// than the bounds, before anything parses it. It scans the text outside
// string literals and comments; it does not validate the query.
func CheckQueryLimits(q string) error {
	if len(q) > MaxQueryBytes {
		return &LimitError{fmt.Sprintf("the query is %d bytes long, more than the %d allowed", len(q), MaxQueryBytes)}
	}
	depth, maxDepth, ops := 0, 0, 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '"' || c == '\'' || c == '`':
			// A string literal: skip to its end (backslash escapes
			// except in raw strings).
			for i++; i < len(q) && q[i] != c; i++ {
				if q[i] == '\\' && c != '`' {
					i++
				}
			}
		case c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '(' || c == '[' || c == '{':
			depth++
			maxDepth = max(maxDepth, depth)
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == '+' || c == '-' || c == '*' || c == '/' || c == '%' || c == '^' || c == '<' || c == '>' || c == '=' || c == '!':
			ops++
		case isIdentStart(c):
			j := i
			for j < len(q) && isIdentPart(q[j]) {
				j++
			}
			switch q[i:j] {
			case "and", "or", "unless":
				ops++
			}
			i = j - 1
		}
	}
	if maxDepth > MaxQueryDepth {
		return &LimitError{fmt.Sprintf("the query nests brackets %d deep, more than the %d allowed", maxDepth, MaxQueryDepth)}
	}
	if ops > MaxQueryOperators {
		return &LimitError{fmt.Sprintf("the query has %d operators, more than the %d allowed", ops, MaxQueryOperators)}
	}
	return nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
