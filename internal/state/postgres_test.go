package state

import (
	"strings"
	"testing"
)

func TestPostgresURLChecked(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"postgres://sonde@db.example.com/sonde?sslmode=verify-full", ""},
		{"postgres://sonde@db.example.com/sonde?sslmode=verify-ca", ""},
		{"postgres://sonde@127.0.0.1:5432/sonde?sslmode=disable", ""},
		{"postgres://sonde@localhost/sonde", ""},
		{"postgresql://sonde@[::1]/sonde", ""},
		{"postgres://sonde@db.example.com/sonde", "verified TLS"},
		{"postgres://sonde@db.example.com/sonde?sslmode=require", "verified TLS"},
		{"postgres://sonde:hunter2@127.0.0.1/sonde", "password file"},
		{"postgres://sonde@127.0.0.1/sonde?password=hunter2", "password file"},
	} {
		err := checkPostgresURL(tc.url)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
	if IsPostgres("/var/lib/sonde/state.db") || !IsPostgres("postgresql://x/y") {
		t.Error("IsPostgres")
	}
}
