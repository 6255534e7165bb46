package wire

import (
	"fmt"
	"log/slog"
)

// Sonde's enrollment packets. They are not InfraSonar's: an unchanged
// InfraSonar appliance never sends them. An appliance without a client
// certificate connects over TLS, sends an enroll with a token that holds
// CORE_CONNECT and a certificate signing request for a key it made itself,
// and receives a certificate signed by the hub's CA. It then reconnects with
// that certificate (mutual TLS) and announces.
const (
	// TypeEnroll is appliance → hub: [token, name, zone, csr (binary, DER)].
	TypeEnroll Type = 0x10
	// TypeEnrollReply is hub → appliance: [appliance_id, certificate
	// (binary, DER), CA certificate (binary, DER)]. It also answers
	// TypeRenew.
	TypeEnrollReply Type = 0x90
	// TypeRenew is appliance → hub on a mutual-TLS stream, before its
	// certificate expires: [csr (binary, DER)] for a new key.
	TypeRenew Type = 0x11
)

// MarshalRenew encodes a renew body.
func MarshalRenew(csr []byte) ([]byte, error) {
	if len(csr) == 0 || len(csr) > maxCSR {
		return nil, shape{"renew"}.errf("", "%s must hold 1 to %d bytes, got %d", elemName(0, "csr"), maxCSR, len(csr))
	}
	return AppendBytes(AppendArrayHeader(make([]byte, 0, 8+len(csr)), 1), csr), nil
}

// UnmarshalRenew decodes a renew body.
func UnmarshalRenew(body []byte) ([]byte, error) {
	s := shape{"renew"}
	v, err := s.decode(body)
	if err != nil {
		return nil, err
	}
	a, err := s.tuple("", v, 1, 1, "[csr]")
	if err != nil {
		return nil, err
	}
	csr, ok := a[0].([]byte)
	if !ok || len(csr) == 0 || len(csr) > maxCSR {
		return nil, s.errf("", "%s must be binary data of 1 to %d bytes, got %s", elemName(0, "csr"), maxCSR, describeValue(a[0]))
	}
	return csr, nil
}

// Enroll is the body of TypeEnroll.
type Enroll struct {
	// Token is a secret: String, GoString and LogValue leave it out.
	Token string
	Name  string
	Zone  int
	// CSR is a DER-encoded PKCS #10 certificate signing request.
	CSR []byte
}

// String describes the enroll without its token.
func (e Enroll) String() string {
	return fmt.Sprintf("enroll{name %q, zone %d, token %s, csr %d bytes}", e.Name, e.Zone, redacted(e.Token), len(e.CSR))
}

// GoString is String, so that %#v does not print the token either.
func (e Enroll) GoString() string { return e.String() }

// LogValue logs the enroll without its token.
func (e Enroll) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", e.Name), slog.Int("zone", e.Zone), slog.String("token", redacted(e.Token)))
}

// maxCSR bounds a certificate signing request (an RSA-4096 one is under 2 KB).
const maxCSR = 16 << 10

// MarshalEnroll encodes an enroll body.
func MarshalEnroll(e Enroll) ([]byte, error) {
	s := shape{"enroll"}
	switch {
	case e.Token == "":
		return nil, s.errf("", "%s must not be empty", elemName(0, "token"))
	case e.Name == "":
		return nil, s.errf("", "%s must not be empty", elemName(1, "name"))
	case !validZone(int64(e.Zone)):
		return nil, s.errf("", "%s must be an integer 0–9, got %d", elemName(2, "zone"), e.Zone)
	case len(e.CSR) == 0 || len(e.CSR) > maxCSR:
		return nil, s.errf("", "%s must hold 1 to %d bytes, got %d", elemName(3, "csr"), maxCSR, len(e.CSR))
	}
	b := AppendArrayHeader(make([]byte, 0, 32+len(e.Token)+len(e.Name)+len(e.CSR)), 4)
	b = AppendString(b, e.Token)
	b = AppendString(b, e.Name)
	b = AppendInt(b, int64(e.Zone))
	return AppendBytes(b, e.CSR), nil
}

// UnmarshalEnroll decodes an enroll body. Errors never quote the token.
func UnmarshalEnroll(body []byte) (Enroll, error) {
	s := shape{"enroll"}
	v, err := s.decode(body)
	if err != nil {
		return Enroll{}, err
	}
	a, err := s.tuple("", v, 4, 4, "[token, name, zone, csr]")
	if err != nil {
		return Enroll{}, err
	}
	var out Enroll
	if out.Token, err = s.str("", a, 0, "token", true); err != nil {
		return Enroll{}, err
	}
	if out.Name, err = s.str("", a, 1, "name", true); err != nil {
		return Enroll{}, err
	}
	if out.Zone, err = s.zone("", a, 2); err != nil {
		return Enroll{}, err
	}
	csr, ok := a[3].([]byte)
	if !ok || len(csr) == 0 || len(csr) > maxCSR {
		return Enroll{}, s.errf("", "%s must be binary data of 1 to %d bytes, got %s", elemName(3, "csr"), maxCSR, describeValue(a[3]))
	}
	out.CSR = csr
	return out, nil
}

// EnrollReply is the body of TypeEnrollReply.
type EnrollReply struct {
	ApplianceID uint64
	// Certificate is the appliance's client certificate, DER.
	Certificate []byte
	// CA is the certificate of the CA that signed it, DER.
	CA []byte
}

// MarshalEnrollReply encodes an enroll reply.
func MarshalEnrollReply(r EnrollReply) ([]byte, error) {
	s := shape{"enroll reply"}
	if r.ApplianceID == 0 {
		return nil, s.errf("", "%s must be a positive integer, got 0", elemName(0, "appliance_id"))
	}
	if len(r.Certificate) == 0 || len(r.CA) == 0 {
		return nil, s.errf("", "the certificate and the CA certificate must not be empty")
	}
	b := AppendArrayHeader(make([]byte, 0, 32+len(r.Certificate)+len(r.CA)), 3)
	b = AppendUint(b, r.ApplianceID)
	b = AppendBytes(b, r.Certificate)
	return AppendBytes(b, r.CA), nil
}

// UnmarshalEnrollReply decodes an enroll reply.
func UnmarshalEnrollReply(body []byte) (EnrollReply, error) {
	s := shape{"enroll reply"}
	v, err := s.decode(body)
	if err != nil {
		return EnrollReply{}, err
	}
	a, err := s.tuple("", v, 3, 3, "[appliance_id, certificate, ca]")
	if err != nil {
		return EnrollReply{}, err
	}
	var out EnrollReply
	if out.ApplianceID, err = s.uint("", a, 0, "appliance_id", true); err != nil {
		return EnrollReply{}, err
	}
	var ok bool
	if out.Certificate, ok = a[1].([]byte); !ok || len(out.Certificate) == 0 {
		return EnrollReply{}, s.errf("", "%s must be binary data, got %s", elemName(1, "certificate"), describeValue(a[1]))
	}
	if out.CA, ok = a[2].([]byte); !ok || len(out.CA) == 0 {
		return EnrollReply{}, s.errf("", "%s must be binary data, got %s", elemName(2, "ca"), describeValue(a[2]))
	}
	return out, nil
}
