package alert_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/alert/notify"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/testutil"
)

// TestOutboxEmail sends an alert's opening through an e-mail rule to
// Debian's aiosmtpd on loopback (STARTTLS), with an item name from a
// monitored system that tries to inject a mail header.
func TestOutboxEmail(t *testing.T) {
	smtpd := testutil.StartSMTPD(t, testutil.SMTPDOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root, _, err := st.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	asset, err := st.CreateAsset(ctx, root, "db-1")
	if err != nil {
		t.Fatal(err)
	}
	c := state.Condition{ContainerID: root, Name: "disk full", Kind: alert.KindExpression, Type: "disk",
		Expression: "item.used > 90", Severity: int(alert.Critical), Message: "{item} is {item.used}% full"}
	if err := alert.Validate(&c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateCondition(ctx, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := state.Rule{ContainerID: root, Name: "mail ops", Channel: alert.ChannelEmail, Recipients: []string{"ops@example.org"},
		MinSeverity: int(alert.Error), MinNotificationSeverity: int(model.SeverityLow)}
	if err := alert.ValidateRule(&r, false); err != nil {
		t.Fatal(err)
	}
	ruleID, err := st.CreateRule(ctx, r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := alert.New(alert.Config{State: st})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	mailer, err := notify.NewMailer(notify.MailConfig{Addr: smtpd.Addr, From: "sonde@example.org", RootCAs: smtpd.RootCAs, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ob := alert.NewOutbox(alert.OutboxConfig{State: st, Webhook: notify.NewWebhook(notify.WebhookConfig{}), Mailer: mailer, Wake: e.Wake()})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { ob.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	item := "/data\r\nBcc: victim@example.org"
	e.Observe(ctx, ingest.Target{ContainerID: root, AssetID: asset, AssetName: "db-1", Collector: "agent", Check: "disk"},
		&model.CheckData{HasResult: true, Timestamp: time.Now().Unix(), Types: []model.Type{{Name: "disk", Items: []model.Item{
			{Name: item, Metrics: []model.Metric{{Name: "used", Value: model.IntValue(97)}}},
		}}}})
	msgs, err := smtpd.WaitMessages(1, 15*time.Second)
	if err != nil {
		t.Fatalf("%v\naiosmtpd log:\n%s", err, smtpd.Log())
	}
	m := msgs[0]
	if !m.TLS || len(m.RcptTos) != 1 || m.RcptTos[0] != "ops@example.org" {
		t.Fatalf("envelope: tls=%v to=%v", m.TLS, m.RcptTos)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	if bcc := msg.Header.Get("Bcc"); bcc != "" {
		t.Fatalf("an item name injected a header: Bcc %q", bcc)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(subject, "[Sonde] CRITICAL alert opened: db-1: /data") || strings.ContainsAny(subject, "\r\n") {
		t.Errorf("subject %q", subject)
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, want := range []string{"Condition:", "disk full", "Severity:", "CRITICAL", "97% full"} {
		if !strings.Contains(strings.ReplaceAll(text, "=\r\n", ""), want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(msg.Header.Get("Message-Id"), "alert.open") {
		t.Errorf("Message-ID %q does not name the delivery", msg.Header.Get("Message-Id"))
	}
	// The delivery log says delivered.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, err := st.Deliveries(ctx, ruleID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOutboxFairness: one tenant's receivers that never answer must not
// hold up another tenant's notifications. Tenant A has more hanging
// webhook rules than the outbox has workers; tenant B's delivery arrives
// while all of A's requests still hang.
func TestOutboxFairness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	release := make(chan struct{})
	var hung atomic.Int32
	tarpit := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer tarpit.Close()
	got := make(chan string, 10)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Sonde-Delivery")
	}))
	defer good.Close()

	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root, _, _ := st.EnsureRoot(ctx, "root")
	a, _ := st.CreateContainer(ctx, root, "a")
	b, _ := st.CreateContainer(ctx, root, "b")
	c := state.Condition{ContainerID: root, Name: "hot", Kind: alert.KindExpression, Type: "cpu", Expression: "item.usage > 90", Severity: int(alert.Critical)}
	if err := alert.Validate(&c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateCondition(ctx, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A's rules sit in sub-containers of A, each with an asset: fairness
	// is per tenant (A), not per container.
	const workers = 4
	var subs []int64
	for i := range 3 * workers {
		sub, err := st.CreateContainer(ctx, a, fmt.Sprint("a-sub", i))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
		r := state.Rule{ContainerID: sub, Name: fmt.Sprint("tarpit ", i), Channel: alert.ChannelWebhook, URL: tarpit.URL,
			Secret: secret.New("0123456789abcdef-a"), MinSeverity: int(alert.Debug)}
		if _, err := st.CreateRule(ctx, r, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateRule(ctx, state.Rule{ContainerID: b, Name: "b", Channel: alert.ChannelWebhook, URL: good.URL,
		Secret: secret.New("0123456789abcdef-b"), MinSeverity: int(alert.Debug)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	e := alert.New(alert.Config{State: st})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	hot := func(container int64, name string) {
		asset, err := st.CreateAsset(ctx, container, name)
		if err != nil {
			t.Fatal(err)
		}
		e.Observe(ctx, ingest.Target{ContainerID: container, AssetID: asset, AssetName: name, Collector: "x", Check: "y"},
			&model.CheckData{HasResult: true, Timestamp: time.Now().Unix(), Types: []model.Type{{Name: "cpu", Items: []model.Item{
				{Name: "cpu0", Metrics: []model.Metric{{Name: "usage", Value: model.IntValue(99)}}},
			}}}})
	}
	for i, sub := range subs { // first: A's deliveries are the oldest
		hot(sub, fmt.Sprint("a", i))
	}
	hot(b, "b1")
	ob := alert.NewOutbox(alert.OutboxConfig{State: st, Wake: e.Wake(), Workers: workers,
		Webhook: notify.NewWebhook(notify.WebhookConfig{AllowPrivate: true, Timeout: 50 * time.Second})})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { ob.Run(runCtx); close(done) }()
	// The outbox finishes the attempts under way when it stops: let the
	// tarpit answer first.
	defer func() { close(release); stop(); <-done }()
	select {
	case id := <-got:
		if !strings.Contains(id, "alert.open") {
			t.Errorf("delivery id %q", id)
		}
		if n := hung.Load(); n > workers {
			t.Errorf("%d of A's requests hang: more than the %d workers", n, workers)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("tenant B's notification did not arrive while tenant A's %d receivers hang (%d requests hanging)", 3*workers, hung.Load())
	}
}
