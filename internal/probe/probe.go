// Package probe holds what every agentless probe shares: the target a
// probe runs against, the credentials it may look up, the result it returns
// and strict decoding of its configuration. A probe that sends a credential
// first checks, with CheckCredential, that the credential is of a kind it
// takes and that its hosts (which only the appliance's operator sets)
// permit where it is going: a check's configuration comes from the hub and
// must not be able to send a credential anywhere else. A run whose context
// carries an address policy (WithAddrPolicy: the hub's service checks)
// checks every address it contacts against it, after resolution, and
// reports a refused one as its error. The probes themselves live in
// the sub-packages (icmp, tcp, http, tls, dns, snmp); the appliance keeps
// the explicit registry that maps collector and check keys to them.
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// Target is one (asset, check) a probe runs against.
type Target struct {
	AssetID   uint64
	AssetName string
	// Collector and Check are the keys the check is configured under,
	// e.g. "snmp" and "interfaces".
	Collector string
	Check     string
	// Config is the collector's configuration merged with the check's (the
	// check's keys win). Keys starting with "_" are InfraSonar bookkeeping
	// (e.g. "_interval") and are ignored by DecodeConfig.
	Config map[string]any
	// Interval is how often the check runs; the run's context carries the
	// deadline (min(0.8 × interval, 300 s)).
	Interval time.Duration
}

// Credential is one entry of the appliance's vault.
type Credential struct {
	Name string
	// Kind says what the secret is (KindPassword, KindSNMPCommunity, …).
	// A probe takes only the kinds it can send the way they are meant to
	// be sent: CheckCredential refuses the others.
	Kind     string
	Username string
	Secret   secret.Secret
	// Hosts are the hosts the credential may be sent to, as the vault
	// stores them (see ParseHostPattern). Only the appliance's operator
	// sets them; a check's configuration, which the hub sends, cannot
	// widen them. A credential without hosts may be sent nowhere.
	Hosts []string
}

// Credentials looks up vault entries by name. An unknown name returns an
// error wrapping ErrNoCredential.
type Credentials interface {
	Credential(name string) (Credential, error)
}

// ErrNoCredential is returned by Credentials for a name the vault does not
// hold.
var ErrNoCredential = errors.New("no such credential in the vault")

// Result is what one run of a probe produces: the result types, an error
// with its severity, or both (an incomplete result). A Result with neither
// means the run is ignored and nothing is sent.
type Result struct {
	Types []model.Type
	Error *model.CheckError
}

// Func runs one check against one target. It must honour ctx's deadline,
// never change the target, and never put a credential's value in the result
// or the error message.
type Func func(ctx context.Context, t Target, creds Credentials) Result

// Fail returns a Result holding only an error of the given severity.
func Fail(sev model.Severity, format string, args ...any) Result {
	return Result{Error: &model.CheckError{Message: fmt.Sprintf(format, args...), Severity: sev}}
}

// Address policy. A probe run by the hub on a tenant's behalf (a service
// check) must not reach the hub's own network; the same probe run by an
// appliance, in the customer's network, must reach private addresses. So
// the policy is not the probe's: the caller puts one in the run's context
// with WithAddrPolicy (the hub checks with netguard), and every probe
// checks the address it actually contacts against it, after resolution:
// with DialControl in its net.Dialer's Control, or with CheckAddr where it
// dials nothing (icmp). Without a policy nothing is checked.

// ErrAddrRefused is wrapped by the errors of CheckAddr and of the Control
// that DialControl returns: the run's address policy refuses the address.
var ErrAddrRefused = errors.New("address refused by the run's address policy")

// AddrRefusedError is the error for an address the run's address policy
// refuses. Its message is the policy's error's (which should name the
// address and the reason); it wraps that error and ErrAddrRefused.
type AddrRefusedError struct {
	Addr netip.Addr
	Err  error // the policy's error
}

// Error returns the policy's message.
func (e *AddrRefusedError) Error() string { return e.Err.Error() }

// Unwrap gives the policy's error and ErrAddrRefused.
func (e *AddrRefusedError) Unwrap() []error { return []error{e.Err, ErrAddrRefused} }

type addrPolicyKey struct{}

// WithAddrPolicy returns a context whose runs check every address they
// contact with check: a non-nil error refuses the address, and the probe
// reports it (with the error's message) instead of contacting it. A nil
// check leaves ctx as it is. A policy added to a context that has one
// already narrows it: an address must pass both, the outer one first.
func WithAddrPolicy(ctx context.Context, check func(netip.Addr) error) context.Context {
	if check == nil {
		return ctx
	}
	if outer := addrPolicy(ctx); outer != nil {
		inner := check
		check = func(a netip.Addr) error {
			if err := outer(a); err != nil {
				return err
			}
			return inner(a)
		}
	}
	return context.WithValue(ctx, addrPolicyKey{}, check)
}

// addrPolicy returns ctx's address policy, or nil.
func addrPolicy(ctx context.Context) func(netip.Addr) error {
	check, _ := ctx.Value(addrPolicyKey{}).(func(netip.Addr) error)
	return check
}

// CheckAddr checks a, the address a probe is about to contact, against
// ctx's address policy: nil when there is no policy or it allows a, else
// an *AddrRefusedError (wrapping ErrAddrRefused). An IPv4-mapped address
// is checked as it is: the policy judges what it embeds.
func CheckAddr(ctx context.Context, a netip.Addr) error {
	check := addrPolicy(ctx)
	if check == nil {
		return nil
	}
	if err := check(a); err != nil {
		return &AddrRefusedError{Addr: a, Err: err}
	}
	return nil
}

// DialControl returns a net.Dialer Control function that checks the
// address being dialled against ctx's address policy, then calls next when
// it is not nil. The address is the dialer's "ip:port" (or an IP address
// alone); one that does not parse is refused. Without a policy it returns
// next unchanged, possibly nil. The policy is read from ctx once, here, so
// the Control enforces it whatever context the dial itself runs with.
func DialControl(ctx context.Context, next func(network, address string, c syscall.RawConn) error) func(network, address string, c syscall.RawConn) error {
	check := addrPolicy(ctx)
	if check == nil {
		return next
	}
	return func(network, address string, c syscall.RawConn) error {
		a, err := dialAddr(address)
		if err != nil {
			return &AddrRefusedError{Err: err}
		}
		if err := check(a); err != nil {
			return &AddrRefusedError{Addr: a, Err: err}
		}
		if next != nil {
			return next(network, address, c)
		}
		return nil
	}
}

// dialAddr returns the IP address of a dialer's address: "ip:port",
// "[ip]:port" or an IP address alone.
func dialAddr(address string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(address); err == nil {
		return ap.Addr(), nil
	}
	if a, ok := hostAddr(address); ok {
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("refusing to connect to %q: not an IP address and port, so the address policy cannot check it", address)
}

// DecodeConfig decodes a target's configuration into dst (a pointer to a
// struct with json tags) strictly: a key dst does not know, spelt exactly
// as its json tag, is an error that names it, except keys starting with
// "_". (encoding/json alone would take "Ports" or "intervalms" for a field
// and quietly ignore what the user meant.)
func DecodeConfig(cfg map[string]any, dst any) error {
	known := jsonNames(dst)
	clean := make(map[string]any, len(cfg))
	for k, v := range cfg {
		if strings.HasPrefix(k, "_") {
			continue
		}
		if known != nil && !known[k] {
			return fmt.Errorf("config: unknown field %q", k)
		}
		clean[k] = v
	}
	raw, err := json.Marshal(clean)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// jsonNames returns the json names of the fields of the struct dst points
// to, or nil when dst is not a pointer to a struct.
func jsonNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}

// The kinds of credential. The vault's constants of the same names are
// these; they live here so that probes can name the kinds they take
// without importing the vault.
const (
	// KindPassword is a password, with the user name it belongs to.
	KindPassword = "password"
	// KindToken is a bearer token or API key.
	KindToken = "token"
	// KindSNMPCommunity is an SNMP v1/v2c community string.
	KindSNMPCommunity = "snmp-community"
	// KindSNMPv3Auth is an SNMPv3 authentication passphrase; the user name
	// is the USM security name.
	KindSNMPv3Auth = "snmpv3-auth"
	// KindSNMPv3Priv is an SNMPv3 privacy passphrase.
	KindSNMPv3Priv = "snmpv3-priv"
)

// Limits on a credential's hosts.
const (
	// MaxHosts is how many host patterns a credential may have.
	MaxHosts = 64
	// MaxHostPatternLen is the longest host pattern: "*." and a
	// 253-character name.
	MaxHostPatternLen = 255
)

// ErrCredentialNotPermitted is wrapped by CheckCredential's errors: the
// credential is of a kind the probe does not take, has no hosts, or may not
// be sent to the host the probe would send it to.
var ErrCredentialNotPermitted = errors.New("credential not permitted")

// notPermitted is an error wrapping ErrCredentialNotPermitted whose message
// is only its own (no ": credential not permitted" suffix).
type notPermitted struct{ msg string }

func (e *notPermitted) Error() string { return e.msg }
func (e *notPermitted) Unwrap() error { return ErrCredentialNotPermitted }

func notPermittedf(format string, args ...any) error {
	return &notPermitted{msg: fmt.Sprintf(format, args...)}
}

// HostPattern is one of the hosts a credential may be sent to:
//
//	10.0.0.5, 2001:db8::5       one IP address (no zone, IPv4 written as IPv4)
//	10.0.0.0/8, 2001:db8::/32   a network (CIDR), with no bits set beyond
//	                            the prefix
//	switch1.corp                exactly this host name (case-insensitive, a
//	                            trailing dot ignored), whatever addresses it
//	                            resolves to
//	*.corp                      any name under corp (a.corp, a.b.corp), not
//	                            corp itself
//
// An address or a network is matched against the address a probe is about
// to contact; a name pattern against the name the probe was configured
// with, and then every address that name resolves to is permitted (the
// operator trusts the DNS for the names they list). A name that no name
// pattern matches may still be contacted at an address an address pattern
// matches. "0.0.0.0/0" and "::/0" permit every address; "*" alone is
// refused.
type HostPattern struct {
	prefix   netip.Prefix // an address or a network; invalid for a name
	name     string       // an exact name, or a wildcard's domain
	wildcard bool
}

// ParseHostPattern parses one host pattern; String gives it back in its
// canonical form (names in lower case without a trailing dot).
func ParseHostPattern(s string) (HostPattern, error) {
	switch {
	case s == "":
		return HostPattern{}, errors.New("host pattern: empty")
	case len(s) > MaxHostPatternLen:
		return HostPattern{}, fmt.Errorf("host pattern %.40q…: longer than %d characters", s, MaxHostPatternLen)
	case s == "*" || s == "*.":
		return HostPattern{}, fmt.Errorf(`host pattern %q: "*" alone is not allowed; name the domain ("*.corp") or give networks (0.0.0.0/0 and ::/0 permit every address)`, s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return HostPattern{}, fmt.Errorf("host pattern %q: not a valid network (CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32)", s)
		}
		if p.Addr().Is4In6() {
			return HostPattern{}, fmt.Errorf("host pattern %q: write an IPv4 network as IPv4 (e.g. 10.0.0.0/8)", s)
		}
		if m := p.Masked(); m != p {
			return HostPattern{}, fmt.Errorf("host pattern %q: bits are set beyond the /%d prefix; did you mean %s?", s, p.Bits(), m)
		}
		return HostPattern{prefix: p}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		switch {
		case a.Zone() != "":
			return HostPattern{}, fmt.Errorf("host pattern %q: an address with a zone is not allowed; give it without %%%s", s, a.Zone())
		case a.Is4In6():
			return HostPattern{}, fmt.Errorf("host pattern %q: write an IPv4 address as IPv4 (%s)", s, a.Unmap())
		}
		return HostPattern{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	name, wildcard := strings.CutPrefix(s, "*.")
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if err := checkHostName(name); err != nil {
		return HostPattern{}, fmt.Errorf("host pattern %q: %v", s, err)
	}
	return HostPattern{name: name, wildcard: wildcard}, nil
}

// checkHostName reports whether name (lower case, without a trailing dot)
// is a syntactically valid host name.
func checkHostName(name string) error {
	const what = "not an IP address, a network (CIDR), a host name or *.name"
	if name == "" || len(name) > 253 {
		return errors.New(what)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New(what)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New(what)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("looks like an IP address but is not a valid one")
	}
	return nil
}

// String returns the pattern in its canonical form.
func (p HostPattern) String() string {
	switch {
	case p.prefix.IsValid() && p.prefix.IsSingleIP():
		return p.prefix.Addr().String()
	case p.prefix.IsValid():
		return p.prefix.String()
	case p.wildcard:
		return "*." + p.name
	}
	return p.name
}

// IsName reports whether p is a host name or a wildcard, rather than an
// address or a network.
func (p HostPattern) IsName() bool { return !p.prefix.IsValid() && p.name != "" }

// MatchAddr reports whether ip is the address, or in the network, p names.
// An IPv4-mapped IPv6 address matches as the IPv4 address; a zone is
// ignored.
func (p HostPattern) MatchAddr(ip netip.Addr) bool {
	return p.prefix.IsValid() && ip.IsValid() && p.prefix.Contains(ip.Unmap().WithZone(""))
}

// MatchName reports whether the host name matches p, case-insensitively
// and ignoring a trailing dot. An IP address written as a host never
// matches a name pattern.
func (p HostPattern) MatchName(host string) bool {
	name := hostName(host)
	if !p.IsName() || name == "" {
		return false
	}
	if p.wildcard {
		return len(name) > len(p.name)+1 && strings.HasSuffix(name, "."+p.name)
	}
	return name == p.name
}

// hostName returns host as a name to match (lower case, without a
// trailing dot), or "" when host is an IP address (in brackets or not).
func hostName(host string) string {
	if _, ok := hostAddr(host); ok || host == "" {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// hostAddr returns host as an IP address, when it is one.
func hostAddr(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return a, err == nil
}

// patterns parses the credential's hosts, skipping any that do not parse
// (the vault never stores one; skipping fails closed).
func (c Credential) patterns() []HostPattern {
	out := make([]HostPattern, 0, len(c.Hosts))
	for _, h := range c.Hosts {
		if p, err := ParseHostPattern(h); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Permits reports whether the credential may be sent to ip, the address a
// probe is about to contact, which the probe got by resolving host (the
// name or address it was configured with; "" when there is none). It does
// when an address or network pattern matches ip, or when host is a name
// that a name pattern matches. It never does for an invalid ip: call it
// with the address actually contacted, after resolution, so that what a
// name resolves to cannot get round an address pattern.
func (c Credential) Permits(host string, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range c.patterns() {
		if p.MatchAddr(ip) || p.MatchName(host) {
			return true
		}
	}
	return false
}

// PermitsHost reports whether the credential may be sent to host as
// written, before any resolution: an IP address that an address or
// network pattern matches, or a name that a name pattern matches. A name
// for which it reports false may still resolve to a permitted address
// (see Permits).
func (c Credential) PermitsHost(host string) bool {
	if a, ok := hostAddr(host); ok {
		return c.Permits("", a)
	}
	for _, p := range c.patterns() {
		if p.MatchName(host) {
			return true
		}
	}
	return false
}

// hasAddrPatterns reports whether any of the credential's hosts is an
// address or a network.
func (c Credential) hasAddrPatterns() bool {
	for _, p := range c.patterns() {
		if !p.IsName() {
			return true
		}
	}
	return false
}

// CheckCredential reports whether a probe may use c: use says who would
// use it, for the message (e.g. "the http probe"), kinds the kinds it
// takes, host the name or address the probe is configured with, and ip the
// address it is about to contact.
//
// With an invalid ip (before resolution), only what can be decided without
// resolving is checked: the kind, that c has hosts, and host itself when it
// is an IP address or when c has no address patterns that a name could
// resolve into. A nil error is then no permission yet: check again, at the
// latest when connecting, with the address being contacted.
//
// Every error wraps ErrCredentialNotPermitted, says what to change, and
// holds no secret.
func CheckCredential(c Credential, use string, kinds []string, host string, ip netip.Addr) error {
	if !slices.Contains(kinds, c.Kind) {
		what := "has no kind"
		if c.Kind != "" {
			what = "is a " + c.Kind
		}
		return notPermittedf("credential %q %s, %s takes %s", c.Name, what, use, orList(kinds))
	}
	if len(c.Hosts) == 0 {
		return notPermittedf("credential %q has no hosts it may be sent to: on the appliance, run \"sonde-appliance vault hosts %s LIST\" with the addresses, networks or names of the devices it belongs to (e.g. 10.0.0.0/8,*.corp)", c.Name, c.Name)
	}
	if !ip.IsValid() {
		if a, ok := hostAddr(host); ok {
			ip = a
		}
	}
	switch {
	case ip.IsValid() && c.Permits(host, ip):
		return nil
	case !ip.IsValid() && (c.PermitsHost(host) || hostName(host) != "" && c.hasAddrPatterns()):
		return nil
	}
	return notPermittedf("credential %q may not be sent to %s: its hosts are %s (the appliance's operator sets them with \"sonde-appliance vault hosts %s LIST\")",
		c.Name, destination(host, ip), hostList(c.Hosts), c.Name)
}

// destination describes where a probe would send a credential.
func destination(host string, ip netip.Addr) string {
	if len(host) > MaxHostPatternLen {
		host = host[:MaxHostPatternLen] + "…"
	}
	host = strings.ToValidUTF8(host, "?")
	switch {
	case !ip.IsValid():
		return host
	case host == "":
		return ip.String()
	}
	if a, ok := hostAddr(host); ok && a == ip {
		return ip.String()
	}
	return host + " (" + ip.String() + ")"
}

// hostList lists a credential's hosts for a message, at most 8 of them.
func hostList(hosts []string) string {
	const most = 8
	if len(hosts) <= most {
		return strings.Join(hosts, ", ")
	}
	return strings.Join(hosts[:most], ", ") + fmt.Sprintf(" and %d more", len(hosts)-most)
}

// orList joins kinds as "a", "a or b", "a, b or c".
func orList(kinds []string) string {
	switch len(kinds) {
	case 0:
		return "no credential"
	case 1:
		return kinds[0]
	}
	return strings.Join(kinds[:len(kinds)-1], ", ") + " or " + kinds[len(kinds)-1]
}

// ValidHost reports whether s is an IP address (IPv6 optionally in
// brackets, with a zone) or a syntactically valid host name.
func ValidHost(s string) bool {
	if s == "" {
		return false
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return true
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
