package dnsprobe

import (
	"bytes"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

// assertValid checks that the hub accepts res: it is encoded the way a
// collector sends it and decoded under the hub's default limits.
func assertValid(t testing.TB, res probe.Result) {
	t.Helper()
	d := &model.CheckData{Types: res.Types, HasResult: res.Types != nil, Error: res.Error, Timestamp: time.Now().Unix()}
	if _, err := model.DecodeCheckData(bytes.NewReader(d.MarshalAgentJSON()), model.Limits{}); err != nil {
		t.Fatalf("the hub would refuse the result: %v\n%s", err, d.MarshalAgentJSON())
	}
}

// FuzzReport feeds arbitrary answers (whatever miekg/dns parses) to the
// code that turns an answer into a result.
func FuzzReport(f *testing.F) {
	for _, rr := range []string{
		"example.test. 300 IN A 192.0.2.1",
		`example.test. 300 IN TXT "a\"b" "\255\000"`,
		"example.test. 300 IN MX 10 mx.example.test.",
		`example.test. 300 IN CAA 0 issue "ca.example"`,
	} {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeA)
		r, err := dns.NewRR(rr)
		if err != nil {
			f.Fatal(err)
		}
		m.Answer = append(m.Answer, r)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var configs []*settings
	for _, c := range []Config{
		{Server: "127.0.0.1", Name: "example.test", Expect: []string{"192.0.2.1"}},
		{Server: "127.0.0.1", Name: "example.test", Type: "TXT", Expect: []string{"x"}},
		{Server: "127.0.0.1", Name: "example.test", Type: "MX"},
	} {
		s, err := c.settings("")
		if err != nil {
			f.Fatal(err)
		}
		configs = append(configs, s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil {
			return
		}
		for _, s := range configs {
			res := report(s, "q", m, false, time.Millisecond)
			assertValid(t, res)
			if res.Types == nil {
				continue
			}
			for _, mt := range res.Types[0].Items[0].Metrics {
				if mt.Name == "answers" && len(mt.Value.List) > maxAnswers {
					t.Fatalf("%d answers", len(mt.Value.List))
				}
			}
		}
	})
}
