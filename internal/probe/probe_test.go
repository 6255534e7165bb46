package probe

import (
	"strings"
	"testing"
)

func TestDecodeConfig(t *testing.T) {
	type cfg struct {
		Address string `json:"address"`
		Ports   []int  `json:"ports"`
		Skip    string `json:"-"`
	}
	for _, tc := range []struct {
		name    string
		in      map[string]any
		wantErr string
	}{
		{"known fields", map[string]any{"address": "h", "ports": []any{int64(80)}}, ""},
		{"bookkeeping keys are ignored", map[string]any{"address": "h", "_interval": int64(60)}, ""},
		{"a field spelt in another case is unknown", map[string]any{"Ports": []any{int64(80)}}, `unknown field "Ports"`},
		{"an unknown field", map[string]any{"adress": "h"}, `unknown field "adress"`},
		{"a wrong type", map[string]any{"ports": "80"}, "cannot unmarshal"},
		{"a field without a json name", map[string]any{"Skip": "x"}, `unknown field "Skip"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cfg
			err := DecodeConfig(tc.in, &c)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("DecodeConfig = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
