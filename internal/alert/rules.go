package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // rule schedules name time zones; the hub must not depend on the host's zoneinfo

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// The channels a rule sends to.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// The events a rule can select.
const (
	EventsAlerts        = "alerts"
	EventsNotifications = "notifications"
)

// MinSecretLength is the shortest webhook secret accepted: the HMAC key
// must not be guessable.
const MinSecretLength = 16

// Schedule says when a rule sends: on the given days, between From and To
// (local times "15:04" in Timezone; To before From spans midnight). Zero
// fields mean every day, all day, UTC.
type Schedule struct {
	Timezone string   `json:"timezone,omitempty"`
	Days     []string `json:"days,omitempty"`
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// schedule is a Schedule made ready to test times against.
type schedule struct {
	loc      *time.Location
	days     [7]bool
	from, to int // minutes since midnight; from == to means all day
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day like 08:30", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

func compileSchedule(raw string) (*schedule, error) {
	if raw == "" {
		return nil, nil
	}
	var s Schedule
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	out := &schedule{loc: time.UTC}
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			return nil, fmt.Errorf("schedule: time zone %q is unknown (use a name like Europe/Amsterdam)", s.Timezone)
		}
		out.loc = loc
	}
	if len(s.Days) == 0 {
		out.days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range s.Days {
		i := slices.Index(dayNames, strings.ToLower(d))
		if i < 0 {
			return nil, fmt.Errorf("schedule: day %q is not one of %s", d, strings.Join(dayNames, ", "))
		}
		out.days[i] = true
	}
	if (s.From == "") != (s.To == "") {
		return nil, errors.New("schedule: give both from and to, or neither")
	}
	if s.From != "" {
		var err error
		if out.from, err = parseClock(s.From); err != nil {
			return nil, fmt.Errorf("schedule: from: %w", err)
		}
		if out.to, err = parseClock(s.To); err != nil {
			return nil, fmt.Errorf("schedule: to: %w", err)
		}
	}
	return out, nil
}

// in reports whether t falls in the schedule. A window that spans
// midnight belongs to the day it starts on.
func (s *schedule) in(t time.Time) bool {
	if s == nil {
		return true
	}
	t = t.In(s.loc)
	day := int(t.Weekday())
	m := t.Hour()*60 + t.Minute()
	switch {
	case s.from == s.to:
		return s.days[day]
	case s.from < s.to:
		return s.days[day] && m >= s.from && m < s.to
	case m >= s.from:
		return s.days[day]
	case m < s.to:
		return s.days[(day+6)%7]
	}
	return false
}

// rule is a stored rule made ready to match.
type rule struct {
	state.Rule
	sched *schedule
}

func compileRule(r state.Rule) (*rule, error) {
	s, err := compileSchedule(r.Schedule)
	if err != nil {
		return nil, err
	}
	return &rule{Rule: r, sched: s}, nil
}

// CheckMail says whether the hub can send an e-mail rule: an SMTP server
// is configured and every recipient is in the allowed domains (none
// given: any). Other channels pass.
func CheckMail(r *state.Rule, configured bool, domains []string) error {
	if r.Channel != ChannelEmail {
		return nil
	}
	if !configured {
		return errors.New("the hub has no SMTP server configured (sonde hub --smtp-addr); e-mail rules cannot be sent")
	}
	for _, to := range r.Recipients {
		if !MailDomainAllowed(to, domains) {
			return fmt.Errorf("to: the hub sends e-mail only to the domains %s (sonde hub --smtp-allowed-domains), not to %q",
				strings.Join(domains, ", "), to)
		}
	}
	return nil
}

// ValidateRule checks a rule as given through the API. allowHTTP permits
// http:// webhook URLs (tests and labs on loopback).
func ValidateRule(r *state.Rule, allowHTTP bool) error {
	if strings.TrimSpace(r.Name) == "" || len(r.Name) > 200 {
		return errors.New("name must be 1 to 200 characters")
	}
	switch r.Channel {
	case ChannelWebhook:
		if len(r.Recipients) > 0 {
			return errors.New("to is for the email channel; a webhook rule has a url")
		}
		u, err := url.Parse(r.URL)
		if err != nil || u.Host == "" || u.Opaque != "" {
			return errors.New("url must be an absolute https:// URL")
		}
		if u.User != nil {
			return errors.New("url must not hold a user name or password; the rule's secret signs every request")
		}
		if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
			return errors.New("url must use https:// (the hub allows http:// only with --allow-private-webhooks)")
		}
		if len(r.URL) > 2000 {
			return errors.New("url is longer than 2000 bytes")
		}
		if n := len(r.Secret.Reveal()); n < MinSecretLength || n > 256 {
			return fmt.Errorf("secret must be %d to 256 characters: receivers check every request's signature with it", MinSecretLength)
		}
	case ChannelEmail:
		if r.URL != "" || !r.Secret.IsZero() {
			return errors.New("url and secret are for the webhook channel; an email rule has to")
		}
		if len(r.Recipients) == 0 || len(r.Recipients) > 20 {
			return errors.New("to must list 1 to 20 e-mail addresses")
		}
		for _, to := range r.Recipients {
			a, err := mail.ParseAddress(to)
			if err != nil || a.Name != "" || strings.ContainsAny(to, "\r\n") {
				return fmt.Errorf("to: %q is not a plain e-mail address like ops@example.com", to)
			}
		}
	default:
		return fmt.Errorf("channel %q is not one of webhook, email", r.Channel)
	}
	if r.MinSeverity < int(Emergency) || r.MinSeverity > int(Debug) {
		return errors.New("minSeverity must be an alert severity: " + strings.Join(severityNames[:], ", "))
	}
	if r.MinNotificationSeverity < int(model.SeverityHigh) || r.MinNotificationSeverity > int(model.SeverityLow) {
		return errors.New("minNotificationSeverity must be one of HIGH, MEDIUM, LOW")
	}
	for _, ev := range r.Events {
		if ev != EventsAlerts && ev != EventsNotifications {
			return fmt.Errorf("events: %q is not one of alerts, notifications", ev)
		}
	}
	if len(r.Labels) > maxLabels {
		return fmt.Errorf("labels: at most %d", maxLabels)
	}
	for _, l := range r.Labels {
		if err := ValidLabel(l); err != nil {
			return fmt.Errorf("labels: %w", err)
		}
	}
	if len(r.ConditionIDs) > 100 {
		return errors.New("conditions: at most 100")
	}
	_, err := compileSchedule(r.Schedule)
	return err
}

func (r *rule) wants(events string) bool {
	return len(r.Events) == 0 || slices.Contains(r.Events, events)
}

func (r *rule) matchAlert(a state.Alert, labels []string) bool {
	if r.Disabled || !r.wants(EventsAlerts) || a.Severity > r.MinSeverity {
		return false
	}
	if len(r.ConditionIDs) > 0 && !slices.Contains(r.ConditionIDs, a.ConditionID) {
		return false
	}
	return len(r.Labels) == 0 || anyIn(r.Labels, labels)
}

func (r *rule) matchNotification(n state.Notification, labels []string) bool {
	if r.Disabled || !r.wants(EventsNotifications) || n.Severity > r.MinNotificationSeverity {
		return false
	}
	// A rule about some conditions is about their alerts, unless it asks
	// for notifications by name.
	if len(r.ConditionIDs) > 0 && !slices.Contains(r.Events, EventsNotifications) {
		return false
	}
	if len(r.Labels) > 0 && (n.AssetID == nil || !anyIn(r.Labels, labels)) {
		return false
	}
	return true
}

// AlertView is an alert as the API and webhooks show it.
type AlertView struct {
	AlertID     int64      `json:"alertId"`
	ContainerID int64      `json:"containerId"`
	AssetID     int64      `json:"assetId"`
	Asset       string     `json:"asset,omitempty"`
	ConditionID int64      `json:"conditionId"`
	Condition   string     `json:"condition,omitempty"`
	Item        string     `json:"item"`
	Severity    string     `json:"severity"`
	Status      string     `json:"status"`
	Message     string     `json:"message"`
	AssignedTo  string     `json:"assignedTo"`
	OpenedAt    time.Time  `json:"openedAt"`
	ClosedAt    *time.Time `json:"closedAt"`
	CloseReason string     `json:"closeReason,omitempty"`
}

// ViewAlert converts a stored alert.
func ViewAlert(a state.Alert) AlertView {
	return AlertView{
		AlertID: a.ID, ContainerID: a.ContainerID, AssetID: a.AssetID, ConditionID: a.ConditionID, Item: a.Item,
		Severity: Severity(a.Severity).String(), Status: a.Status, Message: a.Message, AssignedTo: a.AssignedTo,
		OpenedAt: a.OpenedAt, ClosedAt: a.ClosedAt, CloseReason: a.CloseReason,
	}
}

// NotificationView is a monitoring-health notification as the API and
// webhooks show it.
type NotificationView struct {
	NotificationID int64      `json:"notificationId"`
	ContainerID    int64      `json:"containerId"`
	AssetID        *int64     `json:"assetId"`
	ApplianceID    *int64     `json:"applianceId"`
	Kind           string     `json:"kind"`
	Subject        string     `json:"subject"`
	Severity       string     `json:"severity"`
	Status         string     `json:"status"`
	Message        string     `json:"message"`
	OpenedAt       time.Time  `json:"openedAt"`
	ClosedAt       *time.Time `json:"closedAt"`
}

// ViewNotification converts a stored notification.
func ViewNotification(n state.Notification) NotificationView {
	return NotificationView{
		NotificationID: n.ID, ContainerID: n.ContainerID, AssetID: n.AssetID, ApplianceID: n.ApplianceID, Kind: n.Kind,
		Subject: n.Subject, Severity: notificationSeverity(n.Severity), Status: n.Status, Message: n.Message,
		OpenedAt: n.OpenedAt, ClosedAt: n.ClosedAt,
	}
}

// Event is the body of a webhook (docs/NOTIFICATIONS.md).
type Event struct {
	Event        string            `json:"event"`
	DeliveryID   string            `json:"deliveryId"`
	Alert        *AlertView        `json:"alert,omitempty"`
	Notification *NotificationView `json:"notification,omitempty"`
}

// queue adds the delivery of one event to every rule given; skip, when not
// empty, records it as skipped for that reason instead. chain is the
// event's container and its ancestors, nearest first.
//
// An opening is subject to the rule's schedule (outside it, it is
// recorded as skipped) and to its rate for the event's tenant (the top
// container below the root; beyond it, it is dropped). A closing is queued
// exactly when the rule queued the opening to be sent: a receiver hears of
// the end of what it heard of, and of nothing else.
func queue(tx *state.Tx, lim *ruleLimiter, rules []*rule, ev Event, eventKey string, chain []int64, skip string, now time.Time) error {
	closing := strings.Contains(eventKey, ".close:")
	for _, r := range rules {
		d := state.Delivery{
			RuleID: r.ID, ContainerID: tenantOf(chain, r.ContainerID), EventKey: eventKey, Event: ev.Event,
			Status: "pending", NextAttemptAt: now, CreatedAt: now,
		}
		switch {
		case closing:
			opened, err := tx.HasDelivery(r.ID, strings.Replace(eventKey, ".close:", ".open:", 1))
			if err != nil {
				return err
			}
			if !opened {
				continue
			}
			// Sent whatever the schedule or maintenance: it ends
			// something the receiver was told of.
		case skip != "":
			d.Status, d.LastError = "skipped", skip
		case !r.sched.in(now):
			d.Status, d.LastError = "skipped", "outside the rule's schedule"
		case !lim.allow(limitKey{r.ID, tenantOf(chain, 0)}, now):
			continue // counted and logged by the limiter
		}
		ev.DeliveryID = DeliveryID(r.ID, eventKey)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf) // escapes <, > and &: receivers may show the body as HTML
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("encoding a notification: %w", err)
		}
		d.Payload = bytes.TrimSpace(buf.Bytes())
		if err := tx.AddDelivery(d); err != nil {
			return err
		}
	}
	return nil
}

// tenantOf is the tenant of a container on chain (the container and its
// ancestors, nearest first): the top container below the root, or the
// root for the root itself. container 0 means the chain's first.
func tenantOf(chain []int64, container int64) int64 {
	if len(chain) == 0 {
		return container
	}
	root := chain[len(chain)-1]
	if container == root || len(chain) == 1 {
		return root
	}
	if container != 0 && !slices.Contains(chain, container) {
		return container
	}
	return chain[len(chain)-2]
}

func queueAlert(tx *state.Tx, lim *ruleLimiter, rules []*rule, chain []int64, labels []string, a state.Alert, asset, cond, event string, inMaint bool, now time.Time) error {
	// A closing goes to the rules that sent the opening (queue checks),
	// even if they would no longer match (labels or the rule changed).
	match := rules
	if !strings.HasSuffix(event, ".close") {
		match = nil
		for _, r := range rules {
			if r.matchAlert(a, labels) {
				match = append(match, r)
			}
		}
	}
	if len(match) == 0 {
		return nil
	}
	v := ViewAlert(a)
	v.Asset, v.Condition = asset, cond
	skip := ""
	if inMaint {
		skip = "in a maintenance window"
	}
	return queue(tx, lim, match, Event{Event: event, Alert: &v}, fmt.Sprintf("%s:%d", event, a.ID), chain, skip, now)
}

func queueNotification(tx *state.Tx, lim *ruleLimiter, rules []*rule, chain []int64, labels []string, n state.Notification, event string, inMaint bool, now time.Time) error {
	match := rules // a closing: see queueAlert
	if !strings.HasSuffix(event, ".close") {
		match = nil
		for _, r := range rules {
			if r.matchNotification(n, labels) {
				match = append(match, r)
			}
		}
	}
	if len(match) == 0 {
		return nil
	}
	v := ViewNotification(n)
	skip := ""
	if inMaint {
		skip = "in a maintenance window"
	}
	return queue(tx, lim, match, Event{Event: event, Notification: &v}, fmt.Sprintf("%s:%d", event, n.ID), chain, skip, now)
}

// Delivery rate limit of one rule: a burst, then a steady rate. An alert
// storm (a flapping condition on thousands of items) must not queue
// unbounded mail and webhook calls.
const (
	RuleBurst        = 60
	RulePerSecond    = 1.0
	maxLimitedRules  = 100_000
	limiterLogPeriod = time.Minute
)

// limitKey is what one bucket limits: a rule's events from one tenant, so
// that one tenant's storm does not silence an ancestor's rule for the
// others.
type limitKey struct{ rule, tenant int64 }

// ruleLimiter is a token bucket per rule and tenant.
type ruleLimiter struct {
	mu      sync.Mutex
	buckets map[limitKey]*bucket
	log     *slog.Logger
	dropped prometheus.Counter
}

type bucket struct {
	tokens  float64
	last    time.Time
	dropped int
	logged  time.Time
}

func newRuleLimiter(log *slog.Logger, dropped prometheus.Counter) *ruleLimiter {
	return &ruleLimiter{buckets: map[limitKey]*bucket{}, log: log, dropped: dropped}
}

func (l *ruleLimiter) allow(k limitKey, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= maxLimitedRules {
			l.evictLocked(now)
		}
		b = &bucket{tokens: RuleBurst, last: now}
		l.buckets[k] = b
	}
	b.tokens = min(RuleBurst, b.tokens+now.Sub(b.last).Seconds()*RulePerSecond)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.dropped++
	l.dropped.Inc()
	if now.Sub(b.logged) >= limiterLogPeriod {
		l.log.Warn("a notification rule gets more events from one tenant than it may send; events are dropped",
			"rule_id", k.rule, "tenant_container_id", k.tenant, "dropped", b.dropped, "burst", RuleBurst, "per_second", RulePerSecond)
		b.logged, b.dropped = now, 0
	}
	return false
}

// evictLocked forgets the buckets that are full again: forgetting them
// changes nothing.
func (l *ruleLimiter) evictLocked(now time.Time) {
	refill := time.Duration(RuleBurst / RulePerSecond * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= refill {
			delete(l.buckets, k)
		}
	}
}

// MailDomainAllowed says whether e-mail may go to addr: any address when
// domains is empty, else one in a listed domain or below it.
func MailDomainAllowed(addr string, domains []string) bool {
	if len(domains) == 0 {
		return true
	}
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return false
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return false
	}
	domain := strings.ToLower(strings.TrimSuffix(a.Address[at+1:], "."))
	for _, d := range domains {
		d = strings.ToLower(strings.TrimPrefix(d, "."))
		if d != "" && (domain == d || strings.HasSuffix(domain, "."+d)) {
			return true
		}
	}
	return false
}
