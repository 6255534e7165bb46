package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// realistic is a check result of about 2 KB in MessagePack, shaped like a
// host check: one system item, eight CPUs, four disks and three interfaces.
func realistic() *model.CheckData {
	cd := &model.CheckData{HasResult: true, Timestamp: 1700000000, Duration: 0.0421}
	sys := model.Item{Name: "system", Metrics: []model.Metric{
		met("hostname", sv("web1.example.com")), met("uptime", iv(8640023)), met("loadAvg", lst(fv(0.52), fv(0.31), fv(0.2))),
		met("processes", iv(312)), met("memTotal", iv(16777216)), met("memFree", iv(4194304)), met("percentUsed", fv(75.0)),
		met("kernel", sv("6.1.0-18-amd64")), met("rebootRequired", bv(false)),
	}}
	cd.Types = append(cd.Types, model.Type{Name: "system", Items: []model.Item{sys}})
	var cpus, disks, nets model.Type
	cpus.Name, disks.Name, nets.Name = "cpu", "disk", "network"
	for i := range 8 {
		cpus.Items = append(cpus.Items, model.Item{Name: fmt.Sprintf("cpu%d", i), Metrics: []model.Metric{
			met("usage", fv(12.5+float64(i))), met("user", fv(8.25)), met("system", fv(3.5)), met("iowait", fv(0.75)),
			met("idle", fv(87.5)), met("steal", fv(0)), met("mhz", iv(2400)),
		}})
	}
	for i := range 4 {
		disks.Items = append(disks.Items, model.Item{Name: fmt.Sprintf("/dev/sd%c", 'a'+i), Metrics: []model.Metric{
			met("mount", sv([]string{"/", "/var", "/home", "/srv"}[i])), met("total", iv(107374182400)), met("free", iv(53687091200)),
			met("percentUsed", fv(50.0)), met("readBytes", iv(123456789)), met("writeBytes", iv(987654321)),
			met("readOps", iv(12345)), met("writeOps", iv(54321)), met("fsType", sv("ext4")),
		}})
	}
	for _, n := range []string{"eth0", "eth1", "lo"} {
		nets.Items = append(nets.Items, model.Item{Name: n, Metrics: []model.Metric{
			met("bytesIn", iv(1234567890)), met("bytesOut", iv(987654321)), met("packetsIn", iv(1234567)),
			met("packetsOut", iv(7654321)), met("errorsIn", iv(0)), met("errorsOut", iv(0)), met("up", bv(true)),
			met("addresses", lst(sv("10.0.0.1"), sv("fe80::1"))),
		}})
	}
	cd.Types = append(cd.Types, cpus, disks, nets)
	return cd
}

func BenchmarkReadPacket(b *testing.B) {
	body := EncodeCheckData(realistic())
	stream := AppendPacket(nil, Packet{PartID: 12, PID: 1, Type: TypeData, Body: body})
	r := bytes.NewReader(stream)
	pr := NewReader(r, 0)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(stream)
		if _, err := pr.ReadPacket(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWritePacket(b *testing.B) {
	p := Packet{PartID: 12, PID: 1, Type: TypeData, Body: EncodeCheckData(realistic())}
	var buf bytes.Buffer
	b.SetBytes(int64(HeaderSize + len(p.Body)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := WritePacket(&buf, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCheckData(b *testing.B) {
	body := EncodeCheckData(realistic())
	if _, err := DecodeCheckData(body, model.Limits{}); err != nil {
		b.Fatal(err)
	}
	b.Logf("body: %d bytes", len(body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCheckData(body, model.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCheckDataJSON decodes the same result in the agent JSON
// format with the model's decoder, for comparison.
func BenchmarkDecodeCheckDataJSON(b *testing.B) {
	body := realistic().MarshalAgentJSON()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := model.DecodeCheckData(bytes.NewReader(body), model.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeCheckData(b *testing.B) {
	cd := realistic()
	b.SetBytes(int64(len(EncodeCheckData(cd))))
	b.ReportAllocs()
	for b.Loop() {
		EncodeCheckData(cd)
	}
}

func BenchmarkDecode(b *testing.B) {
	body, err := MarshalSetAssets(SetAssets{Appliances: []ApplianceZone{{ID: 1}}, Assets: sampleAssets()})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
