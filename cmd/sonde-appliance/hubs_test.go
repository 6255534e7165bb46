package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestHubFlag: --hub takes addresses separated by commas, the flag
// repeated adds to the list, a host alone gets the stream port, and a bad
// address is named.
func TestHubFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    []string
		wantErr string
	}{
		{[]string{"--hub", "hub1:8730"}, []string{"hub1:8730"}, ""},
		{[]string{"--hub", "hub1"}, []string{"hub1:8730"}, ""},
		{[]string{"--hub", "hub1:8730,hub2:9000"}, []string{"hub1:8730", "hub2:9000"}, ""},
		{[]string{"--hub", "hub1", "--hub", "hub2,hub3:1"}, []string{"hub1:8730", "hub2:8730", "hub3:1"}, ""},
		{[]string{"--hub", " hub1 , 10.0.0.2 "}, []string{"hub1:8730", "10.0.0.2:8730"}, ""},
		{[]string{"--hub", "[::1]:9000,::1"}, []string{"[::1]:9000", "[::1]:8730"}, ""},
		{[]string{"--hub", "hub1,"}, nil, "an empty hub address"},
		{[]string{"--hub", "hub1,hub2:http"}, nil, `"hub2:http": the port must be a number`},
		{[]string{"--hub", "hub1", "--hub", "hub2:0"}, nil, `"hub2:0"`},
		{[]string{"--hub", "https://hub1:8730"}, nil, `"https://hub1:8730": give HOST:PORT`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var got []string
			fs.Var((*hubList)(&got), "hub", "")
			err := fs.Parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse = %v, want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("--hub gives %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
