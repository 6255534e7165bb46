package notify

import (
	"mime"
	"strings"
	"testing"
)

func TestMailFoldHeader(t *testing.T) {
	tests := []string{
		"Subject: short",
		"To: " + strings.Repeat("someone@example.org, ", 10) + "last@example.org",
		"Subject: " + mime.QEncoding.Encode("utf-8", strings.Repeat("Grüße aus dem Rechenzentrum ", 6)),
		"Subject: " + strings.Repeat("x", 200),
	}
	for _, line := range tests {
		got := foldHeader(line)
		if unfolded := strings.ReplaceAll(got, "\r\n", ""); unfolded != line {
			t.Errorf("unfolding gives %q, want %q", unfolded, line)
		}
		for _, l := range strings.Split(got, "\r\n") {
			if len(l) > 78 && strings.Contains(strings.TrimSpace(l), " ") {
				t.Errorf("line of %d characters could have been folded: %q", len(l), l)
			}
		}
	}
}
