package snmp

import (
	"context"
	"fmt"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

// systemObject is one scalar of SNMPv2-MIB's system group and the metric it
// becomes.
type systemObject struct {
	oid    string
	metric string
	conv   func(gosnmp.SnmpPDU) (model.Value, bool)
}

func stringMetric(pdu gosnmp.SnmpPDU) (model.Value, bool) {
	s, ok := asString(pdu)
	return model.StringValue(s), ok
}

func oidMetric(pdu gosnmp.SnmpPDU) (model.Value, bool) {
	s, ok := asOID(pdu)
	return model.StringValue(s), ok
}

// uptimeMetric turns TimeTicks (hundredths of a second) into seconds.
func uptimeMetric(pdu gosnmp.SnmpPDU) (model.Value, bool) {
	if pdu.Type != gosnmp.TimeTicks {
		return model.Value{}, false
	}
	u, ok := asUint(pdu)
	return model.FloatValue(float64(u) / 100), ok
}

// systemObjects are the objects System reads, in the order of the item's
// metrics.
var systemObjects = []systemObject{
	{".1.3.6.1.2.1.1.5.0", "sysName", stringMetric},
	{".1.3.6.1.2.1.1.1.0", "sysDescr", stringMetric},
	{".1.3.6.1.2.1.1.2.0", "sysObjectID", oidMetric},
	{".1.3.6.1.2.1.1.4.0", "sysContact", stringMetric},
	{".1.3.6.1.2.1.1.6.0", "sysLocation", stringMetric},
	{".1.3.6.1.2.1.1.3.0", "uptime", uptimeMetric},
}

// System reads the agent's system group (sysName, sysDescr, sysObjectID,
// sysContact, sysLocation, sysUpTime) with one GET request.
func System(ctx context.Context, t probe.Target, creds probe.Credentials) probe.Result {
	return run(ctx, t, creds, func(ctx context.Context, s *session) probe.Result {
		oids := make([]string, len(systemObjects))
		for i, o := range systemObjects {
			oids[i] = o.oid
		}
		resp, err := s.g.Get(oids)
		if err != nil {
			return errResult(s.describe(ctx, err))
		}
		if resp.Error != gosnmp.NoError {
			return errResult(s.statusFailure("the GET of the system group", resp.Error))
		}
		return systemResult(resp.Variables)
	})
}

// systemResult turns the answer to the system group's GET into the
// "system" type.
func systemResult(vars []gosnmp.SnmpPDU) probe.Result {
	byOID := make(map[string]gosnmp.SnmpPDU, len(vars))
	for _, v := range vars {
		byOID[normOID(v.Name)] = v
	}
	metrics := make([]model.Metric, 0, len(systemObjects))
	var missing []string
	for _, o := range systemObjects {
		pdu, ok := byOID[o.oid]
		var v model.Value
		if ok {
			v, ok = o.conv(pdu)
		}
		if !ok {
			missing = append(missing, o.metric)
			continue
		}
		metrics = append(metrics, model.Metric{Name: o.metric, Value: v})
	}
	if len(metrics) == 0 {
		return probe.Fail(model.SeverityHigh, "the agent gave none of the system group (is SNMPv2-MIB's system, .1.3.6.1.2.1.1, in the view of this community or user?)")
	}
	res := probe.Result{Types: []model.Type{{Name: "system", Items: []model.Item{{Name: "system", Metrics: metrics}}}}}
	if len(missing) > 0 {
		res.Error = &model.CheckError{
			Severity: model.SeverityLow,
			Message:  fmt.Sprintf("the agent did not give %s", strings.Join(missing, ", ")),
		}
	}
	return res
}
