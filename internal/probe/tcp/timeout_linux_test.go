package tcp

import (
	"context"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// fullListener returns the port of a listening socket on 127.0.0.1 whose
// accept queue is full, so Linux drops further SYNs and a connection
// attempt hangs like one to a filtered port.
func fullListener(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	// Fill the accept queue (backlog 0 holds one connection), never accept.
	for range 2 {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return port
}

func TestTimeoutIsNotClosed(t *testing.T) {
	filtered := fullListener(t)
	closed := closedPort(t)
	start := time.Now()
	res := Probe(context.Background(), target(map[string]any{"ports": []any{filtered, closed}, "timeout": 2}), nil)
	if el := time.Since(start); el > 7*time.Second {
		t.Fatalf("run took %v with a 2 s timeout", el)
	}
	if res.Error == nil || res.Error.Severity != model.SeverityHigh {
		t.Fatalf("error %+v, want HIGH", res.Error)
	}
	if got := metrics(t, res, strconv.Itoa(filtered))["state"].Str; got != StateTimeout {
		t.Errorf("filtered port: state %q, want %q", got, StateTimeout)
	}
	if got := metrics(t, res, strconv.Itoa(closed))["state"].Str; got != StateClosed {
		t.Errorf("closed port: state %q, want %q", got, StateClosed)
	}
	if !strings.Contains(res.Error.Message, strconv.Itoa(filtered)+" timeout") {
		t.Errorf("message %q does not name the timed-out port", res.Error.Message)
	}
}
