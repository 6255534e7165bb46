//go:build linux

package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/alert/notify"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/testutil"
)

// The tests send through Debian's aiosmtpd (testutil.StartSMTPD) over
// STARTTLS with certificates made here. These values must never show up in
// an error.
const (
	testUser     = "sonde-mailer"
	testPassword = "pw-Zq8vN3xK1-never-print-me"
)

func mailerFor(t *testing.T, s *testutil.SMTPD, edit func(*notify.MailConfig)) *notify.Mailer {
	t.Helper()
	cfg := notify.MailConfig{
		Addr:    s.Addr,
		From:    "Sonde Hub <sonde@example.org>",
		RootCAs: s.RootCAs,
		Timeout: 10 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := notify.NewMailer(cfg)
	if err != nil {
		t.Fatalf("notify.NewMailer: %v", err)
	}
	return m
}

func withAuth(password string) func(*notify.MailConfig) {
	return func(c *notify.MailConfig) {
		c.Username = testUser
		c.Password = secret.New(password)
	}
}

// checkNoPassword fails the test if err's text, however it is printed,
// holds the password.
func checkNoPassword(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, testPassword) {
			t.Fatalf("error reveals the password: %s", s)
		}
	}
}

func TestMailSendDelivers(t *testing.T) {
	plain := testutil.StartSMTPD(t, testutil.SMTPDOptions{})
	authed := testutil.StartSMTPD(t, testutil.SMTPDOptions{Username: testUser, Password: testPassword})

	long := strings.Repeat("Température du disque trop élevée sur srv-01, ", 3)
	tests := []struct {
		name    string
		auth    bool
		to      []string
		subject string
		text    string
		id      string
	}{
		{
			name:    "ascii",
			to:      []string{"ops@example.org"},
			subject: "disk full on web-1",
			text:    "line 1\nline 2\n.a line that starts with a dot\n.\nlast line\n",
			id:      "alert-17.1",
		},
		{
			name:    "non-ASCII subject and body, with AUTH",
			auth:    true,
			to:      []string{"Zoë Ops <zoe@example.org>", "oncall@example.org"},
			subject: "Schwellwert überschritten – 温度 🔥",
			text:    "Grüße,\r\nTempérature: 85 °C = zu heiß\r\n" + long + "\r\n",
			id:      "alert-18.1@sonde.example.org",
		},
		{
			name:    "long subject is folded",
			to:      []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"},
			subject: long,
			text:    "no final line break",
			id:      "alert-19.1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, edit := plain, func(*notify.MailConfig) {}
			if tc.auth {
				srv, edit = authed, withAuth(testPassword)
			}
			before, err := srv.Messages()
			if err != nil {
				t.Fatal(err)
			}
			m := mailerFor(t, srv, edit)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := m.Send(ctx, tc.to, tc.subject, tc.text, tc.id); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs, err := srv.WaitMessages(len(before)+1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got := msgs[len(msgs)-1]
			if !got.TLS {
				t.Error("message was received without TLS")
			}
			if tc.auth && got.AuthLogin != testUser {
				t.Errorf("AUTH login = %q, want %q", got.AuthLogin, testUser)
			}
			if got.MailFrom != "sonde@example.org" {
				t.Errorf("MAIL FROM = %q", got.MailFrom)
			}
			if len(got.RcptTos) != len(tc.to) {
				t.Errorf("RCPT TO = %q, want %d recipients", got.RcptTos, len(tc.to))
			}
			checkMessage(t, got.Data, tc.to, tc.subject, tc.text, tc.id)
		})
	}
}

func checkMessage(t *testing.T, raw []byte, to []string, subject, text, id string) {
	t.Helper()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d is %d bytes long", i, len(line))
		}
		if bytes.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i, line)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parsing the received message: %v\n%s", err, raw)
	}
	h := msg.Header
	var dec mime.WordDecoder
	gotSubject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || gotSubject != subject {
		t.Errorf("Subject = %q (%v), want %q; raw %q", gotSubject, err, subject, h.Get("Subject"))
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "sonde@example.org" || from[0].Name != "Sonde Hub" {
		t.Errorf("From = %v (%v)", from, err)
	}
	gotTo, err := h.AddressList("To")
	if err != nil || len(gotTo) != len(to) {
		t.Fatalf("To = %v (%v), want %q", gotTo, err, to)
	}
	for i, a := range to {
		want, _ := mail.ParseAddress(a)
		if *gotTo[i] != *want {
			t.Errorf("To[%d] = %v, want %v", i, gotTo[i], want)
		}
	}
	wantID := "<" + id + ">"
	if !strings.Contains(id, "@") {
		wantID = "<" + id + "@sonde>"
	}
	if got := h.Get("Message-ID"); got != wantID {
		t.Errorf("Message-ID = %q, want %q", got, wantID)
	}
	if d, err := h.Date(); err != nil || time.Since(d).Abs() > time.Minute {
		t.Errorf("Date = %q (%v)", h.Get("Date"), err)
	}
	for k, want := range map[string]string{
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decoding the body: %v", err)
	}
	wantBody := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	if got := strings.TrimSuffix(string(body), "\r\n"); got != strings.TrimSuffix(wantBody, "\r\n") {
		t.Errorf("body = %q, want %q", got, wantBody)
	}
}

func TestMailResendKeepsMessageID(t *testing.T) {
	srv := testutil.StartSMTPD(t, testutil.SMTPDOptions{})
	m := mailerFor(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := m.Send(ctx, []string{"ops@example.org"}, "again", "body", "alert-42.7"); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	msgs, err := srv.WaitMessages(2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, raw := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(raw.Data))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msg.Header.Get("Message-ID"))
	}
	if ids[0] != "<alert-42.7@sonde>" || ids[1] != ids[0] {
		t.Errorf("Message-IDs = %q, want twice <alert-42.7@sonde>", ids)
	}
}

func TestMailSendFails(t *testing.T) {
	_, _, otherCA := testutil.NewTLSCert(t, "127.0.0.1")
	tests := []struct {
		name string
		opts testutil.SMTPDOptions
		edit func(*notify.MailConfig)
		to   []string
		// wantSent is how many messages the server must have received.
		wantSent      int
		wantPermanent bool
		wantErr       string
		wantIs        error
	}{
		{
			name:          "no STARTTLS",
			opts:          testutil.SMTPDOptions{NoTLS: true},
			edit:          withAuth(testPassword),
			wantPermanent: true,
			wantIs:        notify.ErrNoSTARTTLS,
		},
		{
			name:          "certificate from another CA",
			edit:          func(c *notify.MailConfig) { c.RootCAs = otherCA },
			wantPermanent: true,
			wantErr:       "certificate",
		},
		{
			name:          "certificate for another name",
			edit:          func(c *notify.MailConfig) { c.ServerName = "mail.example.org" },
			wantPermanent: true,
			wantErr:       "mail.example.org",
		},
		{
			name:          "system roots do not know the test CA",
			edit:          func(c *notify.MailConfig) { c.RootCAs = nil },
			wantPermanent: true,
			wantErr:       "certificate",
		},
		{
			name:          "rejected recipient",
			opts:          testutil.SMTPDOptions{RejectRecipients: []string{"nobody@example.org"}},
			to:            []string{"nobody@example.org"},
			wantPermanent: true,
			wantErr:       "550",
		},
		{
			name:          "one of two recipients rejected",
			opts:          testutil.SMTPDOptions{RejectRecipients: []string{"nobody@example.org"}},
			to:            []string{"ops@example.org", "nobody@example.org"},
			wantSent:      1,
			wantPermanent: true,
			wantErr:       "nobody@example.org",
		},
		{
			name:     "deferred recipient",
			opts:     testutil.SMTPDOptions{DeferRecipients: []string{"busy@example.org"}},
			to:       []string{"ops@example.org", "busy@example.org"},
			wantErr:  "450",
			wantSent: 0,
		},
		{
			name:          "wrong password",
			opts:          testutil.SMTPDOptions{Username: testUser, Password: "the-right-one"},
			edit:          withAuth(testPassword),
			wantPermanent: true,
			wantErr:       "535",
		},
		{
			name:   "server hangs after STARTTLS",
			opts:   testutil.SMTPDOptions{StallRecipients: []string{"slow@example.org"}},
			edit:   func(c *notify.MailConfig) { c.Timeout = time.Second },
			to:     []string{"slow@example.org"},
			wantIs: context.DeadlineExceeded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testutil.StartSMTPD(t, tc.opts)
			edit := tc.edit
			if edit == nil {
				edit = func(*notify.MailConfig) {}
			}
			m := mailerFor(t, srv, func(c *notify.MailConfig) {
				c.RootCAs = srv.RootCAs
				edit(c)
			})
			to := tc.to
			if to == nil {
				to = []string{"ops@example.org"}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			err := m.Send(ctx, to, "subject", "text", "alert-1.1")
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Logf("error: %v", err)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Send took %v", elapsed)
			}
			checkNoPassword(t, err)
			if notify.IsPermanent(err) != tc.wantPermanent {
				t.Errorf("notify.IsPermanent = %v, want %v", notify.IsPermanent(err), tc.wantPermanent)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error does not mention %q", tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error is not %v", tc.wantIs)
			}
			// Give the server a moment to write anything it received.
			time.Sleep(100 * time.Millisecond)
			msgs, err := srv.Messages()
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != tc.wantSent {
				t.Fatalf("server received %d messages, want %d", len(msgs), tc.wantSent)
			}
			if tc.wantSent == 1 && (len(msgs[0].RcptTos) != 1 || msgs[0].RcptTos[0] != "ops@example.org") {
				t.Errorf("RCPT TO = %q, want only the accepted recipient", msgs[0].RcptTos)
			}
		})
	}
}

// countingListener accepts connections and never says a word. A fake is
// enough here: these tests are about what the mailer does before it
// connects or when the peer is silent, not about SMTP.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int32)
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), accepted
}

func TestMailRefusesInjectionBeforeConnecting(t *testing.T) {
	addr, accepted := countingListener(t)
	tests := []struct {
		name    string
		to      []string
		subject string
		id      string
	}{
		{name: "CRLF in subject", subject: "x\r\nBcc: victim@example.org"},
		{name: "LF in subject", subject: "x\nBcc: victim@example.org"},
		{name: "CR in subject", subject: "x\rBcc: victim@example.org"},
		{name: "CRLF in recipient", to: []string{"ops@example.org\r\nBcc: victim@example.org"}},
		{name: "CRLF and space in recipient", to: []string{"Ops\r\n <ops@example.org>"}},
		{name: "LF in recipient name", to: []string{"\"a\nb\" <ops@example.org>"}},
		{name: "not an address", to: []string{"ops"}},
		{name: "no recipient", to: []string{}},
		{name: "CRLF in message id", id: "a\r\nBcc: victim@example.org"},
		{name: "space in message id", id: "a b"},
		{name: "two @ in message id", id: "a@b@c"},
		{name: "angle bracket in message id", id: "a>"},
		{name: "invalid UTF-8 subject", subject: "\xff"},
	}
	m, err := notify.NewMailer(notify.MailConfig{Addr: addr, From: "sonde@example.org", Username: testUser, Password: secret.New(testPassword), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			to, subject, id := tc.to, tc.subject, tc.id
			if to == nil {
				to = []string{"ops@example.org"}
			}
			if id == "" {
				id = "alert-1.1"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := m.Send(ctx, to, subject, "text", id)
			if err == nil || !notify.IsPermanent(err) {
				t.Fatalf("Send = %v, want a permanent error", err)
			}
			checkNoPassword(t, err)
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the mailer connected %d times", n)
	}
}

func TestNewMailerValidates(t *testing.T) {
	ok := notify.MailConfig{Addr: "smtp.example.org:587", From: "sonde@example.org"}
	tests := []struct {
		name  string
		edit  func(*notify.MailConfig)
		field string
	}{
		{"no port", func(c *notify.MailConfig) { c.Addr = "smtp.example.org" }, "Addr"},
		{"bad port", func(c *notify.MailConfig) { c.Addr = "smtp.example.org:smtp" }, "Addr"},
		{"port 0", func(c *notify.MailConfig) { c.Addr = "smtp.example.org:0" }, "Addr"},
		{"no host", func(c *notify.MailConfig) { c.Addr = ":587" }, "Addr"},
		{"no From", func(c *notify.MailConfig) { c.From = "" }, "From"},
		{"From not an address", func(c *notify.MailConfig) { c.From = "sonde" }, "From"},
		{"CRLF in From", func(c *notify.MailConfig) { c.From = "sonde@example.org\r\nBcc: x@example.org" }, "From"},
		{"password without user", func(c *notify.MailConfig) { c.Password = secret.New(testPassword) }, "Username"},
		{"user without password", func(c *notify.MailConfig) { c.Username = testUser }, "Password"},
		{"CR in password", func(c *notify.MailConfig) { c.Username = testUser; c.Password = secret.New(testPassword + "\r") }, "Password"},
		{"negative timeout", func(c *notify.MailConfig) { c.Timeout = -time.Second }, "Timeout"},
		{"HelloName with space", func(c *notify.MailConfig) { c.HelloName = "a b" }, "HelloName"},
		{"HelloName with CRLF", func(c *notify.MailConfig) { c.HelloName = "a\r\nMAIL FROM:<x>" }, "HelloName"},
	}
	if _, err := notify.NewMailer(ok); err != nil {
		t.Fatalf("notify.NewMailer(valid) = %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := notify.NewMailer(cfg)
			if err == nil {
				t.Fatal("notify.NewMailer succeeded")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
			if !notify.IsPermanent(err) {
				t.Errorf("error is not permanent")
			}
			checkNoPassword(t, err)
		})
	}
}

func TestMailSilentServer(t *testing.T) {
	addr, _ := countingListener(t)
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // cancel the context after this long; 0: never
		wantIs  error
		within  time.Duration
	}{
		{name: "timeout", timeout: 500 * time.Millisecond, wantIs: context.DeadlineExceeded, within: 3 * time.Second},
		{name: "context cancelled", timeout: time.Minute, cancel: 300 * time.Millisecond, wantIs: context.Canceled, within: 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := notify.NewMailer(notify.MailConfig{Addr: addr, From: "sonde@example.org", Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			start := time.Now()
			err = m.Send(ctx, []string{"ops@example.org"}, "s", "t", "alert-1.1")
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Logf("after %v: %v", elapsed, err)
			if elapsed > tc.within {
				t.Errorf("Send returned after %v, want within %v", elapsed, tc.within)
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("error is not %v", tc.wantIs)
			}
			if notify.IsPermanent(err) {
				t.Error("a timeout must not be permanent")
			}
		})
	}
}
