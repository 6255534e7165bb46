package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is a server process the benchmark started.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// startChild starts bin with args, its output in logPath. The child runs
// in its own process group, so Ctrl-C reaches the benchmark only and the
// benchmark stops the child in order; it gets SIGTERM if the benchmark dies.
func startChild(name, bin string, args []string, logPath string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // #nosec G304 -- a file in sonde-bench's own temporary directory
	if err != nil {
		return nil, fmt.Errorf("creating %s's log: %w", name, err)
	}
	cmd := exec.Command(bin, args...) // #nosec G204 -- the operator's --sonde or --spawn-prometheus binary, with arguments sonde-bench builds
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("starting %s (%s): %w", name, bin, err), logf.Close())
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = errors.Join(cmd.Wait(), logf.Close())
		close(c.exited)
	}()
	return c, nil
}

// pid is the child's process ID.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to shut down with SIGTERM and waits up to grace for
// it, then kills it. It returns an error if the child did not exit cleanly.
func (c *child) stop(grace time.Duration) error {
	return c.stopWith(func() error { return c.cmd.Process.Signal(syscall.SIGTERM) }, grace)
}

// stopWith asks the child to shut down with signal (which may signal
// another process, such as a server the child runs as another user) and
// waits up to grace for it to exit, then kills it.
func (c *child) stopWith(signal func() error, grace time.Duration) error {
	select {
	case <-c.exited:
		return c.exitError()
	default:
	}
	if err := signal(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s: %w", c.name, err)
	}
	select {
	case <-c.exited:
		return c.exitError()
	case <-time.After(grace):
		// The whole group: a child such as runuser may have children.
		kerr := syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		return errors.Join(fmt.Errorf("%s did not stop within %s of SIGTERM and was killed; its log: %s", c.name, grace, c.logPath), kerr)
	}
}

func (c *child) exitError() error {
	if c.waitErr != nil {
		return fmt.Errorf("%s exited: %w; its log: %s", c.name, c.waitErr, c.logPath)
	}
	return nil
}

// logTail returns the end of the child's log, for error messages.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitReady polls until ready returns nil, the child exits, ctx ends or
// timeout passes.
func (c *child) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", c.name, c.waitErr, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within %s: %w; its log: %s", c.name, timeout, last, c.logPath)
		}
	}
}

// binaryVersion returns the first line bin prints for args (e.g.
// "version"), or "" if it says nothing within five seconds.
func binaryVersion(ctx context.Context, bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput() // #nosec G204 -- the binary sonde-bench was told to spawn, asked its version
	if err != nil {
		return ""
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(out), []byte("\n"))
	return string(line)
}

// freeLocalPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLocalPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// getOK answers nil when GET url gives 200.
func getOK(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	msg := drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, msg)
	}
	return nil
}
