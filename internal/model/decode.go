package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits bound what one check result may hold. The zero value of a field
// means its default (DefaultLimits).
type Limits struct {
	MaxTypes        int // types per result
	MaxItems        int // items per type
	MaxMetrics      int // metrics per item
	MaxNameLen      int // bytes in a type or metric name
	MaxItemNameLen  int // bytes in an item name
	MaxStringLen    int // bytes in a string value
	MaxListLen      int // elements in a list value
	MaxValues       int // metric values and list elements in one result
	MaxFuture       time.Duration
	MaxAge          time.Duration
	MaxMessageLen   int // bytes in an error message
	MaxVersionLen   int
	MaxSkippedDepth int // nesting allowed inside ignored fields
}

// DefaultLimits returns the limits used when a field of Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxTypes:        200,
		MaxItems:        20000,
		MaxMetrics:      1000,
		MaxNameLen:      200,
		MaxItemNameLen:  1024,
		MaxStringLen:    65536,
		MaxListLen:      4096,
		MaxValues:       50000,
		MaxFuture:       10 * time.Minute,
		MaxAge:          400 * 24 * time.Hour,
		MaxMessageLen:   8192,
		MaxVersionLen:   64,
		MaxSkippedDepth: 16,
	}
}

// WithDefaults returns l with every zero (or negative) field set to its
// DefaultLimits value: the limits a decoder actually applies.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.MaxTypes, d.MaxTypes)
	pick(&l.MaxItems, d.MaxItems)
	pick(&l.MaxMetrics, d.MaxMetrics)
	pick(&l.MaxNameLen, d.MaxNameLen)
	pick(&l.MaxItemNameLen, d.MaxItemNameLen)
	pick(&l.MaxStringLen, d.MaxStringLen)
	pick(&l.MaxListLen, d.MaxListLen)
	pick(&l.MaxValues, d.MaxValues)
	pick(&l.MaxMessageLen, d.MaxMessageLen)
	pick(&l.MaxVersionLen, d.MaxVersionLen)
	pick(&l.MaxSkippedDepth, d.MaxSkippedDepth)
	if l.MaxFuture <= 0 {
		l.MaxFuture = d.MaxFuture
	}
	if l.MaxAge <= 0 {
		l.MaxAge = d.MaxAge
	}
	return l
}

// ErrInvalid is wrapped by every error about the content of check data, so
// callers can answer 400.
var ErrInvalid = errors.New("invalid check data")

// DecodeError says where in the check data something is wrong.
type DecodeError struct {
	Path string // e.g. data.cpu[2].usage
	Msg  string
}

// Error implements error.
func (e *DecodeError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *DecodeError) Unwrap() error { return ErrInvalid }

func errAt(path, format string, args ...any) error {
	return &DecodeError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// DecodeCheckData reads one check result in either InfraSonar format: the
// agent REST body ({"version", "runtime", "timestamp", "data", "no_count",
// "error": {"severity": "LOW", "message"}}) or the probe body ({"result",
// "error": {"error", "severity": 2}, "framework": {…}}). Unknown top-level
// fields are ignored; everything inside data/result is checked strictly.
// It does not check the timestamp against the clock: see Validate.
//
// Every error about the body's content wraps ErrInvalid. An error of r
// itself (e.g. *http.MaxBytesError) is returned wrapped as it is, without
// ErrInvalid, so a caller can tell a bad body from a failed read.
func DecodeCheckData(r io.Reader, lim Limits) (*CheckData, error) {
	er := &errReader{r: r}
	d := &decoder{dec: json.NewDecoder(er), lim: lim.WithDefaults(), rd: er}
	d.dec.UseNumber()
	cd, err := d.checkData()
	if err != nil {
		return nil, err
	}
	// Nothing may follow the object.
	if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		if er.err != nil {
			return nil, fmt.Errorf("reading check data: %w", er.err)
		}
		return nil, errAt("", "unexpected data after the JSON object")
	}
	return cd, nil
}

// errReader remembers the error of the reader, so that a failed read is not
// mistaken for malformed JSON.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// Validate checks what decoding cannot: the timestamp against now. A zero
// timestamp is replaced by now.
func (d *CheckData) Validate(now time.Time, lim Limits) error {
	lim = lim.WithDefaults()
	if d.Timestamp == 0 {
		d.Timestamp = now.Unix()
		return nil
	}
	ts := time.Unix(d.Timestamp, 0)
	if ts.After(now.Add(lim.MaxFuture)) {
		return errAt("timestamp", "%d is %s in the future (more than %s); check the collector's clock",
			d.Timestamp, days(ts.Sub(now).Round(time.Second)), days(lim.MaxFuture))
	}
	if ts.Before(now.Add(-lim.MaxAge)) {
		return errAt("timestamp", "%d is older than %s", d.Timestamp, days(lim.MaxAge))
	}
	return nil
}

// days writes whole days as days rather than hours.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + " days"
	}
	return d.String()
}

// loc is where the decoder is. It is made into a path string only for an
// error, so that reading a valid body builds no paths: base is a top-level
// path ("error.severity") or a type's ("data.cpu"), followed by an item
// index, a metric name and a list index, each when set.
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

// keySet finds repeated object keys: a short list while the object is
// small, a map once it grows. It is reused from one object to the next.
type keySet struct {
	list []string
	set  map[string]struct{}
	big  bool
}

const smallKeySet = 8

// add records k and reports whether it was already there.
func (s *keySet) add(k string) (dup bool) {
	if !s.big {
		if s.list == nil {
			s.list = make([]string, 0, smallKeySet)
		}
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

type decoder struct {
	dec *json.Decoder
	rd  *errReader
	lim Limits
	// values counts the values read, against lim.MaxValues: decoded
	// values take far more memory than their JSON.
	values int

	// Scratch space reused from one item or type to the next.
	items   []Item
	metrics []Metric
	keys    keySet
	kinds   map[string]Kind
}

func (d *decoder) token(l loc) (json.Token, error) {
	t, err := d.dec.Token()
	if err != nil {
		return nil, d.readErr(l, err)
	}
	return t, nil
}

func (d *decoder) readErr(l loc, err error) error {
	if d.rd.err != nil {
		// The reader failed (e.g. the body is too large): not a
		// content error.
		return fmt.Errorf("reading check data: %w", d.rd.err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errLoc(l, "unexpected end of JSON")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg := se.Error()
		if strings.Contains(msg, "character 'N'") || strings.Contains(msg, "character 'I'") {
			msg += " (NaN and Infinity are not JSON numbers; send null for a missing value)"
		}
		return errLoc(l, "malformed JSON at byte %d: %s", se.Offset, msg)
	}
	return errLoc(l, "malformed JSON: %s", err.Error())
}

func (d *decoder) expectDelim(l loc, want json.Delim, what string) error {
	t, err := d.token(l)
	if err != nil {
		return err
	}
	if got, ok := t.(json.Delim); !ok || got != want {
		return errLoc(l, "expected %s, got %s", what, describe(t))
	}
	return nil
}

// key reads an object key, or returns done=true at the closing brace.
func (d *decoder) key(l loc) (string, bool, error) {
	t, err := d.token(l)
	if err != nil {
		return "", false, err
	}
	if t == json.Delim('}') {
		return "", true, nil
	}
	k, ok := t.(string)
	if !ok {
		return "", false, errLoc(l, "expected an object key, got %s", describe(t))
	}
	return k, false, nil
}

func describe(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "a list"
		}
		return "'" + v.String() + "'"
	case json.Number:
		return "the number " + string(v)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", t)
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

func (d *decoder) checkData() (*CheckData, error) {
	if err := d.expectDelim(at(""), '{', "a JSON object"); err != nil {
		return nil, err
	}
	cd := &CheckData{}
	var seen keySet
	var hasData, hasError, resultKey bool
	for {
		k, done, err := d.key(at(""))
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		if seen.add(k) {
			return nil, errAt(join("", k), "appears twice")
		}
		switch k {
		case "data", "result":
			if resultKey {
				return nil, errAt(k, "both data and result given; send one")
			}
			resultKey = true
			t, err := d.token(at(k))
			if err != nil {
				return nil, err
			}
			if t == nil {
				continue
			}
			if t != json.Delim('{') {
				return nil, errAt(k, "expected an object of types, got %s", describe(t))
			}
			if cd.Types, err = d.types(k); err != nil {
				return nil, err
			}
			cd.HasResult = true
			hasData = true
		case "error":
			t, err := d.token(at(k))
			if err != nil {
				return nil, err
			}
			if t == nil {
				continue
			}
			if t != json.Delim('{') {
				return nil, errAt(k, "expected an object with message and severity, got %s", describe(t))
			}
			if cd.Error, err = d.checkError(k); err != nil {
				return nil, err
			}
			hasError = true
		case "framework":
			if err := d.framework(cd); err != nil {
				return nil, err
			}
		case "version":
			s, err := d.optString(k, d.lim.MaxVersionLen)
			if err != nil {
				return nil, err
			}
			cd.Version = s
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
			if err := d.skip(join("", k), 0); err != nil {
				return nil, err
			}
		}
	}
	if hasData {
		cd.Unchanged = false
	}
	if !hasData && !hasError && !cd.Unchanged {
		return nil, errAt("", "check data needs data (or result) or error")
	}
	return cd, nil
}

func (d *decoder) framework(cd *CheckData) error {
	const p = "framework"
	t, err := d.token(at(p))
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('{') {
		return errAt(p, "expected an object, got %s", describe(t))
	}
	var seen keySet
	for {
		k, done, err := d.key(at(p))
		if err != nil {
			return err
		}
		if done {
			return nil
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
			if err := d.skip(kp, 1); err != nil {
				return err
			}
		}
	}
}

func (d *decoder) checkError(p string) (*CheckError, error) {
	ce := &CheckError{Severity: SeverityMedium}
	var hasMsg bool
	var seen keySet
	for {
		k, done, err := d.key(at(p))
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		kp := join(p, k)
		if seen.add(k) {
			return nil, errAt(kp, "appears twice")
		}
		switch k {
		case "message", "error":
			if hasMsg {
				return nil, errAt(kp, "both message and error given; send one")
			}
			s, err := d.optString(kp, d.lim.MaxMessageLen)
			if err != nil {
				return nil, err
			}
			ce.Message, hasMsg = s, true
		case "severity":
			t, err := d.token(at(kp))
			if err != nil {
				return nil, err
			}
			switch v := t.(type) {
			case string:
				if ce.Severity, err = ParseSeverity(v); err != nil {
					return nil, errAt(kp, "%s", err.Error())
				}
			case json.Number:
				n, err := strconv.Atoi(string(v))
				if err != nil || n < 0 || n > 2 {
					return nil, errAt(kp, "%s is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)", v)
				}
				ce.Severity = Severity(n)
			case nil:
			default:
				return nil, errAt(kp, "expected a severity, got %s", describe(t))
			}
		default:
			if err := d.skip(kp, 2); err != nil {
				return nil, err
			}
		}
	}
	if !hasMsg || ce.Message == "" {
		return nil, errAt(p, "has no message")
	}
	return ce, nil
}

func (d *decoder) types(p string) ([]Type, error) {
	var types []Type
	var seen keySet
	for {
		name, done, err := d.key(at(p))
		if err != nil {
			return nil, err
		}
		if done {
			return types, nil
		}
		if err := d.checkName(at(p), "type name", name, d.lim.MaxNameLen); err != nil {
			return nil, err
		}
		tp := join(p, name)
		if seen.add(name) {
			return nil, errAt(tp, "type appears twice")
		}
		if len(types) >= d.lim.MaxTypes {
			return nil, errAt(tp, "more than %d types in one result", d.lim.MaxTypes)
		}
		if err := d.expectDelim(at(tp), '[', "a list of items"); err != nil {
			return nil, err
		}
		items, err := d.itemList(tp)
		if err != nil {
			return nil, err
		}
		types = append(types, Type{Name: name, Items: items})
	}
}

// itemList reads the items of the type at tp, after its '['.
func (d *decoder) itemList(tp string) ([]Item, error) {
	d.items = d.items[:0]
	if d.kinds != nil {
		clear(d.kinds)
	}
	var names keySet
	for i := 0; ; i++ {
		il := loc{base: tp, item: i + 1}
		t, err := d.token(il)
		if err != nil {
			return nil, err
		}
		if t == json.Delim(']') {
			break
		}
		if t != json.Delim('{') {
			return nil, errLoc(il, "expected an item object, got %s", describe(t))
		}
		if i >= d.lim.MaxItems {
			return nil, errLoc(il, "more than %d items in one type", d.lim.MaxItems)
		}
		check := i > 0
		if i == 1 {
			// From the second item on, metrics must keep the kind
			// family they had in the items before.
			if d.kinds == nil {
				d.kinds = make(map[string]Kind, len(d.items[0].Metrics))
			}
			for _, m := range d.items[0].Metrics {
				d.kinds[m.Name] = m.Value.Kind
			}
		}
		it, err := d.item(il, check)
		if err != nil {
			return nil, err
		}
		if names.add(it.Name) {
			j := 0
			for d.items[j].Name != it.Name {
				j++
			}
			return nil, errLoc(il, "item name %q repeats item %d; item names must be unique within a type", it.Name, j)
		}
		d.items = append(d.items, it)
	}
	if len(d.items) == 0 {
		return nil, nil
	}
	items := make([]Item, len(d.items))
	copy(items, d.items)
	clear(d.items)
	return items, nil
}

// item reads one item, after its '{'. With checkKinds, its metrics must
// keep the kinds they have in the type's earlier items (d.kinds).
func (d *decoder) item(il loc, checkKinds bool) (Item, error) {
	var it Item
	var hasName bool
	d.keys.reset()
	d.metrics = d.metrics[:0]
	// The item before, whose metrics usually come in the same order.
	var prev []Metric
	if n := len(d.items); n > 0 {
		prev = d.items[n-1].Metrics
	}
	for {
		k, done, err := d.key(il)
		if err != nil {
			return it, err
		}
		if done {
			break
		}
		ml := il
		ml.key = k
		if d.keys.add(k) {
			return it, errLoc(ml, "metric appears twice in the item")
		}
		if k == "name" {
			t, err := d.token(ml)
			if err != nil {
				return it, err
			}
			s, ok := t.(string)
			if !ok {
				return it, errLoc(ml, "the item name must be a string, got %s", describe(t))
			}
			if len(s) > d.lim.MaxItemNameLen {
				return it, errLoc(ml, "item name is %d bytes, more than %d", len(s), d.lim.MaxItemNameLen)
			}
			it.Name, hasName = s, true
			continue
		}
		if err := d.checkName(il, "metric name", k, d.lim.MaxNameLen); err != nil {
			return it, err
		}
		if len(d.metrics) >= d.lim.MaxMetrics {
			return it, errLoc(ml, "more than %d metrics in one item", d.lim.MaxMetrics)
		}
		v, present, err := d.value(ml, true)
		if err != nil {
			return it, err
		}
		if !present {
			continue // null: the metric has no value this time
		}
		if checkKinds {
			// Not the first item: check the kind against the
			// earlier items, cheaply when the item before had the
			// metric at the same place.
			j := len(d.metrics)
			if j < len(prev) && prev[j].Name == k {
				if pk := prev[j].Value.Kind; pk.Family() != v.Kind.Family() {
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
		if d.metrics == nil {
			d.metrics = make([]Metric, 0, 32)
		}
		d.metrics = append(d.metrics, Metric{Name: k, Value: v})
	}
	if !hasName {
		return it, errLoc(il, "item has no name")
	}
	if len(d.metrics) > 0 {
		it.Metrics = make([]Metric, len(d.metrics))
		copy(it.Metrics, d.metrics)
		clear(d.metrics)
	}
	return it, nil
}

func errKind(l loc, now, before Kind) error {
	return errLoc(l, "is %s here but %s in an earlier item; a metric keeps its type", now.withArticle(), before.withArticle())
}

func (k Kind) withArticle() string {
	if k == KindInt {
		return "an int"
	}
	return "a " + k.String()
}

// value reads one metric value; present is false for null.
func (d *decoder) value(l loc, allowList bool) (Value, bool, error) {
	t, err := d.token(l)
	if err != nil {
		return Value{}, false, err
	}
	if d.values++; d.values > d.lim.MaxValues {
		return Value{}, false, errLoc(l, "the result holds more than %d values", d.lim.MaxValues)
	}
	switch v := t.(type) {
	case nil:
		return Value{}, false, nil
	case bool:
		return BoolValue(v), true, nil
	case string:
		if len(v) > d.lim.MaxStringLen {
			return Value{}, false, errLoc(l, "string is %d bytes, more than %d", len(v), d.lim.MaxStringLen)
		}
		return StringValue(v), true, nil
	case json.Number:
		val, err := parseNumber(v)
		if err != nil {
			return Value{}, false, errLoc(l, "%s", err.Error())
		}
		return val, true, nil
	case json.Delim:
		if v == '[' && allowList {
			return d.list(l)
		}
		if v == '[' {
			return Value{}, false, errLoc(l, "lists inside lists are not allowed")
		}
		return Value{}, false, errLoc(l, "a metric value must be an int, float, string, bool or a list of those, not %s", describe(t))
	}
	return Value{}, false, errLoc(l, "unexpected %s", describe(t))
}

// list reads a list value, after its '['.
func (d *decoder) list(l loc) (Value, bool, error) {
	out := Value{Kind: KindList, List: []Value{}}
	var elemFamily string
	for i := 0; ; i++ {
		el := l
		el.elem = i + 1
		if !d.dec.More() {
			if _, err := d.token(el); err != nil { // the closing ]
				return Value{}, false, err
			}
			return out, true, nil
		}
		if i >= d.lim.MaxListLen {
			return Value{}, false, errLoc(el, "list has more than %d elements", d.lim.MaxListLen)
		}
		v, present, err := d.value(el, false)
		if err != nil {
			return Value{}, false, err
		}
		if !present {
			return Value{}, false, errLoc(el, "null inside a list is not allowed")
		}
		if elemFamily == "" {
			elemFamily = v.Kind.Family()
		} else if elemFamily != v.Kind.Family() {
			return Value{}, false, errLoc(el, "list mixes %s and %s values", elemFamily, v.Kind.Family())
		}
		out.List = append(out.List, v)
	}
}

// parseNumber keeps ints as ints and floats as floats, as sent: a literal
// with a decimal point or an exponent is a float.
func parseNumber(n json.Number) (Value, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return IntValue(i), nil
		}
		// Larger than int64 (e.g. a uint64 counter): keep it as a float.
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return Value{}, fmt.Errorf("the number %s is out of range", s)
	}
	return FloatValue(f), nil
}

func (d *decoder) checkName(l loc, what, name string, max int) error {
	if name == "" {
		return errLoc(l, "%s is empty", what)
	}
	if len(name) > max {
		return errLoc(l, "%s %s is %d bytes, more than %d", what, quoteShort(name), len(name), max)
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

func (d *decoder) optString(p string, max int) (string, error) {
	t, err := d.token(at(p))
	if err != nil {
		return "", err
	}
	switch v := t.(type) {
	case nil:
		return "", nil
	case string:
		if len(v) > max {
			return "", errAt(p, "is %d bytes, more than %d", len(v), max)
		}
		return v, nil
	}
	return "", errAt(p, "expected a string, got %s", describe(t))
}

func (d *decoder) optBool(p string) (bool, error) {
	t, err := d.token(at(p))
	if err != nil {
		return false, err
	}
	switch v := t.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	}
	return false, errAt(p, "expected true or false, got %s", describe(t))
}

func (d *decoder) optFloat(p string) (float64, error) {
	t, err := d.token(at(p))
	if err != nil {
		return 0, err
	}
	switch v := t.(type) {
	case nil:
		return 0, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, errAt(p, "the number %s is out of range", v)
		}
		return f, nil
	}
	return 0, errAt(p, "expected a number, got %s", describe(t))
}

// duration reads a run time in seconds.
func (d *decoder) duration(p string) (float64, error) {
	f, err := d.optFloat(p)
	if err != nil {
		return 0, err
	}
	if f < 0 {
		return 0, errAt(p, "%v seconds is negative", f)
	}
	return f, nil
}

func (d *decoder) timestamp(p string) (int64, error) {
	f, err := d.optFloat(p)
	if err != nil {
		return 0, err
	}
	if f < 0 || f > 1<<40 {
		return 0, errAt(p, "%v is not a Unix time in seconds", f)
	}
	return int64(f), nil
}

// skip reads and discards one value of an unknown field, bounding nesting.
func (d *decoder) skip(p string, depth int) error {
	t, err := d.token(at(p))
	if err != nil {
		return err
	}
	delim, ok := t.(json.Delim)
	if !ok {
		return nil
	}
	if delim != '{' && delim != '[' {
		return errAt(p, "unexpected %s", describe(t))
	}
	if depth >= d.lim.MaxSkippedDepth {
		return errAt(p, "nested more than %d levels deep", d.lim.MaxSkippedDepth)
	}
	for d.dec.More() {
		if delim == '{' {
			if _, err := d.token(at(p)); err != nil { // key
				return err
			}
		}
		if err := d.skip(p, depth+1); err != nil {
			return err
		}
	}
	_, err = d.token(at(p)) // closing delimiter
	return err
}

// MarshalAgentJSON encodes the data in the agent REST format, the way an
// InfraSonar agent posts it. Benchmarks, tests and sonde's own agent use it.
// An unchanged result without types, which only probes send, is marked
// with "framework": {"unchanged": true}, so that DecodeCheckData reads back
// what was encoded.
func (d *CheckData) MarshalAgentJSON() []byte {
	var b bytes.Buffer
	b.WriteString(`{`)
	if d.Version != "" {
		b.WriteString(`"version":`)
		b.Write(appendJSONString(nil, d.Version))
		b.WriteByte(',')
	}
	b.WriteString(`"runtime":`)
	b.Write(appendFloat(nil, d.Duration))
	b.WriteString(`,"timestamp":`)
	b.WriteString(strconv.FormatInt(d.Timestamp, 10))
	if d.HasResult {
		b.WriteString(`,"data":`)
		b.Write(d.ResultJSON())
	}
	if d.NoCount {
		b.WriteString(`,"no_count":true`)
	}
	if d.Unchanged && !d.HasResult {
		// The agent format has no field for it: say it the probe
		// way, which DecodeCheckData accepts in either format.
		b.WriteString(`,"framework":{"unchanged":true}`)
	}
	if d.Error != nil {
		b.WriteString(`,"error":{"severity":`)
		b.Write(appendJSONString(nil, d.Error.Severity.String()))
		b.WriteString(`,"message":`)
		b.Write(appendJSONString(nil, d.Error.Message))
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes()
}
