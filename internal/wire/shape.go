package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrInvalidBody is wrapped by every error about a body that is valid
// MessagePack but not what its packet type requires. Malformed MessagePack
// wraps ErrMalformed instead; either is a protocol error.
var ErrInvalidBody = errors.New("invalid packet body")

// bodyError says what is wrong where in a typed body: "announce: element 2
// (zone) must be an integer 0–9, got a string".
type bodyError struct {
	what string // the body, e.g. "announce reply"
	path string // e.g. "assets[3].probes[0]", "" at the top
	msg  string
}

func (e *bodyError) Error() string {
	if e.path == "" {
		return e.what + ": " + e.msg
	}
	return e.what + ": " + e.path + ": " + e.msg
}

func (e *bodyError) Unwrap() error { return ErrInvalidBody }

// shape checks generic decoded values against a body's expected shape,
// naming the body in its errors.
type shape struct{ what string }

func (s shape) errf(path, format string, args ...any) error {
	return &bodyError{what: s.what, path: path, msg: fmt.Sprintf(format, args...)}
}

// decode decodes body as one MessagePack value.
func (s shape) decode(body []byte) (any, error) {
	v, err := Decode(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	return v, nil
}

// describeValue names a decoded value for error messages.
func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case bool:
		return "a boolean"
	case int64:
		return "the integer " + strconv.FormatInt(v, 10)
	case uint64:
		return "the integer " + strconv.FormatUint(v, 10)
	case float64:
		return "the float " + strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return "a string"
	case []byte:
		return "binary data"
	case []any:
		return "an array of " + plural(len(v), "element")
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("a %T", v)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// elemName names element i of a tuple: "element 2 (zone)".
func elemName(i int, name string) string {
	return "element " + strconv.Itoa(i) + " (" + name + ")"
}

// tuple checks that v is an array of min to max elements (the elements
// past min optional), described as desc.
func (s shape) tuple(path string, v any, minLen, maxLen int, desc string) ([]any, error) {
	a, ok := v.([]any)
	if !ok || len(a) < minLen || len(a) > maxLen {
		want := plural(minLen, "element")
		if maxLen > minLen {
			want = strconv.Itoa(minLen) + " to " + strconv.Itoa(maxLen) + " elements"
		}
		return nil, s.errf(path, "expected %s, an array of %s, got %s", desc, want, describeValue(v))
	}
	return a, nil
}

// list checks that v is an array (nil reads as an empty one), described as
// desc.
func (s shape) list(path string, v any, desc string) ([]any, error) {
	switch a := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return a, nil
	}
	return nil, s.errf(path, "expected %s, an array, got %s", desc, describeValue(v))
}

// uint reads element i of a, named name, as a non-negative integer, or a
// positive one.
func (s shape) uint(path string, a []any, i int, name string, positive bool) (uint64, error) {
	var u uint64
	ok := true
	switch v := a[i].(type) {
	case int64:
		ok = v >= 0
		u = uint64(v) // #nosec G115 -- checked non-negative before use
	case uint64:
		u = v
	default:
		ok = false
	}
	if positive && u == 0 {
		ok = false
	}
	if !ok {
		want := "a non-negative integer"
		if positive {
			want = "a positive integer"
		}
		return 0, s.errf(path, "%s must be %s, got %s", elemName(i, name), want, describeValue(a[i]))
	}
	return u, nil
}

// optID reads element i as an id, nil reading as 0 (none yet).
func (s shape) optID(path string, a []any, i int, name string) (uint64, error) {
	if a[i] == nil {
		return 0, nil
	}
	return s.uint(path, a, i, name, false)
}

// zone reads element i as a zone, 0–9.
func (s shape) zone(path string, a []any, i int) (int, error) {
	if z, ok := a[i].(int64); ok && validZone(z) {
		return int(z), nil
	}
	return 0, s.errf(path, "%s must be an integer 0–9, got %s", elemName(i, "zone"), describeValue(a[i]))
}

func validZone(z int64) bool { return z >= 0 && z <= 9 }

// interval reads element i as an interval in seconds.
func (s shape) interval(path string, a []any, i int, name string) (int, error) {
	if n, ok := a[i].(int64); ok && validInterval(n) {
		return int(n), nil
	}
	return 0, s.errf(path, "%s must be an integer of seconds, 1 to %d, got %s", elemName(i, name), maxInterval, describeValue(a[i]))
}

// maxInterval bounds a check interval: a week is more than any check needs,
// and keeps every interval an int32.
const maxInterval = 7 * 24 * 3600

func validInterval(n int64) bool { return n >= 1 && n <= maxInterval }

// str reads element i as a string; with nonEmpty, an empty one is refused.
func (s shape) str(path string, a []any, i int, name string, nonEmpty bool) (string, error) {
	str, ok := a[i].(string)
	if !ok {
		return "", s.errf(path, "%s must be a string, got %s", elemName(i, name), describeValue(a[i]))
	}
	if nonEmpty && str == "" {
		return "", s.errf(path, "%s must not be empty", elemName(i, name))
	}
	return str, nil
}

// optMap reads element i, when a has it, as a map or nil.
func (s shape) optMap(path string, a []any, i int, name string) (map[string]any, error) {
	if i >= len(a) {
		return nil, nil
	}
	switch m := a[i].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return m, nil
	}
	return nil, s.errf(path, "%s must be a map or nil, got %s", elemName(i, name), describeValue(a[i]))
}

// number reads a map value as a float: an int, a float or nil (0).
func (s shape) number(path, key string, v any) (float64, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case int64:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, s.errf(path, "%q must be a finite number, got %s", key, describeValue(v))
		}
		return v, nil
	}
	return 0, s.errf(path, "%q must be a number, got %s", key, describeValue(v))
}

// optString reads a map value as a string, nil reading as "".
func (s shape) optString(path, key string, v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", s.errf(path, "%q must be a string, got %s", key, describeValue(v))
}

// optBool reads a map value as a boolean, nil reading as false.
func (s shape) optBool(path, key string, v any) (bool, error) {
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	}
	return false, s.errf(path, "%q must be true or false, got %s", key, describeValue(v))
}

// optInt reads a map value as an int64, nil reading as 0.
func (s shape) optInt(path, key string, v any) (int64, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case int64:
		return v, nil
	}
	return 0, s.errf(path, "%q must be an integer, got %s", key, describeValue(v))
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
