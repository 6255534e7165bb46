package model

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// agentBody builds a realistic agent body: one type with one item of
// metrics floats, plus (when items > 0) a second type of items × metrics.
func agentBody(metrics, items int) []byte {
	var b strings.Builder
	b.WriteString(`{"version":"1.4.2","runtime":0.0421,"timestamp":1700000000,"data":{"memory":[{"name":"memory"`)
	for m := range metrics {
		fmt.Fprintf(&b, `,"metricNumber%d":%d.%03d`, m, 1000+m*37, m*7)
	}
	b.WriteString(`}]`)
	if items > 0 {
		b.WriteString(`,"disk":[`)
		for i := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"/dev/sd%c"`, 'a'+i)
			for m := range metrics {
				fmt.Fprintf(&b, `,"diskMetric%d":%d.%02d`, m, i*1000+m*13, m)
			}
			b.WriteByte('}')
		}
		b.WriteByte(']')
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}

func BenchmarkDecodeAgent20(b *testing.B) {
	for _, bc := range []struct {
		name          string
		metrics, item int
	}{
		{"1x20", 20, 0},
		{"1x20+10x20", 20, 10},
	} {
		body := agentBody(bc.metrics, bc.item)
		b.Run(bc.name, func(b *testing.B) {
			if _, err := DecodeCheckData(bytes.NewReader(body), Limits{}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeCheckData(bytes.NewReader(body), Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
