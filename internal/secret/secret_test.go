package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "0123456789abcdef0123456789abcdef"
	s := New(value)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("x", "token", s)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "token", s)
	js, err := json.Marshal(struct{ T Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := s.MarshalText()
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s),
		fmt.Sprintf("%d %x %X %08v %-40s %T", s, s, s, s, s, struct{ T Secret }{s}) + fmt.Sprintf("%x", struct{ T Secret }{s}),
		fmt.Sprintf("%v", struct{ T Secret }{s}), fmt.Sprintf("%#v", struct{ T Secret }{s}),
		string(js), string(txt), logs.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, value) {
			t.Errorf("secret leaked: %s", o)
		}
		if !strings.Contains(o, Redacted) {
			t.Errorf("no redaction marker in %q", o)
		}
	}
	if s.Reveal() != value {
		t.Fatal("Reveal lost the value")
	}
	if !s.Equal(New(value)) || s.Equal(New("other")) {
		t.Fatal("Equal is wrong")
	}
}
