package alert

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/alert/expr"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// The kinds of condition.
const (
	KindExpression     = "expression"
	KindItemsMissing   = "items_missing"
	KindItemsMustExist = "items_must_exist"
)

// Limits on a condition's fields.
const (
	maxTicks      = 100
	maxMessage    = 1000
	maxItems      = 100
	maxLabels     = 20
	maxLabelBytes = 64
)

// condition is a stored condition made ready to evaluate.
type condition struct {
	state.Condition
	expr  *expr.Expr
	msg   []msgPart
	items map[string]bool // items_must_exist
}

// Validate checks a condition as given through the API and fills in the
// defaults (ticks 1, clear ticks 1, a message). Its errors name the field,
// and for a bad expression the position and the reason.
func Validate(c *state.Condition) error {
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > 200 {
		return errors.New("name must be 1 to 200 characters")
	}
	if c.Type == "" || len(c.Type) > 200 {
		return errors.New("type must name the result type the condition looks at (1 to 200 characters)")
	}
	if len(c.Collector) > 64 || len(c.Check) > 64 {
		return errors.New("collector and check are at most 64 characters")
	}
	if c.Ticks == 0 {
		c.Ticks = 1
	}
	if c.ClearTicks == 0 {
		c.ClearTicks = 1
	}
	if c.Ticks < 1 || c.Ticks > maxTicks {
		return fmt.Errorf("ticks must be 1 to %d", maxTicks)
	}
	if c.ClearTicks < 1 || c.ClearTicks > maxTicks {
		return fmt.Errorf("clearTicks must be 1 to %d", maxTicks)
	}
	if c.Severity < int(Emergency) || c.Severity > int(Debug) {
		return errors.New("severity must be one of " + strings.Join(severityNames[:], ", "))
	}
	if len(c.Labels) > maxLabels {
		return fmt.Errorf("labels: at most %d", maxLabels)
	}
	for _, l := range c.Labels {
		if err := ValidLabel(l); err != nil {
			return fmt.Errorf("labels: %w", err)
		}
	}
	switch c.Kind {
	case KindExpression:
		if c.Expression == "" {
			return errors.New("expression is required for kind expression")
		}
		if len(c.Items) > 0 {
			return errors.New("items is only for kind items_must_exist")
		}
		if _, err := expr.Parse(c.Expression); err != nil {
			return fmt.Errorf("expression: %w", err)
		}
	case KindItemsMissing, KindItemsMustExist:
		if c.Expression != "" {
			return fmt.Errorf("expression is only for kind expression, not %s", c.Kind)
		}
		if c.Kind == KindItemsMissing && len(c.Items) > 0 {
			return errors.New("items is only for kind items_must_exist")
		}
		if c.Kind == KindItemsMustExist {
			if len(c.Items) == 0 || len(c.Items) > maxItems {
				return fmt.Errorf("items must list 1 to %d item names that must exist", maxItems)
			}
			for _, it := range c.Items {
				if it == "" || len(it) > 200 {
					return errors.New("items: every item name is 1 to 200 characters")
				}
			}
		}
	default:
		return fmt.Errorf("kind %q is not one of expression, items_missing, items_must_exist", c.Kind)
	}
	if c.Message == "" {
		switch c.Kind {
		case KindItemsMissing:
			c.Message = "{condition}: item {item} disappeared"
		case KindItemsMustExist:
			c.Message = "{condition}: item {item} is missing"
		default:
			c.Message = "{condition}: {item}"
		}
	}
	if len(c.Message) > maxMessage {
		return fmt.Errorf("message is %d bytes, more than %d", len(c.Message), maxMessage)
	}
	if _, err := parseMessage(c.Message); err != nil {
		return fmt.Errorf("message: %w", err)
	}
	return nil
}

// ValidLabel checks an asset or condition label.
func ValidLabel(l string) error {
	if l == "" || len(l) > maxLabelBytes {
		return fmt.Errorf("label %q must be 1 to %d bytes", l, maxLabelBytes)
	}
	for _, r := range l {
		if r < 0x21 || r == 0x7f || r == ',' {
			return fmt.Errorf("label %q holds a space, a comma or a control character", l)
		}
	}
	return nil
}

func compile(c state.Condition) (*condition, error) {
	out := &condition{Condition: c}
	var err error
	if c.Kind == KindExpression {
		if out.expr, err = expr.Parse(c.Expression); err != nil {
			return nil, err
		}
	}
	if out.msg, err = parseMessage(c.Message); err != nil {
		return nil, err
	}
	if c.Kind == KindItemsMustExist {
		out.items = make(map[string]bool, len(c.Items))
		for _, it := range c.Items {
			out.items[it] = true
		}
	}
	return out, nil
}

// msgPart is a piece of a message template: literal text, or a value.
type msgPart struct {
	text string
	// ref is "item", "asset", "condition", or "item.<m>" / "prev.<m>".
	ref  string
	prev bool
	name string // metric name of an item./prev. reference
}

// parseMessage reads a message template: text with {item} (the item's
// name), {asset}, {condition}, {item.<metric>} and {prev.<metric>};
// {{ and }} stand for braces.
func parseMessage(s string) ([]msgPart, error) {
	var parts []msgPart
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '}':
			return nil, fmt.Errorf("position %d: a lone }, write }} for a brace", i)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("position %d: { without a closing }", i)
			}
			ref := s[i+1 : i+end]
			p := msgPart{ref: ref}
			switch {
			case ref == "item" || ref == "asset" || ref == "condition":
			case strings.HasPrefix(ref, "item.") && len(ref) > 5:
				p.name = ref[5:]
			case strings.HasPrefix(ref, "prev.") && len(ref) > 5:
				p.name, p.prev = ref[5:], true
			default:
				return nil, fmt.Errorf("position %d: {%s} is not one of {item}, {asset}, {condition}, {item.<metric>}, {prev.<metric>}", i, ref)
			}
			if lit.Len() > 0 {
				parts = append(parts, msgPart{text: lit.String()})
				lit.Reset()
			}
			parts = append(parts, p)
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, msgPart{text: lit.String()})
	}
	return parts, nil
}

// render fills a message template in.
func render(parts []msgPart, asset, cond, item string, cur, prev expr.Metrics) string {
	var b []byte
	for _, p := range parts {
		switch {
		case p.ref == "":
			b = append(b, p.text...)
		case p.ref == "item":
			b = append(b, item...)
		case p.ref == "asset":
			b = append(b, asset...)
		case p.ref == "condition":
			b = append(b, cond...)
		default:
			m := cur
			if p.prev {
				m = prev
			}
			var v model.Value
			ok := false
			if m != nil {
				v, ok = m.Metric(p.name)
			}
			switch {
			case !ok:
				b = append(b, '?')
			case v.Kind == model.KindString:
				b = append(b, v.Str...)
			default:
				b = v.AppendJSON(b)
			}
		}
		if len(b) > maxMessage {
			break
		}
	}
	return truncate(string(b), maxMessage)
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
