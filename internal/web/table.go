package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/web/chart"
)

// The asset page shows thousands of cells: its tables are written here,
// escaping every text, rather than by template loops (ten times slower),
// from the stored result JSON read by a small scanner (the hub wrote that
// JSON itself, from validated data: {"<type>":[{"name":…,"<metric>":…}]}).

// resultTable is one type of a stored result.
type resultTable struct {
	name    string
	columns []string
	numeric []bool
	rows    []tableRow
	more    int
}

type tableRow struct {
	item  string
	cells []tableCell // by column; text "" for none
}

type tableCell struct {
	col  int
	text string
}

// scanner reads the stored result JSON.
type scanner struct {
	b   []byte
	pos int
}

var errBadResult = errors.New("the stored result is not the JSON the hub writes")

func (s *scanner) ws() {
	for s.pos < len(s.b) && (s.b[s.pos] == ' ' || s.b[s.pos] == '\n' || s.b[s.pos] == '\t' || s.b[s.pos] == '\r') {
		s.pos++
	}
}

func (s *scanner) expect(c byte) error {
	s.ws()
	if s.pos >= len(s.b) || s.b[s.pos] != c {
		return errBadResult
	}
	s.pos++
	return nil
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.b) {
		return 0
	}
	return s.b[s.pos]
}

// str reads a JSON string.
func (s *scanner) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.pos
	escaped := false
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case '\\':
			escaped = true
			s.pos += 2
			continue
		case '"':
			raw := s.b[start:s.pos]
			s.pos++
			if !escaped {
				return string(raw), nil
			}
			var out string
			if err := json.Unmarshal(s.b[start-1:s.pos], &out); err != nil {
				return "", errBadResult
			}
			return out, nil
		}
		s.pos++
	}
	return "", errBadResult
}

// value reads a scalar or a list and returns its display text, and
// whether it is a number.
func (s *scanner) value(unit chart.Unit) (string, bool, error) {
	switch c := s.peek(); {
	case c == '"':
		v, err := s.str()
		return v, false, err
	case c == '[':
		start := s.pos
		depth := 0
		for s.pos < len(s.b) {
			switch s.b[s.pos] {
			case '[':
				depth++
			case ']':
				depth--
			case '"':
				if _, err := s.str(); err != nil {
					return "", false, err
				}
				continue
			}
			s.pos++
			if depth == 0 {
				var list []any
				if err := json.Unmarshal(s.b[start:s.pos], &list); err != nil {
					return "", false, errBadResult
				}
				parts := make([]string, len(list))
				for i, e := range list {
					parts[i] = fmt.Sprint(e)
				}
				return strings.Join(parts, ", "), false, nil
			}
		}
		return "", false, errBadResult
	default:
		start := s.pos
		for s.pos < len(s.b) && s.b[s.pos] != ',' && s.b[s.pos] != '}' && s.b[s.pos] != ' ' {
			s.pos++
		}
		raw := string(s.b[start:s.pos])
		switch raw {
		case "true", "false":
			return raw, false, nil
		case "":
			return "", false, errBadResult
		}
		if unit != chart.None {
			if f, err := strconv.ParseFloat(raw, 64); err == nil {
				return chart.FormatValue(f, unit), true, nil
			}
		}
		return raw, true, nil
	}
}

// parseResult reads a stored result into tables, at most maxRows rows per
// type.
func parseResult(data []byte, maxRows int) ([]resultTable, error) {
	s := &scanner{b: data}
	if err := s.expect('{'); err != nil {
		return nil, err
	}
	var out []resultTable
	for s.peek() != '}' {
		if len(out) > 0 {
			if err := s.expect(','); err != nil {
				return nil, err
			}
		}
		name, err := s.str()
		if err != nil {
			return nil, err
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		t := resultTable{name: name}
		index := map[string]int{}
		units := map[string]chart.Unit{} // by metric: unitOf is not free
		if err := s.expect('['); err != nil {
			return nil, err
		}
		for n := 0; s.peek() != ']'; n++ {
			if n > 0 {
				if err := s.expect(','); err != nil {
					return nil, err
				}
			}
			if err := s.expect('{'); err != nil {
				return nil, err
			}
			row := tableRow{cells: make([]tableCell, 0, len(t.columns))}
			for k := 0; s.peek() != '}'; k++ {
				if k > 0 {
					if err := s.expect(','); err != nil {
						return nil, err
					}
				}
				key, err := s.str()
				if err != nil {
					return nil, err
				}
				if err := s.expect(':'); err != nil {
					return nil, err
				}
				u, ok := units[key]
				if !ok {
					u = unitOf(key)
					units[key] = u
				}
				text, num, err := s.value(u)
				if err != nil {
					return nil, err
				}
				if key == "name" && k == 0 {
					row.item = text
					continue
				}
				col, ok := index[key]
				if !ok {
					col = len(t.columns)
					index[key] = col
					t.columns = append(t.columns, key)
					t.numeric = append(t.numeric, false)
				}
				if num {
					t.numeric[col] = true
				}
				row.cells = append(row.cells, tableCell{col, text})
			}
			s.pos++ // }
			if len(t.rows) < maxRows {
				t.rows = append(t.rows, row)
			} else {
				t.more++
			}
		}
		s.pos++ // ]
		out = append(out, t)
	}
	return out, nil
}

// size estimates the table's HTML in bytes.
func (t *resultTable) size() int { return 64 * (len(t.rows) + 1) * (len(t.columns) + 1) }

// html writes the table: every text escaped, numeric columns' headers
// linking to their charts.
func (t *resultTable) html(chartURL func(metric string) string) template.HTML {
	var b strings.Builder
	b.Grow(t.size())
	b.WriteString(`<div class="scroll"><table><caption>`)
	b.WriteString(template.HTMLEscapeString(t.name))
	if t.more > 0 {
		fmt.Fprintf(&b, " (the first %d items; %d more)", len(t.rows), t.more)
	}
	b.WriteString(`</caption><thead><tr><th scope="col">item</th>`)
	for i, c := range t.columns {
		b.WriteString(`<th scope="col">`)
		if t.numeric[i] {
			b.WriteString(`<a href="`)
			b.WriteString(template.HTMLEscapeString(chartURL(c)))
			b.WriteString(`">`)
			b.WriteString(template.HTMLEscapeString(c))
			b.WriteString(`</a>`)
		} else {
			b.WriteString(template.HTMLEscapeString(c))
		}
		b.WriteString(`</th>`)
	}
	b.WriteString(`</tr></thead><tbody>`)
	cells := make([]string, len(t.columns))
	for _, r := range t.rows {
		clear(cells)
		for _, c := range r.cells {
			cells[c.col] = c.text
		}
		b.WriteString(`<tr><th scope="row">`)
		b.WriteString(template.HTMLEscapeString(r.item))
		b.WriteString(`</th>`)
		for _, c := range cells {
			b.WriteString(`<td>`)
			b.WriteString(template.HTMLEscapeString(c))
			b.WriteString(`</td>`)
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</tbody></table></div>`)
	return template.HTML(b.String()) // #nosec G203 -- every text above went through HTMLEscapeString
}

// chartLink is the URL of a metric's chart.
func chartLink(asset int64, collector, check, typ, metric string) string {
	return fmt.Sprintf("/asset/%d/chart?%s", asset, url.Values{
		"collector": {collector}, "check": {check}, "type": {typ}, "metric": {metric},
	}.Encode())
}
