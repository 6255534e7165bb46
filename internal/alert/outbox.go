package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sonde-monitoring/sonde/internal/alert/notify"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	State  *state.Store
	Logger *slog.Logger
	Now    func() time.Time
	// Webhook sends webhook deliveries.
	Webhook *notify.Webhook
	// Mailer sends e-mail deliveries; nil when the hub has no SMTP server
	// configured (e-mail rules are refused then).
	Mailer *notify.Mailer
	// MailDomains, when not empty, are the only recipient domains: also
	// checked at sending, for rules made before the list was set.
	MailDomains []string
	// Wake says that deliveries were queued (Engine.Wake).
	Wake <-chan struct{}
	// Workers bounds the rules sent to at once; 0 means 8.
	Workers int
	// RetryFor is how long a delivery is retried; 0 means 24 h.
	RetryFor time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts; 0 means
	// 30 s and 1 h.
	MinBackoff, MaxBackoff time.Duration
	Registerer             prometheus.Registerer
	// Fence, if set, is asked before each attempt whether this hub still
	// holds the outbox's lease (several hubs on one state store, one of
	// which sends); an error stops the rule's sending at once.
	Fence func(context.Context) error
}

// Outbox sends queued deliveries, one rule at a time per worker, retrying
// with exponential backoff; it never holds up ingest. A delivery is marked
// delivered only after the receiver accepted it, so a crash in between
// sends it again: receivers deduplicate on the delivery id.
type Outbox struct {
	cfg      OutboxConfig
	log      *slog.Logger
	attempts *prometheus.CounterVec

	mu       sync.Mutex
	inflight map[int64]bool // rules being sent to
	busy     map[int64]int  // rules being sent to, by tenant
	done     chan struct{}  // a worker finished
}

// NewOutbox returns an outbox; Run sends.
func NewOutbox(cfg OutboxConfig) *Outbox {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 24 * time.Hour
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Hour
	}
	o := &Outbox{
		cfg: cfg, log: cfg.Logger,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sonde_hub_notification_attempts_total",
			Help: "Attempts to deliver a notification, by channel and outcome (delivered, retry, failed).",
		}, []string{"channel", "outcome"}),
		inflight: map[int64]bool{},
		busy:     map[int64]int{},
		done:     make(chan struct{}, 1),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(o.attempts)
	}
	return o
}

// Run sends deliveries until ctx ends, then waits for the attempts under
// way.
func (o *Outbox) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := o.pass(ctx, &wg)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-o.cfg.Wake:
		case <-o.done:
		case <-timer.C:
		}
	}
}

// Outbox scheduling limits.
const (
	// perContainer bounds the rules of one tenant sent to at once, so
	// that one tenant's slow receivers leave workers for the others.
	perContainer = 2
	// batchPerRule is how many due deliveries a worker takes at once.
	batchPerRule = 50
)

// pass starts a worker for rules with due deliveries, taking rules
// round-robin across tenants (the top containers below the root) and at
// most perContainer per tenant, and says how long to wait before the next
// pass.
func (o *Outbox) pass(ctx context.Context, wg *sync.WaitGroup) time.Duration {
	const idle = 5 * time.Second
	now := o.cfg.Now()
	due, err := o.cfg.State.DueRules(ctx, now, 2*perContainer, 1000)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("reading queued notifications failed; retrying", "err", err)
		}
		return idle
	}
	o.mu.Lock()
	// Round-robin over containers, in the order their rules became due.
	byContainer := map[int64][]int64{}
	var containers []int64
	for _, d := range due {
		if o.inflight[d.RuleID] {
			continue
		}
		if byContainer[d.ContainerID] == nil {
			containers = append(containers, d.ContainerID)
		}
		byContainer[d.ContainerID] = append(byContainer[d.ContainerID], d.RuleID)
	}
	for round := 0; len(o.inflight) < o.cfg.Workers; round++ {
		started := false
		for _, c := range containers {
			rules := byContainer[c]
			if round >= len(rules) || o.busy[c] >= perContainer || len(o.inflight) >= o.cfg.Workers {
				continue
			}
			rule := rules[round]
			o.inflight[rule] = true
			o.busy[c]++
			started = true
			wg.Add(1)
			go func(rule, container int64) {
				defer wg.Done()
				o.sendRule(ctx, rule)
				o.mu.Lock()
				delete(o.inflight, rule)
				o.busy[container]--
				if o.busy[container] <= 0 {
					delete(o.busy, container)
				}
				o.mu.Unlock()
				select {
				case o.done <- struct{}{}:
				default:
				}
			}(rule, c)
		}
		if !started {
			break
		}
	}
	o.mu.Unlock()
	next, ok, err := o.cfg.State.NextDelivery(ctx)
	if err != nil || !ok {
		return idle
	}
	if d := next.Sub(o.cfg.Now()); d < idle {
		return max(d, 100*time.Millisecond)
	}
	return idle
}

// sendRule attempts a rule's due deliveries in order. After a failure the
// others wait for the same retry time: the receiver is likely down, and
// each attempt could take the whole timeout.
func (o *Outbox) sendRule(ctx context.Context, ruleID int64) {
	r, err := o.cfg.State.Rule(ctx, ruleID)
	if err != nil {
		if !errors.Is(err, state.ErrNotFound) && ctx.Err() == nil {
			o.log.Error("reading a notification rule failed", "rule_id", ruleID, "err", err)
		}
		return
	}
	ds, err := o.cfg.State.DueDeliveriesOfRule(ctx, ruleID, o.cfg.Now(), batchPerRule)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("reading queued notifications failed", "rule_id", ruleID, "err", err)
		}
		return
	}
	var retryAt time.Time
	start := time.Now()
	for _, d := range ds {
		// A slow receiver that answers holds one worker for at most a
		// minute at a time.
		if ctx.Err() != nil || time.Since(start) > time.Minute {
			break // still defer below when the receiver failed
		}
		prev := d.Attempts
		if r.Disabled {
			d.Status, d.LastError = "skipped", "the rule was disabled"
			o.record(ctx, d, prev)
			continue
		}
		if !retryAt.IsZero() {
			d.NextAttemptAt = retryAt
			o.record(ctx, d, prev)
			continue
		}
		if o.cfg.Fence != nil {
			if err := o.cfg.Fence(ctx); err != nil {
				if ctx.Err() == nil {
					o.log.Warn("not sending: this hub no longer sends the notifications", "rule_id", r.ID, "err", err)
				}
				break
			}
		}
		// An attempt under way finishes (within the channel's timeout)
		// even when the hub stops, and its outcome is recorded: a
		// delivery the receiver accepted is not sent again after a
		// restart.
		d = o.attempt(context.WithoutCancel(ctx), r, d)
		if d.Status == "pending" {
			retryAt = d.NextAttemptAt
		}
		o.record(ctx, d, prev)
	}
	if !retryAt.IsZero() {
		// The receiver fails: the rule's other deliveries, and those
		// queued meanwhile, wait for the same time.
		if err := o.cfg.State.DeferRule(context.WithoutCancel(ctx), ruleID, retryAt); err != nil {
			o.log.Error("deferring a rule's notifications failed", "rule_id", ruleID, "err", err)
		}
	}
}

func (o *Outbox) record(ctx context.Context, d state.Delivery, prevAttempts int) {
	ok, err := o.cfg.State.UpdateDelivery(context.WithoutCancel(ctx), d, prevAttempts)
	switch {
	case err != nil:
		o.log.Error("recording a notification attempt failed", "delivery_id", d.ID, "err", err)
	case !ok:
		o.log.Warn("a notification was attempted by two workers; the first record stands", "delivery_id", d.ID)
	}
}

// backoff is the wait after the n-th failed attempt: MinBackoff doubled
// each time, at most MaxBackoff.
func (o *Outbox) backoff(n int) time.Duration {
	d := o.cfg.MinBackoff
	for i := 1; i < n && d < o.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.cfg.MaxBackoff)
}

// attempt sends one delivery and returns it updated.
func (o *Outbox) attempt(ctx context.Context, r state.Rule, d state.Delivery) state.Delivery {
	d.Attempts++
	var err error
	switch r.Channel {
	case ChannelWebhook:
		var resp notify.Response
		resp, err = o.cfg.Webhook.Send(ctx, r.URL, r.Secret, DeliveryID(r.ID, d.EventKey), d.Payload)
		d.LastStatus = resp.Status
	case ChannelEmail:
		if o.cfg.Mailer == nil {
			err = notify.Permanent(errors.New("the hub has no SMTP server configured (sonde hub --smtp-addr)"))
			break
		}
		for _, to := range r.Recipients {
			if !MailDomainAllowed(to, o.cfg.MailDomains) {
				err = notify.Permanent(fmt.Errorf("the hub sends e-mail only to %s (--smtp-allowed-domains), not to %s",
					strings.Join(o.cfg.MailDomains, ", "), to))
			}
		}
		if err != nil {
			break
		}
		subject, text, rerr := renderEmail(d.Payload)
		if rerr != nil {
			err = notify.Permanent(rerr)
			break
		}
		msgID := strings.NewReplacer(":", ".", "_", "-").Replace(DeliveryID(r.ID, d.EventKey))
		err = o.cfg.Mailer.Send(ctx, r.Recipients, subject, text, "sonde."+msgID)
	default:
		err = notify.Permanent(fmt.Errorf("unknown channel %q", r.Channel))
	}
	now := o.cfg.Now()
	if err == nil {
		d.Status, d.LastError, d.DeliveredAt = "delivered", "", &now
		o.attempts.WithLabelValues(r.Channel, "delivered").Inc()
		return d
	}
	d.LastError = truncate(err.Error(), 500)
	if notify.IsPermanent(err) || now.Sub(d.CreatedAt) >= o.cfg.RetryFor {
		d.Status = "failed"
		o.attempts.WithLabelValues(r.Channel, "failed").Inc()
		o.log.Warn("a notification could not be delivered; giving up", "rule_id", r.ID, "delivery_id", d.ID, "attempts", d.Attempts, "err", err)
		return d
	}
	d.NextAttemptAt = now.Add(o.backoff(d.Attempts))
	o.attempts.WithLabelValues(r.Channel, "retry").Inc()
	o.log.Info("a notification attempt failed; retrying later", "rule_id", r.ID, "delivery_id", d.ID, "attempts", d.Attempts, "next", d.NextAttemptAt, "err", err)
	return d
}

// DeliveryID names a delivery for receivers to deduplicate on; it is the
// same in every attempt.
func DeliveryID(rule int64, eventKey string) string { return fmt.Sprintf("%d-%s", rule, eventKey) }

// renderEmail writes the subject and text of an e-mail from a delivery's
// payload.
func renderEmail(payload []byte) (subject, text string, err error) {
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return "", "", fmt.Errorf("reading a queued notification: %w", err)
	}
	var b strings.Builder
	line := func(k, v string) {
		if v == "" {
			return
		}
		// Values come from monitored systems: a multi-line one is
		// indented, so it cannot pass for a field of its own.
		v = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\r", "\n")
		v = strings.ReplaceAll(v, "\n", "\n"+strings.Repeat(" ", 14))
		fmt.Fprintf(&b, "%-13s %s\n", k+":", v)
	}
	switch {
	case ev.Alert != nil:
		a := ev.Alert
		verb := "opened"
		if a.Status == "closed" {
			verb = "closed"
		}
		subject = fmt.Sprintf("[Sonde] %s alert %s: %s: %s", a.Severity, verb, a.Asset, a.Message)
		fmt.Fprintf(&b, "An alert %s.\n\n", verb)
		line("Asset", fmt.Sprintf("%s (id %d)", a.Asset, a.AssetID))
		line("Condition", fmt.Sprintf("%s (id %d)", a.Condition, a.ConditionID))
		line("Item", a.Item)
		line("Severity", a.Severity)
		line("Message", a.Message)
		line("Opened", a.OpenedAt.Format(time.RFC1123Z))
		if a.ClosedAt != nil {
			line("Closed", a.ClosedAt.Format(time.RFC1123Z))
			line("Reason", a.CloseReason)
		}
		line("Alert", fmt.Sprintf("%d", a.AlertID))
	case ev.Notification != nil:
		n := ev.Notification
		verb := "opened"
		if n.Status == "closed" {
			verb = "closed"
		}
		subject = fmt.Sprintf("[Sonde] %s monitoring notification %s: %s", n.Severity, verb, n.Message)
		fmt.Fprintf(&b, "A monitoring-health notification %s: Sonde itself lacks data.\n\n", verb)
		line("Kind", n.Kind)
		line("Subject", n.Subject)
		line("Severity", n.Severity)
		line("Message", n.Message)
		line("Opened", n.OpenedAt.Format(time.RFC1123Z))
		if n.ClosedAt != nil {
			line("Closed", n.ClosedAt.Format(time.RFC1123Z))
		}
		line("Notification", fmt.Sprintf("%d", n.NotificationID))
	default:
		return "", "", errors.New("a queued notification holds neither an alert nor a notification")
	}
	fmt.Fprintf(&b, "\nDelivery %s\n", ev.DeliveryID)
	return oneLine(subject, 200), b.String(), nil
}

// oneLine makes s fit a mail header: control characters (a collector's
// multi-line error) become spaces, and it is cut to n bytes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return truncate(s, n)
}
