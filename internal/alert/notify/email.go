package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// DefaultMailTimeout bounds a whole SMTP session when MailConfig.Timeout is
// zero.
const DefaultMailTimeout = 30 * time.Second

// ErrNoSTARTTLS is returned (as a PermanentError) when the mail server does
// not offer STARTTLS: Sonde never sends mail, let alone credentials, in
// clear.
var ErrNoSTARTTLS = errors.New("mail server does not offer STARTTLS")

// MailConfig says how to reach the SMTP server.
type MailConfig struct {
	// Addr is host:port of the SMTP server (submission, usually :587).
	Addr string
	// From is the envelope and header sender, "a@b" or "Name <a@b>".
	From string
	// Username and Password, when set, are sent with AUTH PLAIN (or LOGIN
	// if the server offers only that), always after STARTTLS.
	Username string
	Password secret.Secret
	// RootCAs verifies the server's certificate; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// ServerName is the name the certificate must hold; empty means the
	// host of Addr.
	ServerName string
	// Timeout bounds the whole session; 0 means DefaultMailTimeout.
	Timeout time.Duration
	// HelloName is the EHLO name; empty means "localhost".
	HelloName string
}

// Mailer sends e-mail through one SMTP server with mandatory STARTTLS. It
// is safe for concurrent use: every Send is its own session.
type Mailer struct {
	cfg        MailConfig
	from       *mail.Address
	serverName string
	now        func() time.Time
}

// NewMailer validates cfg and returns a Mailer. Errors name the field and
// are permanent.
func NewMailer(cfg MailConfig) (*Mailer, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		return nil, Permanent(fmt.Errorf("mail Addr %q: want host:port, such as smtp.example.org:587", cfg.Addr))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, Permanent(fmt.Errorf("mail Addr %q: port must be a number from 1 to 65535", cfg.Addr))
	}
	from, err := parseAddress(cfg.From)
	if err != nil {
		return nil, Permanent(fmt.Errorf("mail From: %w", err))
	}
	if cfg.Username == "" && !cfg.Password.IsZero() {
		return nil, Permanent(errors.New("mail Password is set but Username is empty"))
	}
	if cfg.Username != "" && cfg.Password.IsZero() {
		return nil, Permanent(errors.New("mail Username is set but Password is empty"))
	}
	if strings.ContainsAny(cfg.Username, "\x00\r\n") || strings.ContainsAny(cfg.Password.Reveal(), "\x00\r\n") {
		return nil, Permanent(errors.New("mail Username and Password must not hold NUL, CR or LF"))
	}
	if cfg.Timeout < 0 {
		return nil, Permanent(fmt.Errorf("mail Timeout %v: must not be negative", cfg.Timeout))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultMailTimeout
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if strings.ContainsAny(cfg.HelloName, " \t\r\n") {
		return nil, Permanent(fmt.Errorf("mail HelloName %q: must be one word", cfg.HelloName))
	}
	serverName := cfg.ServerName
	if serverName == "" {
		serverName = host
	}
	if strings.ContainsAny(serverName, " \t\r\n") {
		return nil, Permanent(fmt.Errorf("mail ServerName %q: must be a host name", serverName))
	}
	return &Mailer{cfg: cfg, from: from, serverName: serverName, now: time.Now}, nil
}

// Send delivers one message to the recipients in to (each "a@b" or
// "Name <a@b>") in one SMTP session: one attempt, the caller retries.
// messageID makes the Message-ID header, <messageID@sonde> (or
// <messageID> when it holds an "@"), so a resend carries the same id and
// receivers can drop the duplicate; empty means a random one.
//
// The error is permanent (IsPermanent) when retrying cannot help: invalid
// input, no STARTTLS, a certificate that does not verify, a 5xx reply. When
// the server rejects some recipients with 5xx and accepts others, the
// message goes to the others and Send returns a permanent error naming the
// rejected ones. A 4xx reply, a network failure or a timeout gives an
// ordinary error.
func (m *Mailer) Send(ctx context.Context, to []string, subject, text string, messageID string) error {
	rcpts, msg, err := m.compose(to, subject, text, messageID)
	if err != nil {
		return Permanent(fmt.Errorf("composing mail: %w", err))
	}
	if err := m.send(ctx, rcpts, msg); err != nil {
		return m.redact(fmt.Errorf("sending mail via %s: %w", m.cfg.Addr, err))
	}
	return nil
}

// compose checks the input and builds the message. Every header value is
// checked for CR and LF, so nothing the caller passes can add a header.
func (m *Mailer) compose(to []string, subject, text, messageID string) ([]string, []byte, error) {
	if len(to) == 0 {
		return nil, nil, errors.New("no recipient")
	}
	var rcpts, toHeader []string
	for _, t := range to {
		a, err := parseAddress(t)
		if err != nil {
			return nil, nil, fmt.Errorf("recipient: %w", err)
		}
		rcpts = append(rcpts, a.Address)
		toHeader = append(toHeader, a.String())
	}
	if strings.ContainsAny(subject, "\r\n") {
		return nil, nil, errors.New("subject must not hold CR or LF")
	}
	if !utf8.ValidString(subject) {
		return nil, nil, errors.New("subject is not valid UTF-8")
	}
	msgID, err := formatMessageID(messageID)
	if err != nil {
		return nil, nil, err
	}

	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(foldHeader(name + ": " + value))
		b.WriteString("\r\n")
	}
	header("From", m.from.String())
	header("To", strings.Join(toHeader, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", m.now().Format(time.RFC1123Z))
	header("Message-ID", msgID)
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ToValidUTF8(text, "\uFFFD"))); err != nil {
		return nil, nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return rcpts, b.Bytes(), nil
}

// send runs the SMTP session, bounded by the timeout and ctx: the
// connection's deadline is the session's, and the connection is closed as
// soon as ctx ends.
func (m *Mailer) send(ctx context.Context, rcpts []string, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	defer func() {
		// An error after ctx ended is most often "use of closed network
		// connection": say why. The connection's deadline is ctx's, and
		// may fire a moment before ctx notices.
		if err == nil || IsPermanent(err) {
			return
		}
		cause := ctx.Err()
		if cause == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			cause = context.DeadlineExceeded
		}
		if cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
	}()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			conn.Close()
			return err
		}
	}
	c, err := smtp.NewClient(conn, m.serverName)
	if err != nil {
		conn.Close()
		return classify("reading the greeting", err)
	}
	defer c.Close()

	if err := c.Hello(m.cfg.HelloName); err != nil {
		return classify("EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return Permanent(ErrNoSTARTTLS)
	}
	tlsCfg := &tls.Config{
		ServerName: m.serverName,
		RootCAs:    m.cfg.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
	if err := c.StartTLS(tlsCfg); err != nil {
		if isVerifyError(err) {
			return Permanent(fmt.Errorf("STARTTLS: verifying the server's certificate for %q: %w", m.serverName, err))
		}
		return classify("STARTTLS", err)
	}
	if m.cfg.Username != "" {
		if err := c.Auth(m.auth(c)); err != nil {
			return classify("authenticating as "+m.cfg.Username, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return classify("MAIL FROM", err)
	}
	var rejected []string
	var rejectedErr error
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			var te *textproto.Error
			if errors.As(err, &te) && te.Code >= 500 {
				rejected = append(rejected, r)
				rejectedErr = errors.Join(rejectedErr, fmt.Errorf("RCPT TO %s: %w", r, err))
				continue
			}
			// A 4xx (or a broken session) for any recipient: give up
			// on the whole message, so a retry sends it once to all.
			return classify("RCPT TO "+r, err)
		}
	}
	if len(rejected) == len(rcpts) {
		return Permanent(rejectedErr)
	}
	w, err := c.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify("writing the message", err)
	}
	if err := w.Close(); err != nil {
		return classify("ending the message", err)
	}
	// The message is accepted: a failing QUIT changes nothing.
	_ = c.Quit()
	if rejectedErr != nil {
		return Permanent(fmt.Errorf("sent to all but %d rejected recipients: %w", len(rejected), rejectedErr))
	}
	return nil
}

// auth picks AUTH PLAIN, or LOGIN when the server offers only that.
func (m *Mailer) auth(c *smtp.Client) smtp.Auth {
	_, mechs := c.Extension("AUTH")
	for _, mech := range strings.Fields(strings.ToUpper(mechs)) {
		if mech == "PLAIN" {
			return &plainAuth{user: m.cfg.Username, pass: m.cfg.Password}
		}
	}
	for _, mech := range strings.Fields(strings.ToUpper(mechs)) {
		if mech == "LOGIN" {
			return &loginAuth{user: m.cfg.Username, pass: m.cfg.Password}
		}
	}
	// The server will refuse it, with a reply that says so.
	return &plainAuth{user: m.cfg.Username, pass: m.cfg.Password}
}

// redact removes the password from err's text, in case a server echoed
// it, keeping err permanent if it was.
func (m *Mailer) redact(err error) error {
	pw := m.cfg.Password.Reveal()
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	red := errors.New(strings.ReplaceAll(err.Error(), pw, secret.Redacted))
	if IsPermanent(err) {
		return Permanent(red)
	}
	return red
}

// errNoTLS stops an AUTH exchange on a connection without TLS; send never
// gets there, this is a second lock.
var errNoTLS = errors.New("refusing to send credentials without TLS")

// plainAuth is AUTH PLAIN (RFC 4616). net/smtp's PlainAuth also insists on
// the server name given to NewClient, which says nothing more here.
type plainAuth struct {
	user string
	pass secret.Secret
}

func (a *plainAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	if !s.TLS {
		return "", nil, errNoTLS
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass.Reveal()), nil
}

func (a *plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected challenge after AUTH PLAIN")
	}
	return nil, nil
}

// loginAuth is the AUTH LOGIN of older servers: the user name, then the
// password, each as the answer to a 334 challenge.
type loginAuth struct {
	user string
	pass secret.Secret
	step int
}

func (a *loginAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	if !s.TLS {
		return "", nil, errNoTLS
	}
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass.Reveal()), nil
	}
	return nil, errors.New("unexpected challenge after AUTH LOGIN")
}

// classify wraps err from step; 5xx replies are permanent.
func classify(step string, err error) error {
	err = fmt.Errorf("%s: %w", step, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return Permanent(err)
	}
	return err
}

func isVerifyError(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
	)
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// parseAddress parses one address, refusing CR and LF first: net/mail
// would take CRLF followed by a space as folding white space.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("address %q must not hold CR or LF", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", s, err)
	}
	return a, nil
}

// formatMessageID makes the Message-ID header value from the caller's id,
// which must be a dot-atom (RFC 5322 §3.6.4) on each side of the "@".
func formatMessageID(id string) (string, error) {
	if id == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		id = hex.EncodeToString(b)
	}
	if !strings.Contains(id, "@") {
		id += "@sonde"
	}
	left, right, _ := strings.Cut(id, "@")
	if !isDotAtom(left) || !isDotAtom(right) {
		return "", fmt.Errorf("message id %q: want letters, digits and !#$%%&'*+-/=?^_`{|}~ in dot-separated parts, with at most one @", id)
	}
	return "<" + id + ">", nil
}

func isDotAtom(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)) {
				return false
			}
		}
	}
	return true
}

// foldHeader breaks a header line at spaces so lines stay near 78
// characters (RFC 5322 §2.2.3); a word longer than that stays whole.
func foldHeader(line string) string {
	const limit = 78
	if len(line) <= limit {
		return line
	}
	var b strings.Builder
	n := 0
	for i, w := range strings.Split(line, " ") {
		if i > 0 {
			if n+1+len(w) > limit {
				b.WriteString("\r\n")
				n = 0
			}
			b.WriteString(" ")
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
