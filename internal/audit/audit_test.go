package audit

import (
	"context"
	"strings"
	"testing"
)

func TestObject(t *testing.T) {
	for _, tc := range []struct{ pattern, kind, param string }{
		{"POST /api/v1/container/{id}/condition", "container", "id"},
		{"POST /api/v1/container/{cid}/asset", "container", "cid"},
		{"DELETE /api/v1/token/{tokenId}", "token", "tokenId"},
		{"POST /api/v1/asset/{id}/collector/{key}", "asset", "id"},
		{"POST /tokens", "", ""},
		{"POST /alert/{id}/{action}", "alert", "id"},
		{"POST /{id}", "", ""},
	} {
		k, p := Object(tc.pattern, "/api/v1/")
		if k != tc.kind || p != tc.param {
			t.Errorf("Object(%q) = %q, %q; want %q, %q", tc.pattern, k, p, tc.kind, tc.param)
		}
	}
}

func TestReason(t *testing.T) {
	ctx := context.Background()
	SetReason(ctx, "no entry: nothing happens")
	p := NewPending(Entry{Action: "x"})
	ctx = With(ctx, p)
	SetReason(ctx, "  fixed\r\n by   hand ")
	if got := p.Entry().Reason; got != "fixed by hand" {
		t.Errorf("reason %q", got)
	}
	SetReason(ctx, strings.Repeat("é", MaxReason))
	if got := p.Entry().Reason; len(got) > MaxReason || !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("a long reason is cut to %d bytes: %q…", len(got), got[:10])
	}
	SetObject(ctx, "condition", 7)
	if e := p.Entry(); e.ObjectKind != "condition" || e.ObjectID != 7 {
		t.Errorf("object %+v", e)
	}
}
