//go:build linux

package testutil

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func TestStartSMTPD(t *testing.T) {
	s := StartSMTPD(t, SMTPDOptions{})
	conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// require_starttls: MAIL before STARTTLS is refused.
	if err := c.Mail("a@example.org"); err == nil || !strings.Contains(err.Error(), "530") {
		t.Fatalf("MAIL before STARTTLS = %v, want 530", err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	const msg = "Subject: hi\r\n\r\n.dot\r\nbody\r\n"
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	msgs, err := s.WaitMessages(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.MailFrom != "a@example.org" || len(m.RcptTos) != 1 || m.RcptTos[0] != "b@example.org" || !m.TLS || m.AuthLogin != "" {
		t.Errorf("envelope = %+v", m)
	}
	if !bytes.Equal(m.Data, []byte(msg)) {
		t.Errorf("data = %q, want %q", m.Data, msg)
	}
}
