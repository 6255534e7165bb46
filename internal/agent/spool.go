package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// A spool keeps the check results the hub has not acknowledged yet, one
// file per result in <state>/spool, named <seq>-<check>.json so that a
// directory listing gives them back in the order they were made. Each file
// is written to a temporary name, synced and renamed, so a crash leaves
// either a whole result or none. The total size is bounded: past the
// budget the oldest results are dropped and counted, and the count is kept
// on disk (file "dropped") so that it survives a restart and reaches the
// hub with a later result.
type spool struct {
	dir    string
	budget int64

	mu      sync.Mutex
	entries []spoolEntry // oldest first
	bytes   int64
	next    uint64
	dropped uint64
}

// spoolEntry is one spooled result.
type spoolEntry struct {
	seq   uint64
	check string
	size  int64
}

func (e spoolEntry) name() string {
	return fmt.Sprintf("%020d-%s.json", e.seq, e.check)
}

const droppedFile = "dropped"

// openSpool opens (creating) the spool directory and reads what a previous
// run left in it. Temporary files of an interrupted write are removed.
func openSpool(dir string, budget int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory %s: %w", dir, err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading spool directory %s: %w", dir, err)
	}
	s := &spool{dir: dir, budget: budget, next: 1}
	for _, de := range des {
		name := de.Name()
		switch {
		case name == droppedFile:
			b, err := os.ReadFile(filepath.Join(dir, name)) // #nosec G304 -- a fixed name inside the agent's own state dir
			if err != nil {
				return nil, fmt.Errorf("reading spool drop count: %w", err)
			}
			n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("spool drop count %s is not a number: remove the file to reset it", filepath.Join(dir, name))
			}
			s.dropped = n
		case strings.HasPrefix(name, ".tmp-"):
			os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, ".json"):
			seqStr, check, ok := strings.Cut(strings.TrimSuffix(name, ".json"), "-")
			seq, err := strconv.ParseUint(seqStr, 10, 64)
			if !ok || err != nil || validCheckKey(check) != nil {
				continue // not ours: leave it alone
			}
			info, err := de.Info()
			if err != nil {
				return nil, fmt.Errorf("reading spool entry %s: %w", name, err)
			}
			s.entries = append(s.entries, spoolEntry{seq: seq, check: check, size: info.Size()})
			s.bytes += info.Size()
			if seq >= s.next {
				s.next = seq + 1
			}
		}
	}
	sort.Slice(s.entries, func(i, j int) bool { return s.entries[i].seq < s.entries[j].seq })
	return s, nil
}

// put writes one result durably, dropping the oldest results first when
// the budget would be exceeded. A result larger than the whole budget is
// refused.
func (s *spool) put(check string, body []byte) error {
	if err := validCheckKey(check); err != nil {
		return err
	}
	size := int64(len(body))
	if size > s.budget {
		return fmt.Errorf("spooling check %s: the result (%d bytes) is larger than the whole spool budget (%d bytes)", check, size, s.budget)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := spoolEntry{seq: s.next, check: check, size: size}
	if err := writeFileSync(s.dir, e.name(), body); err != nil {
		return fmt.Errorf("spooling check %s: %w", check, err)
	}
	s.next++
	s.entries = append(s.entries, e)
	s.bytes += size
	var dropped uint64
	for s.bytes > s.budget && len(s.entries) > 1 {
		old := s.entries[0]
		if err := os.Remove(filepath.Join(s.dir, old.name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dropping the oldest spooled result: %w", err)
		}
		s.entries = s.entries[1:]
		s.bytes -= old.size
		dropped++
	}
	if dropped > 0 {
		s.dropped += dropped
		if err := writeFileSync(s.dir, droppedFile, []byte(strconv.FormatUint(s.dropped, 10)+"\n")); err != nil {
			return fmt.Errorf("recording the spool drop count: %w", err)
		}
	}
	return nil
}

// oldest returns the oldest spooled result and its body, or ok false when
// the spool is empty.
func (s *spool) oldest() (e spoolEntry, body []byte, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.entries) > 0 {
		e = s.entries[0]
		body, err = os.ReadFile(filepath.Join(s.dir, e.name())) // #nosec G304 -- a name we made, inside the agent's own state dir
		if errors.Is(err, os.ErrNotExist) {
			// Removed behind our back: nothing to send.
			s.entries = s.entries[1:]
			s.bytes -= e.size
			continue
		}
		if err != nil {
			return e, nil, false, fmt.Errorf("reading spooled result %s: %w", e.name(), err)
		}
		return e, body, true, nil
	}
	return e, nil, false, nil
}

// remove deletes a result once the hub took it (or refused it for good).
func (s *spool) remove(e spoolEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.entries {
		if x.seq != e.seq {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, x.name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing sent result %s: %w", x.name(), err)
		}
		s.entries = append(s.entries[:i], s.entries[i+1:]...)
		s.bytes -= x.size
		return nil
	}
	return nil
}

// stats returns how many results wait and how many were dropped since the
// spool was first created.
func (s *spool) stats() (waiting int, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.dropped
}

// writeFileSync writes name in dir through a synced temporary file and a
// rename, then syncs the directory, so that the file is whole after a
// crash.
func writeFileSync(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir) // #nosec G304 -- the agent's own state dir
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// validCheckKey accepts the check keys the hub accepts in a URL path.
func validCheckKey(k string) error {
	if k == "" || len(k) > 64 {
		return fmt.Errorf("check key %q must be 1–64 characters", k)
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("check key %q may hold only a–z, 0–9 and _", k)
		}
	}
	return nil
}
