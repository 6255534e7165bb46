// Package snmp is the snmp probe: it reads a device's system group and its
// interface table over SNMP v2c or v3 (USM), read-only, with the community
// or the v3 passphrases taken from the appliance's vault.
//
// Collector key "snmp", checks "system" and "interfaces" (System and
// Interfaces). Configuration, the same for both checks:
//
//	address         string  host name or IP address; empty means the asset's
//	                        name; the credentials' hosts must permit it (below)
//	port            int     UDP port of the agent (default 161)
//	version         string  "2c" or "3" (required: a v3 passphrase must never
//	                        be sent as a clear-text community by accident)
//	credential      string  name of the vault entry (required), see below:
//	                        kind snmp-community for v2c, snmpv3-auth for v3
//	privCredential  string  v3 authPriv only: name of a second vault entry
//	                        holding the privacy passphrase (optional; kind
//	                        snmpv3-priv)
//	securityLevel   string  v3: "authPriv" (default), "authNoPriv" or
//	                        "noAuthNoPriv"
//	authProtocol    string  v3: "SHA" (default, HMAC-SHA-96), "SHA224",
//	                        "SHA256", "SHA384" or "SHA512"
//	privProtocol    string  v3: "AES" (default, AES-128), "AES192", "AES256"
//	                        (Blumenthal key extension, as net-snmp), "AES192C"
//	                        or "AES256C" (Reeder key extension, as Cisco)
//	timeout         float   seconds one request waits for its answer before it
//	                        is retried (0 < t <= 300); default: the time left
//	                        in the run divided among the tries, at most 5 s
//	retries         int     times a request is retried (0-10, default 1)
//	maxRepetitions  int     rows asked for per GETBULK request (1-1000,
//	                        default 25)
//
// MD5 and DES are refused: both are broken, and every agent that offers
// them also offers SHA and AES.
//
// Credentials. For v2c the vault entry's secret is the community (vault kind
// snmp-community; its user name is ignored). For v3 the entry's user name is
// the USM user name and its secret the authentication passphrase (vault kind
// snmpv3-auth). The privacy passphrase is the same as the authentication
// passphrase (as net-snmp's createUser does when no privacy passphrase is
// given), unless privCredential names a second entry (vault kind
// snmpv3-priv) whose secret is the privacy passphrase; its user name, when
// set, must be the same user. Passphrases must be at least 8 bytes long (RFC
// 3414). Two entries rather than one secret holding both: the vault refuses
// line breaks in a secret and already has the two kinds, and an operator can
// rotate each passphrase on its own.
//
// An entry of another kind is refused: an HTTP password is never sent as a
// community, a community never as a v3 passphrase. And every entry goes
// only where the appliance's vault lets it: the hub configures both the
// address and the credential's names, so without this whoever can
// configure checks could have a community or a passphrase sent to a host
// of theirs. The probe resolves the address once, itself, and sends to the
// first address it resolves to that the hosts of every entry it uses permit
// (an address or network pattern matching the address, or a name pattern
// matching the configured name; see probe.HostPattern); the SNMP library is
// given that address, never the name, and the socket is checked once more
// when it is created. Otherwise the run fails before any packet is sent.
// The hosts are set on the appliance: sonde-appliance vault hosts NAME LIST.
// A configured name appears in messages with the address used, as
// "switch1.corp[10.0.0.5]:161".
//
// Result of "system": type "system", one item named "system":
//
//	metric       kind    meaning
//	sysName      string  SNMPv2-MIB sysName.0
//	sysDescr     string  sysDescr.0
//	sysObjectID  string  sysObjectID.0, dotted ("1.3.6.1.4.1.8072.3.2.10")
//	sysContact   string  sysContact.0
//	sysLocation  string  sysLocation.0
//	uptime       float   seconds since the agent (re)started: sysUpTime.0 / 100
//
// Result of "interfaces": type "interfaces", one item per row of IF-MIB's
// ifTable, in ifIndex order, named by ifName (ifXTable), or ifDescr when
// ifName is empty or missing, or the ifIndex when both are; names that
// several interfaces share get "#<ifIndex>" appended. At most 3000
// interfaces (what the hub accepts in one result); beyond that the first
// 3000 are reported with an error. Metrics (left out when the agent does
// not give the column):
//
//	metric       kind    meaning
//	index        int     ifIndex
//	descr        string  ifDescr
//	alias        string  ifAlias (the operator's description)
//	type         int     ifType (IANAifType: 6 ethernetCsmacd, 24 softwareLoopback, …)
//	mtu          int     ifMtu, bytes
//	speed        int     bits per second: ifSpeed, or ifHighSpeed × 1,000,000 when
//	                     ifSpeed is missing, saturated (4,294,967,295), or 0
//	                     while ifHighSpeed is not
//	mac          string  ifPhysAddress as "aa:bb:cc:dd:ee:ff" ("" when it has none)
//	adminStatus  string  "up", "down" or "testing" (another value: its number)
//	operStatus   string  "up", "down", "testing", "unknown", "dormant",
//	                     "notPresent" or "lowerLayerDown" (another value: its number)
//	inOctets     int     octets received: ifHCInOctets (64 bits) when the agent
//	                     gives it, else ifInOctets (32 bits, wraps)
//	outOctets    int     octets sent: ifHCOutOctets, else ifOutOctets
//	inErrors     int     ifInErrors
//	outErrors    int     ifOutErrors
//	inDiscards   int     ifInDiscards
//	outDiscards  int     ifOutDiscards
//
// Errors and their severities:
//
//	HIGH    the configuration is invalid; the credential is not in the vault
//	        or does not fit the version; a credential is of the wrong kind or
//	        its hosts do not permit the address (nothing is sent); the
//	        address does not resolve; the run's address policy refuses the
//	        address (see probe.WithAddrPolicy; nothing is sent); no answer (for v2c: a wrong
//	        community, which agents silently drop, or an unreachable agent);
//	        SNMP authentication failed (v3); the agent's answer is malformed
//	        or out of order; the agent gives no system group / no interfaces
//	MEDIUM  more than 3000 interfaces: the first 3000 are reported
//	LOW     the agent gave only part of the system group (the result lists
//	        what it gave)
//
// No value of a credential is ever put in a result or an error message:
// the errors of the SNMP library are scrubbed of them before use.
package snmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/probe"
)

// The keys the appliance's registry maps to this package's checks.
const (
	CollectorKey    = "snmp"
	CheckSystem     = "system"
	CheckInterfaces = "interfaces"
)

const (
	defaultPort           = 161
	defaultRetries        = 1
	maxRetries            = 10
	defaultMaxRepetitions = 25
	maxMaxRepetitions     = 1000
	maxTimeout            = 300 // seconds
	minPassphraseLen      = 8
)

// The SNMP versions Config.Version holds after decoding.
const (
	Version2c = "2c"
	Version3  = "3"
)

// The v3 security levels.
const (
	LevelNoAuthNoPriv = "noAuthNoPriv"
	LevelAuthNoPriv   = "authNoPriv"
	LevelAuthPriv     = "authPriv"
)

var (
	_ probe.Func = System
	_ probe.Func = Interfaces
)

// Version is an SNMP version as configured: "2c" or "3". It also accepts
// "v2c", "v3" and the JSON numbers 2 and 3, which people write as often.
type Version string

// UnmarshalJSON reads a version given as a string or a number.
func (v *Version) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(bytes.TrimSpace(b))
	}
	switch strings.ToLower(s) {
	case "2c", "v2c", "2":
		*v = Version2c
	case "3", "v3":
		*v = Version3
	case "null", "":
		*v = ""
	default:
		return errVersion
	}
	return nil
}

var errVersion = errors.New(`config.version: must be "2c" or "3" (SNMP v1 is not supported)`)

// Config is the configuration of the snmp checks.
type Config struct {
	// Address is the agent's host name or IP address. Empty means the
	// asset's name.
	Address string `json:"address"`
	// Port is the agent's UDP port; 0 means 161.
	Port int `json:"port"`
	// Version is "2c" or "3".
	Version Version `json:"version"`
	// Credential names the vault entry with the community (v2c) or the
	// user name and authentication passphrase (v3).
	Credential string `json:"credential"`
	// PrivCredential names a vault entry with the v3 privacy passphrase.
	// Empty means the authentication passphrase is used for privacy too.
	PrivCredential string `json:"privCredential"`
	// SecurityLevel is the v3 level: authPriv (default), authNoPriv or
	// noAuthNoPriv.
	SecurityLevel string `json:"securityLevel"`
	// AuthProtocol is the v3 authentication protocol; empty means SHA.
	AuthProtocol string `json:"authProtocol"`
	// PrivProtocol is the v3 privacy protocol; empty means AES.
	PrivProtocol string `json:"privProtocol"`
	// Timeout is how long one request waits for its answer, in seconds.
	// Zero means it is derived from the run's deadline.
	Timeout float64 `json:"timeout"`
	// Retries is how many times a request is retried; nil means 1.
	Retries *int `json:"retries"`
	// MaxRepetitions is the number of rows a GETBULK request asks for;
	// zero means 25.
	MaxRepetitions int `json:"maxRepetitions"`

	// Resolved by Validate.
	authProto gosnmp.SnmpV3AuthProtocol
	privProto gosnmp.SnmpV3PrivProtocol
	level     string
}

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
	"SHA": gosnmp.SHA, "SHA1": gosnmp.SHA,
	"SHA224": gosnmp.SHA224,
	"SHA256": gosnmp.SHA256,
	"SHA384": gosnmp.SHA384,
	"SHA512": gosnmp.SHA512,
}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
	"AES": gosnmp.AES, "AES128": gosnmp.AES,
	"AES192":  gosnmp.AES192,
	"AES256":  gosnmp.AES256,
	"AES192C": gosnmp.AES192C,
	"AES256C": gosnmp.AES256C,
}

// protocolKey folds "sha-256", "SHA256" and "Sha256" together.
func protocolKey(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", ""))
}

// Validate checks the configuration, fills in the defaults and names the
// field that is wrong.
func (c *Config) Validate() error {
	if !probe.ValidHost(c.Address) {
		return errors.New("config.address: must be a host name or an IP address")
	}
	if c.Port == 0 {
		c.Port = defaultPort
	}
	if c.Port < 1 || c.Port > 65535 {
		return errors.New("config.port: must be between 1 and 65535")
	}
	switch c.Version {
	case Version2c, Version3:
	case "":
		return errors.New(`config.version: missing; set "2c" or "3"`)
	default:
		return errVersion
	}
	if c.Credential == "" {
		return errors.New("config.credential: missing; name the vault entry with the community (v2c) or the v3 user and passphrase")
	}
	if c.Timeout < 0 || c.Timeout > maxTimeout {
		return fmt.Errorf("config.timeout: must be between 0 and %d seconds", maxTimeout)
	}
	if c.Retries == nil {
		r := defaultRetries
		c.Retries = &r
	}
	if *c.Retries < 0 || *c.Retries > maxRetries {
		return fmt.Errorf("config.retries: must be between 0 and %d", maxRetries)
	}
	if c.MaxRepetitions == 0 {
		c.MaxRepetitions = defaultMaxRepetitions
	}
	if c.MaxRepetitions < 1 || c.MaxRepetitions > maxMaxRepetitions {
		return fmt.Errorf("config.maxRepetitions: must be between 1 and %d", maxMaxRepetitions)
	}
	if c.Version == Version2c {
		for field, v := range map[string]string{
			"privCredential": c.PrivCredential, "securityLevel": c.SecurityLevel,
			"authProtocol": c.AuthProtocol, "privProtocol": c.PrivProtocol,
		} {
			if v != "" {
				return fmt.Errorf(`config.%s: only for version "3"`, field)
			}
		}
		return nil
	}
	return c.validateV3()
}

func (c *Config) validateV3() error {
	switch strings.ToLower(c.SecurityLevel) {
	case "", "authpriv":
		c.level = LevelAuthPriv
	case "authnopriv":
		c.level = LevelAuthNoPriv
	case "noauthnopriv":
		c.level = LevelNoAuthNoPriv
	default:
		return errors.New(`config.securityLevel: must be "authPriv", "authNoPriv" or "noAuthNoPriv"`)
	}
	if c.level != LevelAuthPriv && (c.PrivProtocol != "" || c.PrivCredential != "") {
		return fmt.Errorf("config.privProtocol, config.privCredential: only for securityLevel authPriv, not %s", c.level)
	}
	if c.level == LevelNoAuthNoPriv && c.AuthProtocol != "" {
		return errors.New("config.authProtocol: not for securityLevel noAuthNoPriv")
	}
	c.authProto, c.privProto = gosnmp.NoAuth, gosnmp.NoPriv
	if c.level != LevelNoAuthNoPriv {
		name := c.AuthProtocol
		if name == "" {
			name = "SHA"
		}
		p, ok := authProtocols[protocolKey(name)]
		if !ok {
			return errors.New(`config.authProtocol: must be "SHA", "SHA224", "SHA256", "SHA384" or "SHA512" (MD5 is broken and not supported)`)
		}
		c.authProto = p
	}
	if c.level == LevelAuthPriv {
		name := c.PrivProtocol
		if name == "" {
			name = "AES"
		}
		p, ok := privProtocols[protocolKey(name)]
		if !ok {
			return errors.New(`config.privProtocol: must be "AES", "AES192", "AES256", "AES192C" or "AES256C" (DES is broken and not supported)`)
		}
		c.privProto = p
	}
	return nil
}

// parseConfig decodes and validates t's configuration, filling in the
// asset's name as the address when none is configured.
func parseConfig(t probe.Target) (*Config, error) {
	var c Config
	if err := probe.DecodeConfig(t.Config, &c); err != nil {
		return nil, err
	}
	if c.Address == "" {
		if !probe.ValidHost(t.AssetName) {
			return nil, errors.New("config.address: missing, and the asset's name is not a host name; set config.address")
		}
		c.Address = t.AssetName
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
