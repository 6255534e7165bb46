package snmp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

// maxInterfaces bounds the rows read: 3000 interfaces of 15 metrics stay
// under the 50,000 values the hub accepts in one result.
const maxInterfaces = 3000

// opt is a value the agent may or may not have given.
type opt[T any] struct {
	v  T
	ok bool
}

func some[T any](v T, ok bool) opt[T] { return opt[T]{v: v, ok: ok} }

// ifRow is one interface, as read column by column.
type ifRow struct {
	index                    int64
	descr, name, alias       opt[string]
	ifType, mtu, admin, oper opt[int64]
	speed, highSpeed         opt[uint64]
	phys                     opt[[]byte]
	inOctets, outOctets      opt[uint64]
	hcInOctets, hcOutOctets  opt[uint64]
	inErrors, outErrors      opt[uint64]
	inDiscards, outDiscards  opt[uint64]
}

// ifColumn is one column of ifTable or ifXTable and where its value goes.
type ifColumn struct {
	oid  string
	name string
	set  func(r *ifRow, pdu gosnmp.SnmpPDU)
}

func setUint(f func(*ifRow) *opt[uint64]) func(*ifRow, gosnmp.SnmpPDU) {
	return func(r *ifRow, pdu gosnmp.SnmpPDU) { *f(r) = some(asUint(pdu)) }
}

func setInt(f func(*ifRow) *opt[int64]) func(*ifRow, gosnmp.SnmpPDU) {
	return func(r *ifRow, pdu gosnmp.SnmpPDU) { *f(r) = some(asInt(pdu)) }
}

func setString(f func(*ifRow) *opt[string]) func(*ifRow, gosnmp.SnmpPDU) {
	return func(r *ifRow, pdu gosnmp.SnmpPDU) { *f(r) = some(asString(pdu)) }
}

const (
	ifEntry  = ".1.3.6.1.2.1.2.2.1"
	ifXEntry = ".1.3.6.1.2.1.31.1.1.1"
)

// ifColumns are the columns Interfaces walks, ifDescr first: it is the one
// every agent has.
var ifColumns = []ifColumn{
	{ifEntry + ".2", "ifDescr", setString(func(r *ifRow) *opt[string] { return &r.descr })},
	{ifEntry + ".3", "ifType", setInt(func(r *ifRow) *opt[int64] { return &r.ifType })},
	{ifEntry + ".4", "ifMtu", setInt(func(r *ifRow) *opt[int64] { return &r.mtu })},
	{ifEntry + ".5", "ifSpeed", setUint(func(r *ifRow) *opt[uint64] { return &r.speed })},
	{ifEntry + ".6", "ifPhysAddress", func(r *ifRow, pdu gosnmp.SnmpPDU) { r.phys = some(asBytes(pdu)) }},
	{ifEntry + ".7", "ifAdminStatus", setInt(func(r *ifRow) *opt[int64] { return &r.admin })},
	{ifEntry + ".8", "ifOperStatus", setInt(func(r *ifRow) *opt[int64] { return &r.oper })},
	{ifEntry + ".10", "ifInOctets", setUint(func(r *ifRow) *opt[uint64] { return &r.inOctets })},
	{ifEntry + ".13", "ifInDiscards", setUint(func(r *ifRow) *opt[uint64] { return &r.inDiscards })},
	{ifEntry + ".14", "ifInErrors", setUint(func(r *ifRow) *opt[uint64] { return &r.inErrors })},
	{ifEntry + ".16", "ifOutOctets", setUint(func(r *ifRow) *opt[uint64] { return &r.outOctets })},
	{ifEntry + ".19", "ifOutDiscards", setUint(func(r *ifRow) *opt[uint64] { return &r.outDiscards })},
	{ifEntry + ".20", "ifOutErrors", setUint(func(r *ifRow) *opt[uint64] { return &r.outErrors })},
	{ifXEntry + ".1", "ifName", setString(func(r *ifRow) *opt[string] { return &r.name })},
	{ifXEntry + ".6", "ifHCInOctets", setUint(func(r *ifRow) *opt[uint64] { return &r.hcInOctets })},
	{ifXEntry + ".10", "ifHCOutOctets", setUint(func(r *ifRow) *opt[uint64] { return &r.hcOutOctets })},
	{ifXEntry + ".15", "ifHighSpeed", setUint(func(r *ifRow) *opt[uint64] { return &r.highSpeed })},
	{ifXEntry + ".18", "ifAlias", setString(func(r *ifRow) *opt[string] { return &r.alias })},
}

// ifTableRows collects rows by ifIndex, at most maxInterfaces of them.
type ifTableRows struct {
	rows      map[int64]*ifRow
	truncated bool
}

// errStop ends a walk early without an error.
var errStop = errors.New("stop walking")

// add stores pdu, a value of column col, in its row. A value whose OID is
// not <col>.<ifIndex> is ignored.
func (t *ifTableRows) add(col ifColumn, pdu gosnmp.SnmpPDU) error {
	suffix, ok := strings.CutPrefix(normOID(pdu.Name), col.oid+".")
	if !ok {
		return nil
	}
	idx, err := strconv.ParseInt(suffix, 10, 32)
	if err != nil || idx < 1 {
		// Not an ifIndex (1..2147483647): not a row of this table.
		return nil
	}
	r := t.rows[idx]
	if r == nil {
		if len(t.rows) >= maxInterfaces {
			t.truncated = true
			return errStop
		}
		r = &ifRow{index: idx}
		t.rows[idx] = r
	}
	col.set(r, pdu)
	return nil
}

// Interfaces walks IF-MIB's ifTable and ifXTable, column by column with
// GETBULK requests, and reports every interface.
func Interfaces(ctx context.Context, t probe.Target, creds probe.Credentials) probe.Result {
	return run(ctx, t, creds, func(ctx context.Context, s *session) probe.Result {
		table := &ifTableRows{rows: make(map[int64]*ifRow)}
		for _, col := range ifColumns {
			// A column has one value per interface: more than
			// maxInterfaces values (of rows or of junk the agent mixes
			// in) end the walk, so an endless table cannot keep the
			// probe busy until its deadline.
			n := 0
			err := s.walk(ctx, col.oid, func(pdu gosnmp.SnmpPDU) error {
				if n++; n > maxInterfaces {
					table.truncated = true
					return errStop
				}
				return table.add(col, pdu)
			})
			if err != nil && !errors.Is(err, errStop) {
				f := s.describe(ctx, err)
				f.msg = fmt.Sprintf("walking %s: %s", col.name, f.msg)
				return errResult(f)
			}
		}
		return interfacesResult(table)
	})
}

// walk reads the subtree under root with GETBULK requests and calls visit
// for each value in it, in order. It stops at the end of the subtree, at
// the end of the MIB view, when visit returns an error, or with an error
// when the agent answers out of order (a loop) or with an error status.
// An agent that finds the answer too big gets half as many rows per
// request.
func (s *session) walk(ctx context.Context, root string, visit func(gosnmp.SnmpPDU) error) error {
	root = normOID(root)
	next := root
	reps := s.reps
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := s.g.GetBulk([]string{next}, 0, reps)
		if err != nil {
			return err
		}
		s.answered = true
		if resp.Error == gosnmp.TooBig && reps > 1 {
			reps /= 2
			continue
		}
		if resp.Error != gosnmp.NoError {
			return s.statusFailure("GETBULK "+next, resp.Error)
		}
		if len(resp.Variables) == 0 {
			return nil
		}
		for _, pdu := range resp.Variables {
			switch pdu.Type {
			case gosnmp.EndOfMibView, gosnmp.NoSuchObject, gosnmp.NoSuchInstance:
				return nil
			}
			name := normOID(pdu.Name)
			if !strings.HasPrefix(name, root+".") {
				return nil
			}
			if compareOIDs(name, next) <= 0 {
				return fail(model.SeverityHigh, "the agent at %s answered out of order (%s after %s): its table is inconsistent, or it loops",
					s.where, sanitizeString(name, 128), sanitizeString(next, 128))
			}
			if err := visit(pdu); err != nil {
				return err
			}
			next = name
		}
	}
}

// ifStatus names IF-MIB's ifAdminStatus and ifOperStatus values.
var ifStatus = map[int64]string{
	1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown",
}

func statusName(v int64) string {
	if s, ok := ifStatus[v]; ok {
		return s
	}
	return strconv.FormatInt(v, 10)
}

// interfacesResult turns the rows into the "interfaces" type.
func interfacesResult(t *ifTableRows) probe.Result {
	if len(t.rows) == 0 {
		return probe.Fail(model.SeverityHigh, "the agent gave no interfaces (is IF-MIB's ifTable, .1.3.6.1.2.1.2.2, in the view of this community or user?)")
	}
	rows := make([]*ifRow, 0, len(t.rows))
	for _, r := range t.rows {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b *ifRow) int { return cmp.Compare(a.index, b.index) })
	names := uniqueNames(rows)
	items := make([]model.Item, len(rows))
	for i, r := range rows {
		items[i] = model.Item{Name: names[i], Metrics: r.metrics()}
	}
	res := probe.Result{Types: []model.Type{{Name: "interfaces", Items: items}}}
	if t.truncated {
		res.Error = &model.CheckError{
			Severity: model.SeverityMedium,
			Message:  fmt.Sprintf("the agent has more than %d interfaces; only the first %d are reported", maxInterfaces, maxInterfaces),
		}
	}
	return res
}

// metrics returns the row's metrics, leaving out what the agent did not
// give.
func (r *ifRow) metrics() []model.Metric {
	m := make([]model.Metric, 0, 15)
	add := func(name string, v model.Value) { m = append(m, model.Metric{Name: name, Value: v}) }
	addStr := func(name string, o opt[string]) {
		if o.ok {
			add(name, model.StringValue(o.v))
		}
	}
	addInt := func(name string, o opt[int64]) {
		if o.ok {
			add(name, model.IntValue(o.v))
		}
	}
	addUint := func(name string, o opt[uint64]) {
		if o.ok {
			add(name, uintValue(o.v))
		}
	}
	add("index", model.IntValue(r.index))
	addStr("descr", r.descr)
	addStr("alias", r.alias)
	addInt("type", r.ifType)
	addInt("mtu", r.mtu)
	if sp, ok := r.speedBits(); ok {
		add("speed", uintValue(sp))
	}
	if r.phys.ok {
		if mac, ok := formatMAC(r.phys.v); ok {
			add("mac", model.StringValue(mac))
		}
	}
	if r.admin.ok {
		add("adminStatus", model.StringValue(statusName(r.admin.v)))
	}
	if r.oper.ok {
		add("operStatus", model.StringValue(statusName(r.oper.v)))
	}
	addUint("inOctets", preferHC(r.hcInOctets, r.inOctets))
	addUint("outOctets", preferHC(r.hcOutOctets, r.outOctets))
	addUint("inErrors", r.inErrors)
	addUint("outErrors", r.outErrors)
	addUint("inDiscards", r.inDiscards)
	addUint("outDiscards", r.outDiscards)
	return m
}

func preferHC(hc, c32 opt[uint64]) opt[uint64] {
	if hc.ok {
		return hc
	}
	return c32
}

// speedBits is the interface's speed in bits per second: ifSpeed, unless
// it is missing, saturated (IF-MIB: 4,294,967,295 means "faster; see
// ifHighSpeed") or zero while ifHighSpeed is not.
func (r *ifRow) speedBits() (uint64, bool) {
	high := r.highSpeed.ok && r.highSpeed.v <= math.MaxUint64/1_000_000
	switch {
	case r.speed.ok && r.speed.v < math.MaxUint32 && !(r.speed.v == 0 && high && r.highSpeed.v > 0):
		return r.speed.v, true
	case high:
		return r.highSpeed.v * 1_000_000, true
	case r.speed.ok:
		return r.speed.v, true
	}
	return 0, false
}

// uniqueNames names each row by ifName, else ifDescr, else its ifIndex;
// a name that several rows share gets "#<ifIndex>" appended, and a
// collision that leaves (an ifName that already ends in "#<n>") a further
// "#<k>".
func uniqueNames(rows []*ifRow) []string {
	base := make([]string, len(rows))
	count := make(map[string]int, len(rows))
	for i, r := range rows {
		n := ""
		if r.name.ok {
			n = itemName(r.name.v)
		}
		if n == "" && r.descr.ok {
			n = itemName(r.descr.v)
		}
		if n == "" {
			n = strconv.FormatInt(r.index, 10)
		}
		base[i] = n
		count[n]++
	}
	used := make(map[string]bool, len(rows))
	names := make([]string, len(rows))
	for i, r := range rows {
		n := base[i]
		if count[n] > 1 {
			n += "#" + strconv.FormatInt(r.index, 10)
		}
		for k := 2; used[n]; k++ {
			n = base[i] + "#" + strconv.FormatInt(r.index, 10) + "#" + strconv.Itoa(k)
		}
		used[n] = true
		names[i] = n
	}
	return names
}
