package ingest

import (
	"strings"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"loadAvg":      "loadAvg",
		"percent_used": "percent_used",
		"if-in.octets": "if_in_octets",
		"a b/c":        "a_b_c",
		"é":            "__",
		"":             "",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSamples(t *testing.T) {
	body := `{"timestamp":1700000000,"data":{
		"mem-info":[{"name":"ram","percentUsed":42.5,"total":1024,"swap":true,"label":"x","list":[1,2]}],
		"cpu":[{"name":"cpu0","usage":1.0},{"name":"cpu1","usage":2.0,"idle":false}]}}`
	cd, err := model.DecodeCheckData(strings.NewReader(body), model.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := Samples(Target{ContainerID: 7, AssetID: 9, AssetName: "web1", Collector: "linux", Check: "system"}, cd)
	base := tsstore.SeriesKey{ContainerID: "7", AssetID: "9", Asset: "web1", Collector: "linux", Check: "system"}
	key := func(metric, item string) tsstore.SeriesKey {
		k := base
		k.Metric, k.Item = metric, item
		return k
	}
	want := []tsstore.Sample{
		{Key: key("sonde_mem_info_percentUsed", "ram"), T: 1700000000000, V: 42.5},
		{Key: key("sonde_mem_info_total", "ram"), T: 1700000000000, V: 1024},
		{Key: key("sonde_mem_info_swap", "ram"), T: 1700000000000, V: 1},
		{Key: key("sonde_cpu_usage", "cpu0"), T: 1700000000000, V: 1},
		{Key: key("sonde_cpu_usage", "cpu1"), T: 1700000000000, V: 2},
		{Key: key("sonde_cpu_idle", "cpu1"), T: 1700000000000, V: 0},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if cd.SampleCount() != len(want) {
		t.Errorf("SampleCount = %d", cd.SampleCount())
	}
	// An error-only result has no samples.
	cd, err = model.DecodeCheckData(strings.NewReader(`{"error":{"message":"down","severity":0}}`), model.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s := Samples(Target{}, cd); s != nil {
		t.Fatalf("error-only result gave samples %+v", s)
	}
}
