package wire_test

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// A data packet carries a check's result for one asset; the hub reads it,
// decodes the body and answers with an ok echoing the packet's id.
func Example() {
	cd := &model.CheckData{
		HasResult: true,
		Types: []model.Type{{Name: "ping", Items: []model.Item{{Name: "10.0.0.1", Metrics: []model.Metric{
			{Name: "rtt", Value: model.FloatValue(0.0012)},
			{Name: "lost", Value: model.IntValue(0)},
		}}}}},
		Timestamp: 1700000000,
		Duration:  0.05,
	}
	var conn bytes.Buffer // a TLS connection in real use
	if err := wire.WritePacket(&conn, wire.Packet{PartID: 12, PID: 7, Type: wire.TypeData, Body: wire.EncodeCheckData(cd)}); err != nil {
		fmt.Println(err)
		return
	}

	r := wire.NewReader(bufio.NewReader(&conn), wire.DefaultMaxBody)
	p, err := r.ReadPacket()
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := wire.DecodeCheckData(p.Body, model.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s packet %d for asset %d: %s\n", p.Type, p.PID, p.PartID, got.ResultJSON())
	ok := wire.Packet{PID: p.PID, Type: wire.TypeOK, Body: wire.EmptyBody}
	fmt.Printf("answer: % x\n", wire.AppendPacket(nil, ok))
	// Output:
	// data packet 7 for asset 12: {"ping":[{"name":"10.0.0.1","rtt":0.0012,"lost":0}]}
	// answer: 00 00 00 00 00 00 00 00 02 00 00 00 07 00 e1 1e c4 00
}

// Bodies can be built without reflection with the Append functions.
func ExampleAppendArrayHeader() {
	b := wire.AppendArrayHeader(nil, 2)
	b = wire.AppendString(b, "ping")
	b = wire.AppendString(b, "3.0.0")
	fmt.Printf("% x\n", b)
	// Output: 92 a4 70 69 6e 67 a5 33 2e 30 2e 30
}
