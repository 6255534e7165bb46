package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// EncodeCheckData encodes d in the probe format of INFRASONAR-WIRE.md §4, the
// body of a data packet:
//
//	{"result": {type: [{"name": …, metric: value, …}, …], …} or nil,
//	 "error": {"error": message, "severity": 0|1|2} or nil,
//	 "framework": {"duration": float, "timestamp": int, "no_count": true, "unchanged": true}}
//
// no_count and unchanged are written only when true, unchanged only for a
// result without types; "version" is added when d has one. Types, items and
// metrics keep their order; floats stay floats even when integral.
func EncodeCheckData(d *model.CheckData) []byte {
	return AppendCheckData(make([]byte, 0, checkDataSizeHint(d)), d)
}

// AppendCheckData appends the encoding of EncodeCheckData to dst.
func AppendCheckData(dst []byte, d *model.CheckData) []byte {
	b := dst
	n := 3
	if d.Version != "" {
		n++
	}
	b = AppendMapHeader(b, n)
	b = AppendString(b, "result")
	if d.HasResult {
		b = AppendMapHeader(b, len(d.Types))
		for _, t := range d.Types {
			b = AppendString(b, t.Name)
			b = AppendArrayHeader(b, len(t.Items))
			for _, it := range t.Items {
				b = AppendMapHeader(b, 1+len(it.Metrics))
				b = AppendString(b, "name")
				b = AppendString(b, it.Name)
				for _, m := range it.Metrics {
					b = AppendString(b, m.Name)
					b = appendMetricValue(b, m.Value)
				}
			}
		}
	} else {
		b = AppendNil(b)
	}
	b = AppendString(b, "error")
	if d.Error != nil {
		b = AppendMapHeader(b, 2)
		b = AppendString(b, "error")
		b = AppendString(b, d.Error.Message)
		b = AppendString(b, "severity")
		b = AppendInt(b, int64(d.Error.Severity))
	} else {
		b = AppendNil(b)
	}
	b = AppendString(b, "framework")
	unchanged := d.Unchanged && !d.HasResult
	fn := 2
	if d.NoCount {
		fn++
	}
	if unchanged {
		fn++
	}
	b = AppendMapHeader(b, fn)
	b = AppendString(b, "duration")
	b = AppendFloat64(b, d.Duration)
	b = AppendString(b, "timestamp")
	b = AppendInt(b, d.Timestamp)
	if d.NoCount {
		b = AppendString(b, "no_count")
		b = AppendBool(b, true)
	}
	if unchanged {
		b = AppendString(b, "unchanged")
		b = AppendBool(b, true)
	}
	if d.Version != "" {
		b = AppendString(b, "version")
		b = AppendString(b, d.Version)
	}
	return b
}

func appendMetricValue(b []byte, v model.Value) []byte {
	switch v.Kind {
	case model.KindInt:
		return AppendInt(b, v.Int)
	case model.KindFloat:
		return AppendFloat64(b, v.F)
	case model.KindString:
		return AppendString(b, v.Str)
	case model.KindBool:
		return AppendBool(b, v.Bool)
	case model.KindList:
		b = AppendArrayHeader(b, len(v.List))
		for _, e := range v.List {
			b = appendMetricValue(b, e)
		}
		return b
	}
	// A Value without a kind has no value: nil, which decoding drops.
	return AppendNil(b)
}

// checkDataSizeHint guesses the encoded size, so that encoding a large
// result does not grow its buffer a dozen times.
func checkDataSizeHint(d *model.CheckData) int {
	n := 96 + len(d.Version)
	if d.Error != nil {
		n += len(d.Error.Message)
	}
	for _, t := range d.Types {
		n += len(t.Name) + 8
		for _, it := range t.Items {
			n += len(it.Name) + 10
			for _, m := range it.Metrics {
				n += len(m.Name) + 10 + len(m.Value.Str) + 9*len(m.Value.List)
			}
		}
	}
	return n
}

// DecodeCheckData reads a data packet's body, check data in the probe format
// of INFRASONAR-WIRE.md §4, with the rules and limits of
// model.DecodeCheckData: names required and bounded, item names unique
// within a type, a metric keeping its kind family from item to item, no NaN
// or infinity, lists of one family of scalars, nil metric values dropped.
// Unknown keys are skipped (their nesting bounded); integer map keys read as
// their decimal strings. It accepts the agent format's "data", "runtime",
// "timestamp", "no_count" and "version" too, as the JSON decoder does.
//
// Like model.DecodeCheckData it does not check the timestamp against the
// clock: call (*model.CheckData).Validate. Every error is a
// *model.DecodeError wrapping model.ErrInvalid, with the path of the value
// in error (result.cpu[2].usage); malformed MessagePack included.
func DecodeCheckData(body []byte, lim model.Limits) (*model.CheckData, error) {
	d := &cdDecoder{decoder: decoder{b: body}, lim: lim.WithDefaults()}
	cd, err := d.checkData()
	if err != nil {
		return nil, err
	}
	if d.off != len(body) {
		return nil, errAt("", "%d bytes follow the MessagePack map", len(body)-d.off)
	}
	return cd, nil
}

func errAt(path, format string, args ...any) error {
	return &model.DecodeError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// loc is where the decoder is, made into a path only for an error: a
// top-level path (error.severity) or a type's (result.cpu), then an item
// index, a metric name and a list index, each when set. The paths read as
// those of model.DecodeCheckData.
type loc struct {
	base string
	item int    // item index + 1; 0 outside an item
	key  string // metric name within the item
	elem int    // list element index + 1; 0 outside a list
}

func at(path string) loc { return loc{base: path} }

func (l loc) String() string {
	if l.item == 0 {
		return l.base
	}
	b := make([]byte, 0, len(l.base)+len(l.key)+16)
	b = append(b, l.base...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(l.item-1), 10)
	b = append(b, ']')
	if l.key != "" {
		if plainKey(l.key) {
			b = append(b, '.')
			b = append(b, l.key...)
		} else {
			b = append(b, '[')
			b = strconv.AppendQuote(b, l.key)
			b = append(b, ']')
		}
	}
	if l.elem > 0 {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(l.elem-1), 10)
		b = append(b, ']')
	}
	return string(b)
}

func errLoc(l loc, format string, args ...any) error {
	return errAt(l.String(), format, args...)
}

// join appends key k to path: path.k, or path["k"] when k is empty or holds
// characters that would make the path ambiguous or unreadable.
func join(path, k string) string {
	if plainKey(k) {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	return path + "[" + strconv.Quote(k) + "]"
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !unicode.IsPrint(r) || r == utf8.RuneError || strings.ContainsRune(`."[]\`, r) {
			return false
		}
	}
	return true
}

// keySet finds repeated keys: a short list while the map is small, a map
// once it grows. It is reused from one map to the next.
type keySet struct {
	list []string
	set  map[string]struct{}
	big  bool
}

const smallKeySet = 8

// add records k and reports whether it was already there.
func (s *keySet) add(k string) (dup bool) {
	if !s.big {
		for _, e := range s.list {
			if e == k {
				return true
			}
		}
		if len(s.list) < smallKeySet {
			s.list = append(s.list, k)
			return false
		}
		if s.set == nil {
			s.set = make(map[string]struct{}, 4*smallKeySet)
		}
		for _, e := range s.list {
			s.set[e] = struct{}{}
		}
		s.big = true
	}
	if _, ok := s.set[k]; ok {
		return true
	}
	s.set[k] = struct{}{}
	return false
}

func (s *keySet) reset() {
	clear(s.list)
	s.list = s.list[:0]
	if s.big {
		clear(s.set)
		s.big = false
	}
}

// cdDecoder decodes check data.
type cdDecoder struct {
	decoder
	lim model.Limits
	// values counts the metric values and list elements read, against
	// lim.MaxValues: decoded values take far more memory than their
	// MessagePack.
	values int

	// Scratch space reused from one item or type to the next.
	keys      keySet // metric names in an item
	names     keySet // type names in a result
	itemNames keySet // item names in a type
	kinds     map[string]model.Kind
	itemKeys  []string // the keys of the item being read, "name" included
	prevKeys  []string // the keys of the item before
}

// tok reads one token; a malformed one is an error at l.
func (d *cdDecoder) tok(l loc) (token, error) {
	t, err := d.next()
	if err != nil {
		return t, malformed(l, err)
	}
	return t, nil
}

func malformed(l loc, err error) error {
	return errLoc(l, "%s", err.Error())
}

// keyBytes reads a map key; an integer key reads as its decimal string.
// The bytes of a str key alias the body.
func (d *cdDecoder) keyBytes(l loc) ([]byte, error) {
	t, err := d.tok(l)
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case kindStr:
		return t.s, nil
	case kindInt:
		return strconv.AppendInt(nil, t.i, 10), nil
	case kindUint:
		return strconv.AppendUint(nil, t.u, 10), nil
	}
	return nil, errLoc(l, "expected a map key (a string or an integer), got %s", t.describe())
}

func (d *cdDecoder) key(l loc) (string, error) {
	k, err := d.keyBytes(l)
	return string(k), err
}

// skipValue discards the value of an unknown key at path p, nested inside
// depth levels of check data.
func (d *cdDecoder) skipValue(p string, depth int) error {
	levels := d.lim.MaxSkippedDepth - depth
	if err := d.skip(levels); err != nil {
		if errors.Is(err, errNested) {
			return errAt(p, "nested more than %d levels deep", d.lim.MaxSkippedDepth)
		}
		return malformed(at(p), err)
	}
	return nil
}

func (d *cdDecoder) checkData() (*model.CheckData, error) {
	t, err := d.tok(at(""))
	if err != nil {
		return nil, err
	}
	if t.kind != kindMap {
		return nil, errAt("", "expected a MessagePack map, got %s", t.describe())
	}
	cd := &model.CheckData{}
	var seen keySet
	var hasData, hasError, resultKey bool
	for range t.n {
		k, err := d.key(at(""))
		if err != nil {
			return nil, err
		}
		if seen.add(k) {
			return nil, errAt(join("", k), "appears twice")
		}
		switch k {
		case "result", "data":
			if resultKey {
				return nil, errAt(k, "both data and result given; send one")
			}
			resultKey = true
			v, err := d.tok(at(k))
			if err != nil {
				return nil, err
			}
			if v.kind == kindNil {
				continue
			}
			if v.kind != kindMap {
				return nil, errAt(k, "expected a map of types, got %s", v.describe())
			}
			if cd.Types, err = d.types(k, v.n); err != nil {
				return nil, err
			}
			cd.HasResult = true
			hasData = true
		case "error":
			v, err := d.tok(at(k))
			if err != nil {
				return nil, err
			}
			if v.kind == kindNil {
				continue
			}
			if v.kind != kindMap {
				return nil, errAt(k, "expected a map with error and severity, got %s", v.describe())
			}
			if cd.Error, err = d.checkError(k, v.n); err != nil {
				return nil, err
			}
			hasError = true
		case "framework":
			if err := d.framework(cd); err != nil {
				return nil, err
			}
		case "version":
			if cd.Version, err = d.optString(k, d.lim.MaxVersionLen); err != nil {
				return nil, err
			}
		case "runtime":
			if cd.Duration, err = d.duration(k); err != nil {
				return nil, err
			}
		case "timestamp":
			if cd.Timestamp, err = d.timestamp(k); err != nil {
				return nil, err
			}
		case "no_count":
			if cd.NoCount, err = d.optBool(k); err != nil {
				return nil, err
			}
		default:
			if err := d.skipValue(join("", k), 0); err != nil {
				return nil, err
			}
		}
	}
	if hasData {
		cd.Unchanged = false
	}
	if !hasData && !hasError && !cd.Unchanged {
		return nil, errAt("", "check data needs result (or data) or error")
	}
	return cd, nil
}

func (d *cdDecoder) framework(cd *model.CheckData) error {
	const p = "framework"
	t, err := d.tok(at(p))
	if err != nil {
		return err
	}
	if t.kind == kindNil {
		return nil
	}
	if t.kind != kindMap {
		return errAt(p, "expected a map, got %s", t.describe())
	}
	var seen keySet
	for range t.n {
		k, err := d.key(at(p))
		if err != nil {
			return err
		}
		kp := join(p, k)
		if seen.add(k) {
			return errAt(kp, "appears twice")
		}
		switch k {
		case "duration":
			if cd.Duration, err = d.duration(kp); err != nil {
				return err
			}
		case "timestamp":
			if cd.Timestamp, err = d.timestamp(kp); err != nil {
				return err
			}
		case "no_count":
			if cd.NoCount, err = d.optBool(kp); err != nil {
				return err
			}
		case "unchanged":
			if cd.Unchanged, err = d.optBool(kp); err != nil {
				return err
			}
		default:
			if err := d.skipValue(kp, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *cdDecoder) checkError(p string, n int) (*model.CheckError, error) {
	ce := &model.CheckError{Severity: model.SeverityMedium}
	var hasMsg bool
	var seen keySet
	for range n {
		k, err := d.key(at(p))
		if err != nil {
			return nil, err
		}
		kp := join(p, k)
		if seen.add(k) {
			return nil, errAt(kp, "appears twice")
		}
		switch k {
		case "error", "message":
			if hasMsg {
				return nil, errAt(kp, "both message and error given; send one")
			}
			s, err := d.optString(kp, d.lim.MaxMessageLen)
			if err != nil {
				return nil, err
			}
			ce.Message, hasMsg = s, true
		case "severity":
			t, err := d.tok(at(kp))
			if err != nil {
				return nil, err
			}
			switch t.kind {
			case kindStr:
				if ce.Severity, err = model.ParseSeverity(string(t.s)); err != nil {
					return nil, errAt(kp, "%s", err.Error())
				}
			case kindInt:
				if t.i < 0 || t.i > 2 {
					return nil, errAt(kp, "%d is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)", t.i)
				}
				ce.Severity = model.Severity(t.i)
			case kindUint, kindFloat:
				return nil, errAt(kp, "%s is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)", t.describe())
			case kindNil:
			default:
				return nil, errAt(kp, "expected a severity, got %s", t.describe())
			}
		default:
			if err := d.skipValue(kp, 2); err != nil {
				return nil, err
			}
		}
	}
	if !hasMsg || ce.Message == "" {
		return nil, errAt(p, "has no message")
	}
	return ce, nil
}

func (d *cdDecoder) types(p string, n int) ([]model.Type, error) {
	if n == 0 {
		return nil, nil
	}
	types := make([]model.Type, 0, min(n, d.lim.MaxTypes))
	d.names.reset()
	for range n {
		name, err := d.key(at(p))
		if err != nil {
			return nil, err
		}
		if err := d.checkName(at(p), "type name", name, d.lim.MaxNameLen); err != nil {
			return nil, err
		}
		tp := join(p, name)
		if d.names.add(name) {
			return nil, errAt(tp, "type appears twice")
		}
		if len(types) >= d.lim.MaxTypes {
			return nil, errAt(tp, "more than %d types in one result", d.lim.MaxTypes)
		}
		t, err := d.tok(at(tp))
		if err != nil {
			return nil, err
		}
		if t.kind != kindArray {
			return nil, errAt(tp, "expected an array of items, got %s", t.describe())
		}
		items, err := d.items(tp, t.n)
		if err != nil {
			return nil, err
		}
		types = append(types, model.Type{Name: name, Items: items})
	}
	return types, nil
}

// items reads the n items of the type at tp.
func (d *cdDecoder) items(tp string, n int) ([]model.Item, error) {
	if n == 0 {
		return nil, nil
	}
	items := make([]model.Item, 0, min(n, d.lim.MaxItems))
	if d.kinds != nil {
		clear(d.kinds)
	}
	d.itemNames.reset()
	d.prevKeys = d.prevKeys[:0]
	for i := range n {
		il := loc{base: tp, item: i + 1}
		t, err := d.tok(il)
		if err != nil {
			return nil, err
		}
		if t.kind != kindMap {
			return nil, errLoc(il, "expected an item map, got %s", t.describe())
		}
		if i >= d.lim.MaxItems {
			return nil, errLoc(il, "more than %d items in one type", d.lim.MaxItems)
		}
		if i == 1 {
			// From the second item on, metrics must keep the kind
			// family they had in the items before.
			if d.kinds == nil {
				d.kinds = make(map[string]model.Kind, len(items[0].Metrics))
			}
			for _, m := range items[0].Metrics {
				d.kinds[m.Name] = m.Value.Kind
			}
		}
		var prev []model.Metric
		if len(items) > 0 {
			prev = items[len(items)-1].Metrics
		}
		it, err := d.item(il, t.n, i > 0, prev)
		if err != nil {
			return nil, err
		}
		if d.itemNames.add(it.Name) {
			j := 0
			for items[j].Name != it.Name {
				j++
			}
			return nil, errLoc(il, "item name %q repeats item %d; item names must be unique within a type", it.Name, j)
		}
		items = append(items, it)
	}
	return items, nil
}

// item reads one item of n keys. With checkKinds, its metrics must keep the
// kinds they have in the type's earlier items (d.kinds); prev holds the
// metrics of the item before, which usually come in the same order.
func (d *cdDecoder) item(il loc, n int, checkKinds bool, prev []model.Metric) (model.Item, error) {
	var it model.Item
	var hasName bool
	var metrics []model.Metric
	// While this item's keys repeat those of the item before, one for one,
	// they are distinct and their strings can be shared; from the first
	// that does not, keys go through d.keys.
	aligned := len(d.prevKeys) > 0
	d.keys.reset()
	d.itemKeys = d.itemKeys[:0]
	for j := range n {
		kb, err := d.keyBytes(il)
		if err != nil {
			return it, err
		}
		var k string
		if aligned && j < len(d.prevKeys) && d.prevKeys[j] == string(kb) {
			k = d.prevKeys[j]
		} else {
			k = string(kb)
			if aligned {
				aligned = false
				for _, e := range d.itemKeys {
					d.keys.add(e)
				}
			}
		}
		ml := il
		ml.key = k
		if !aligned && d.keys.add(k) {
			return it, errLoc(ml, "metric appears twice in the item")
		}
		d.itemKeys = append(d.itemKeys, k)
		if k == "name" {
			t, err := d.tok(ml)
			if err != nil {
				return it, err
			}
			if t.kind != kindStr {
				return it, errLoc(ml, "the item name must be a string, got %s", t.describe())
			}
			if len(t.s) > d.lim.MaxItemNameLen {
				return it, errLoc(ml, "item name is %d bytes, more than %d", len(t.s), d.lim.MaxItemNameLen)
			}
			it.Name, hasName = string(t.s), true
			continue
		}
		if err := d.checkName(il, "metric name", k, d.lim.MaxNameLen); err != nil {
			return it, err
		}
		if len(metrics) >= d.lim.MaxMetrics {
			return it, errLoc(ml, "more than %d metrics in one item", d.lim.MaxMetrics)
		}
		v, present, err := d.value(ml, true)
		if err != nil {
			return it, err
		}
		if !present {
			continue // nil: the metric has no value this time
		}
		if checkKinds {
			m := len(metrics)
			if m < len(prev) && prev[m].Name == k {
				if pk := prev[m].Value.Kind; pk.Family() != v.Kind.Family() {
					return it, errKind(ml, v.Kind, pk)
				}
			} else if pk, ok := d.kinds[k]; ok {
				if pk.Family() != v.Kind.Family() {
					return it, errKind(ml, v.Kind, pk)
				}
			} else {
				d.kinds[k] = v.Kind
			}
		}
		if metrics == nil {
			metrics = make([]model.Metric, 0, min(n-j, d.lim.MaxMetrics))
		}
		metrics = append(metrics, model.Metric{Name: k, Value: v})
	}
	if !hasName {
		return it, errLoc(il, "item has no name")
	}
	it.Metrics = metrics
	d.prevKeys, d.itemKeys = d.itemKeys, d.prevKeys
	return it, nil
}

func errKind(l loc, now, before model.Kind) error {
	return errLoc(l, "is %s here but %s in an earlier item; a metric keeps its type", withArticle(now), withArticle(before))
}

func withArticle(k model.Kind) string {
	if k == model.KindInt {
		return "an int"
	}
	return "a " + k.String()
}

// value reads one metric value; present is false for nil.
func (d *cdDecoder) value(l loc, allowList bool) (model.Value, bool, error) {
	t, err := d.tok(l)
	if err != nil {
		return model.Value{}, false, err
	}
	if d.values++; d.values > d.lim.MaxValues {
		return model.Value{}, false, errLoc(l, "the result holds more than %d values", d.lim.MaxValues)
	}
	switch t.kind {
	case kindNil:
		return model.Value{}, false, nil
	case kindBool:
		return model.BoolValue(t.b), true, nil
	case kindInt:
		return model.IntValue(t.i), true, nil
	case kindUint:
		// Larger than int64 (a uint64 counter): a float, as the JSON
		// decoder keeps it.
		return model.FloatValue(float64(t.u)), true, nil
	case kindFloat:
		if math.IsNaN(t.f) {
			return model.Value{}, false, errLoc(l, "NaN is not a value; send nil for a missing value")
		}
		if math.IsInf(t.f, 0) {
			return model.Value{}, false, errLoc(l, "the float %v is out of range", t.f)
		}
		return model.FloatValue(t.f), true, nil
	case kindStr:
		if len(t.s) > d.lim.MaxStringLen {
			return model.Value{}, false, errLoc(l, "string is %d bytes, more than %d", len(t.s), d.lim.MaxStringLen)
		}
		return model.StringValue(string(t.s)), true, nil
	case kindArray:
		if allowList {
			return d.list(l, t.n)
		}
		return model.Value{}, false, errLoc(l, "lists inside lists are not allowed")
	}
	return model.Value{}, false, errLoc(l, "a metric value must be an int, float, string, bool or a list of those, not %s", t.describe())
}

// list reads a list value of n elements.
func (d *cdDecoder) list(l loc, n int) (model.Value, bool, error) {
	out := model.Value{Kind: model.KindList, List: make([]model.Value, 0, min(n, d.lim.MaxListLen))}
	var family string
	for i := range n {
		el := l
		el.elem = i + 1
		if i >= d.lim.MaxListLen {
			return model.Value{}, false, errLoc(el, "list has more than %d elements", d.lim.MaxListLen)
		}
		v, present, err := d.value(el, false)
		if err != nil {
			return model.Value{}, false, err
		}
		if !present {
			return model.Value{}, false, errLoc(el, "nil inside a list is not allowed")
		}
		if family == "" {
			family = v.Kind.Family()
		} else if f := v.Kind.Family(); f != family {
			return model.Value{}, false, errLoc(el, "list mixes %s and %s values", family, f)
		}
		out.List = append(out.List, v)
	}
	return out, true, nil
}

func (d *cdDecoder) checkName(l loc, what, name string, maxLen int) error {
	if name == "" {
		return errLoc(l, "%s is empty", what)
	}
	if len(name) > maxLen {
		return errLoc(l, "%s %s is %d bytes, more than %d", what, quoteShort(name), len(name), maxLen)
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == utf8.RuneError {
			return errLoc(l, "%s %q holds a control or invalid character", what, name)
		}
	}
	return nil
}

// quoteShort quotes s, or its first 20 bytes or so and an ellipsis.
func quoteShort(s string) string {
	n := 20
	if len(s) <= n {
		return strconv.Quote(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "…"
}

func (d *cdDecoder) optString(p string, maxLen int) (string, error) {
	t, err := d.tok(at(p))
	if err != nil {
		return "", err
	}
	switch t.kind {
	case kindNil:
		return "", nil
	case kindStr:
		if len(t.s) > maxLen {
			return "", errAt(p, "is %d bytes, more than %d", len(t.s), maxLen)
		}
		return string(t.s), nil
	}
	return "", errAt(p, "expected a string, got %s", t.describe())
}

func (d *cdDecoder) optBool(p string) (bool, error) {
	t, err := d.tok(at(p))
	if err != nil {
		return false, err
	}
	switch t.kind {
	case kindNil:
		return false, nil
	case kindBool:
		return t.b, nil
	}
	return false, errAt(p, "expected true or false, got %s", t.describe())
}

// optNumber reads an int or a float (nil is 0), for the run time and the
// timestamp: InfraSonar's probes send either.
func (d *cdDecoder) optNumber(p string) (token, error) {
	t, err := d.tok(at(p))
	if err != nil {
		return t, err
	}
	switch t.kind {
	case kindNil:
		return token{kind: kindInt}, nil
	case kindInt, kindUint:
		return t, nil
	case kindFloat:
		if math.IsNaN(t.f) || math.IsInf(t.f, 0) {
			return t, errAt(p, "the float %v is out of range", t.f)
		}
		return t, nil
	}
	return t, errAt(p, "expected a number, got %s", t.describe())
}

// duration reads a run time in seconds.
func (d *cdDecoder) duration(p string) (float64, error) {
	t, err := d.optNumber(p)
	if err != nil {
		return 0, err
	}
	f := t.f
	switch t.kind {
	case kindInt:
		f = float64(t.i)
	case kindUint:
		f = float64(t.u)
	}
	if f < 0 {
		return 0, errAt(p, "%v seconds is negative", f)
	}
	return f, nil
}

// maxTimestamp bounds a Unix time in seconds, as the JSON decoder does: a
// larger one is in milliseconds or nonsense.
const maxTimestamp = 1 << 40

func (d *cdDecoder) timestamp(p string) (int64, error) {
	t, err := d.optNumber(p)
	if err != nil {
		return 0, err
	}
	switch t.kind {
	case kindInt:
		if t.i < 0 || t.i > maxTimestamp {
			return 0, errAt(p, "%d is not a Unix time in seconds", t.i)
		}
		return t.i, nil
	case kindUint:
		return 0, errAt(p, "%d is not a Unix time in seconds", t.u)
	}
	if t.f < 0 || t.f > maxTimestamp {
		return 0, errAt(p, "%v is not a Unix time in seconds", t.f)
	}
	return int64(t.f), nil // truncated, as the JSON decoder does
}
