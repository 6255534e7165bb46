package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpoolOrderAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.put("cpu", fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	e, body, ok, err := s.oldest()
	if err != nil || !ok || string(body) != `{"n":0}` {
		t.Fatalf("oldest = %s %v %v", body, ok, err)
	}
	if err := s.remove(e); err != nil {
		t.Fatal(err)
	}
	// An interrupted write leaves a temporary file: reopening removes it
	// and keeps the order; new results come after the old ones.
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.put("memory", []byte(`{"n":5}`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		e, body, ok, err := s.oldest()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, e.check+string(body))
		if err := s.remove(e); err != nil {
			t.Fatal(err)
		}
	}
	want := `cpu{"n":1} cpu{"n":2} cpu{"n":3} cpu{"n":4} memory{"n":5}`
	if strings.Join(got, " ") != want {
		t.Errorf("replayed %q, want %q", strings.Join(got, " "), want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestSpoolBudgetDropsOldest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	body := []byte(strings.Repeat("x", 100))
	s, err := openSpool(dir, 350)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := s.put("cpu", body); err != nil {
			t.Fatal(err)
		}
	}
	waiting, dropped := s.stats()
	if waiting != 3 || dropped != 2 {
		t.Fatalf("waiting %d, dropped %d; want 3 and 2", waiting, dropped)
	}
	e, _, _, _ := s.oldest()
	if e.seq != 3 {
		t.Errorf("oldest kept is %d, want 3", e.seq)
	}
	// The count survives a restart.
	s, err = openSpool(dir, 350)
	if err != nil {
		t.Fatal(err)
	}
	if waiting, dropped := s.stats(); waiting != 3 || dropped != 2 {
		t.Errorf("after reopening: waiting %d, dropped %d", waiting, dropped)
	}
	if err := s.put("cpu", make([]byte, 400)); err == nil || !strings.Contains(err.Error(), "larger than the whole spool budget") {
		t.Errorf("oversized result: %v", err)
	}
	if err := s.put("../etc", body); err == nil {
		t.Error("a check key with a path in it was spooled")
	}
}

func TestSpoolIgnoresForeignFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"notes.json", "x-cpu.json", "00000000000000000001-Bad-Key.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if waiting, _ := s.stats(); waiting != 0 {
		t.Errorf("%d foreign files taken for results", waiting)
	}
	if err := os.WriteFile(filepath.Join(dir, droppedFile), []byte("many"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openSpool(dir, 1<<20); err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Errorf("a broken drop count: %v", err)
	}
}
