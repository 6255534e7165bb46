package web

import (
	"strings"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// TestParseResult reads what model.ResultJSON writes: every item and
// value, in order, with escapes and lists.
func TestParseResult(t *testing.T) {
	cd := &model.CheckData{Types: []model.Type{
		{Name: "disk", Items: []model.Item{
			{Name: `sda "quoted" <b>`, Metrics: []model.Metric{
				{Name: "usedBytes", Value: model.IntValue(2048)}, {Name: "ratio", Value: model.FloatValue(0.25)},
				{Name: "state", Value: model.StringValue("ok\n\u00e9\t<x>")}, {Name: "ro", Value: model.BoolValue(true)},
				{Name: "flags", Value: model.Value{Kind: model.KindList, List: []model.Value{model.StringValue("a,b"), model.IntValue(3)}}},
			}},
			{Name: "sdb", Metrics: []model.Metric{{Name: "extra", Value: model.IntValue(-1)}}},
		}},
		{Name: "empty"},
	}}
	tables, err := parseResult(cd.ResultJSON(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0].name != "disk" || tables[1].name != "empty" || len(tables[1].rows) != 0 {
		t.Fatalf("tables %+v", tables)
	}
	d := tables[0]
	if strings.Join(d.columns, " ") != "usedBytes ratio state ro flags extra" || len(d.rows) != 2 || d.rows[0].item != `sda "quoted" <b>` {
		t.Fatalf("disk: %+v", d)
	}
	want := []string{"2 KiB", "0.25", "ok\n\u00e9\t<x>", "true", "a,b, 3"}
	for i, c := range d.rows[0].cells {
		if c.text != want[i] {
			t.Errorf("cell %d: %q, want %q", i, c.text, want[i])
		}
	}
	if !d.numeric[0] || !d.numeric[1] || d.numeric[2] || d.rows[1].cells[0].col != 5 {
		t.Errorf("numeric %v, row 2 %+v", d.numeric, d.rows[1])
	}
	html := string(d.html(func(m string) string { return "/c?m=" + m + "&x=<" }))
	if strings.Contains(html, "<b>") || strings.Contains(html, "<x>") || !strings.Contains(html, "&lt;b&gt;") || !strings.Contains(html, "&amp;x=&lt;") {
		t.Errorf("html not escaped: %s", html)
	}
	// More items than shown.
	tables, _ = parseResult(cd.ResultJSON(), 1)
	if len(tables[0].rows) != 1 || tables[0].more != 1 {
		t.Errorf("limit: %+v", tables[0])
	}
}

// FuzzParseResult: any bytes either parse or fail, never panic, and a
// parsed table renders.
func FuzzParseResult(f *testing.F) {
	for _, s := range []string{`{}`, `{"t":[]}`, `{"t":[{"name":"a","m":1}]}`, `{"t":[{"name":"a\\"","m":[1,"x"]}]}`, `{"t":[{`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tables, err := parseResult(b, 100)
		if err != nil {
			return
		}
		for _, tb := range tables {
			_ = tb.html(func(string) string { return "/" })
		}
	})
}
