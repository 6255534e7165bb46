package appliance

import (
	"log/slog"
	"sort"

	"github.com/sonde-monitoring/sonde/internal/probe"
	dnsprobe "github.com/sonde-monitoring/sonde/internal/probe/dns"
	httpprobe "github.com/sonde-monitoring/sonde/internal/probe/http"
	icmpprobe "github.com/sonde-monitoring/sonde/internal/probe/icmp"
	"github.com/sonde-monitoring/sonde/internal/probe/snmp"
	"github.com/sonde-monitoring/sonde/internal/probe/tcp"
	tlsprobe "github.com/sonde-monitoring/sonde/internal/probe/tls"
)

// Registry maps a collector key and a check key to the probe that runs
// the check. It is written out here, not filled by init functions, so that
// what an appliance can run is in one place.
type Registry map[string]map[string]probe.Func

// Keys lists the collector keys, sorted.
func (r Registry) Keys() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DefaultProbes returns the appliance's probes and a function that
// releases what they hold (the ICMP sockets, shared by every icmp check).
func DefaultProbes(logger *slog.Logger) (Registry, func() error, error) {
	icmp, err := icmpprobe.New(icmpprobe.Options{Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	reg := Registry{
		"icmp": {"icmp": icmp.Probe},
		"tcp":  {"tcp": tcp.Probe},
		"http": {"http": httpprobe.Probe},
		"tls":  {"tls": tlsprobe.Probe},
		"dns":  {"dns": dnsprobe.Probe},
		"snmp": {snmp.CheckSystem: snmp.System, snmp.CheckInterfaces: snmp.Interfaces},
	}
	return reg, icmp.Close, nil
}
