package state

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// Condition is an alert condition of a container (the alert package gives
// the fields their meaning).
type Condition struct {
	ID          int64
	ContainerID int64
	Name        string
	Kind        string
	Collector   string
	Check       string
	Type        string
	Expression  string
	Items       []string
	Labels      []string
	Severity    int
	Message     string
	Ticks       int
	ClearTicks  int
	Disabled    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const conditionColumns = `id, container_id, name, kind, collector, check_key, type_name, expression, items, labels,
severity, message, ticks, clear_ticks, disabled, created_at, updated_at`

func scanCondition(row interface{ Scan(...any) error }) (Condition, error) {
	var c Condition
	var items, labels string
	var disabled int
	var created, updated int64
	err := row.Scan(&c.ID, &c.ContainerID, &c.Name, &c.Kind, &c.Collector, &c.Check, &c.Type, &c.Expression,
		&items, &labels, &c.Severity, &c.Message, &c.Ticks, &c.ClearTicks, &disabled, &created, &updated)
	if err != nil {
		return c, err
	}
	if err := unmarshalList(items, &c.Items); err != nil {
		return c, err
	}
	if err := unmarshalList(labels, &c.Labels); err != nil {
		return c, err
	}
	c.Disabled = disabled != 0
	c.CreatedAt, c.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return c, nil
}

func marshalList[T any](v []T) string {
	if v == nil {
		return "[]"
	}
	b, _ := json.Marshal(v) // lists of strings or ints cannot fail
	return string(b)
}

func unmarshalList[T any](s string, dst *[]T) error {
	if s == "" {
		*dst = nil
		return nil
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return fmt.Errorf("decoding a stored list: %w", err)
	}
	return nil
}

// CreateCondition stores a new condition and returns its id.
func (s *Store) CreateCondition(ctx context.Context, c Condition, now time.Time) (int64, error) {
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO conditions (container_id, name, kind, collector, check_key, type_name,
expression, items, labels, severity, message, ticks, clear_ticks, disabled, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING id`,
		c.ContainerID, c.Name, c.Kind, c.Collector, c.Check, c.Type, c.Expression, marshalList(c.Items), marshalList(c.Labels),
		c.Severity, c.Message, c.Ticks, c.ClearTicks, boolInt(c.Disabled), now.Unix()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("creating condition %q: %w", c.Name, err)
	}
	return id, nil
}

// Condition reads a condition that is not deleted.
func (s *Store) Condition(ctx context.Context, id int64) (Condition, error) {
	c, err := scanCondition(s.r.QueryRowContext(ctx, `SELECT `+conditionColumns+` FROM conditions WHERE id = $1 AND deleted_at IS NULL`, id))
	if err != nil {
		return c, notFound(err, fmt.Sprintf("condition %d", id))
	}
	return c, nil
}

// UpdateCondition replaces a condition's fields (not its container).
func (s *Store) UpdateCondition(ctx context.Context, c Condition, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE conditions SET name = $1, kind = $2, collector = $3, check_key = $4, type_name = $5,
expression = $6, items = $7, labels = $8, severity = $9, message = $10, ticks = $11, clear_ticks = $12, disabled = $13, updated_at = $14
WHERE id = $15 AND deleted_at IS NULL`,
		c.Name, c.Kind, c.Collector, c.Check, c.Type, c.Expression, marshalList(c.Items), marshalList(c.Labels),
		c.Severity, c.Message, c.Ticks, c.ClearTicks, boolInt(c.Disabled), now.Unix(), c.ID)
	return affected(res, err, fmt.Sprintf("condition %d", c.ID))
}

// DeleteCondition marks a condition deleted; its alerts keep their history.
func (s *Store) DeleteCondition(ctx context.Context, id int64, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE conditions SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL`, now.Unix(), id)
	return affected(res, err, fmt.Sprintf("condition %d", id))
}

// Conditions lists the conditions defined on one container, or on every
// container when container is 0.
func (s *Store) Conditions(ctx context.Context, container int64) ([]Condition, error) {
	q := `SELECT ` + conditionColumns + ` FROM conditions WHERE deleted_at IS NULL AND ($1 = 0 OR container_id = $1) ORDER BY id`
	rows, err := s.r.QueryContext(ctx, q, container)
	if err != nil {
		return nil, fmt.Errorf("listing conditions: %w", err)
	}
	defer rows.Close()
	var out []Condition
	for rows.Next() {
		c, err := scanCondition(rows)
		if err != nil {
			return nil, fmt.Errorf("listing conditions: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("updating %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("updating %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// SetAssetLabels replaces the labels of an asset.
func (s *Store) SetAssetLabels(ctx context.Context, asset int64, labels []string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM asset_labels WHERE asset_id = $1`, asset); err != nil {
			return err
		}
		for _, l := range labels {
			if _, err := tx.ExecContext(ctx, `INSERT INTO asset_labels (asset_id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING`, asset, l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("setting the labels of asset %d: %w", asset, err)
	}
	return nil
}

// AssetLabels lists the labels of an asset, sorted.
func (s *Store) AssetLabels(ctx context.Context, asset int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT label FROM asset_labels WHERE asset_id = $1 ORDER BY label`, asset)
	if err != nil {
		return nil, fmt.Errorf("reading the labels of asset %d: %w", asset, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Alert is one alert: a condition holding for one item of one asset.
type Alert struct {
	ID          int64
	ContainerID int64
	AssetID     int64
	ConditionID int64
	Item        string
	Severity    int
	Status      string // "open" or "closed"
	Message     string
	AssignedTo  string
	OpenedAt    time.Time
	ClosedAt    *time.Time
	CloseReason string
}

const alertColumns = `id, container_id, asset_id, condition_id, item, severity, status, message, assigned_to, opened_at, closed_at, close_reason`

func scanAlert(row interface{ Scan(...any) error }) (Alert, error) {
	var a Alert
	var opened int64
	var closed sql.NullInt64
	err := row.Scan(&a.ID, &a.ContainerID, &a.AssetID, &a.ConditionID, &a.Item, &a.Severity, &a.Status, &a.Message,
		&a.AssignedTo, &opened, &closed, &a.CloseReason)
	a.OpenedAt = time.Unix(opened, 0).UTC()
	a.ClosedAt = timePtr(closed)
	return a, err
}

// Alert reads one alert.
func (s *Store) Alert(ctx context.Context, id int64) (Alert, error) {
	a, err := scanAlert(s.r.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, id))
	if err != nil {
		return a, notFound(err, fmt.Sprintf("alert %d", id))
	}
	return a, nil
}

// AlertFilter selects alerts. Containers (when AssetID is 0) or AssetID
// must be set; Status "" means both.
type AlertFilter struct {
	Containers []int64
	AssetID    int64
	Status     string
	// Limit bounds the answer (newest first); 0 means 1000.
	Limit int
}

// Alerts lists alerts, newest first.
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.AssetID != 0 {
		where = append(where, "asset_id = "+arg(f.AssetID))
	} else {
		if len(f.Containers) == 0 {
			return []Alert{}, nil
		}
		where = append(where, "container_id IN ("+inList(&args, f.Containers)+")")
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT ` + arg(f.Limit) // #nosec G202 -- the clauses are constant text with $N placeholders; every value is an argument
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing alerts: %w", err)
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("listing alerts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AlertEvent is one entry of an alert's history.
type AlertEvent struct {
	ID      int64
	AlertID int64
	At      time.Time
	Kind    string // open, assign, message, close
	Actor   string
	Text    string
}

// AlertEvents lists an alert's history, oldest first.
func (s *Store) AlertEvents(ctx context.Context, alert int64) ([]AlertEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, alert_id, at, kind, actor, text FROM alert_events WHERE alert_id = $1 ORDER BY id`, alert)
	if err != nil {
		return nil, fmt.Errorf("reading the history of alert %d: %w", alert, err)
	}
	defer rows.Close()
	out := []AlertEvent{}
	for rows.Next() {
		var e AlertEvent
		var at int64
		if err := rows.Scan(&e.ID, &e.AlertID, &at, &e.Kind, &e.Actor, &e.Text); err != nil {
			return nil, err
		}
		e.At = time.Unix(at, 0).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Notification is a monitoring-health notification: something wrong with
// the monitoring itself (a check silent, an appliance gone).
type Notification struct {
	ID          int64
	ContainerID int64
	AssetID     *int64
	ApplianceID *int64
	Kind        string
	// Subject names what the notification is about within its kind, e.g.
	// "12/agentcore/system"; one open notification per container, kind and
	// subject.
	Subject  string
	Severity int
	Status   string
	Message  string
	OpenedAt time.Time
	ClosedAt *time.Time
}

const notificationColumns = `id, container_id, asset_id, appliance_id, kind, subject, severity, status, message, opened_at, closed_at`

func scanNotification(row interface{ Scan(...any) error }) (Notification, error) {
	var n Notification
	var asset, appliance, closed sql.NullInt64
	var opened int64
	err := row.Scan(&n.ID, &n.ContainerID, &asset, &appliance, &n.Kind, &n.Subject, &n.Severity, &n.Status, &n.Message, &opened, &closed)
	n.AssetID, n.ApplianceID = ptrInt(asset), ptrInt(appliance)
	n.OpenedAt, n.ClosedAt = time.Unix(opened, 0).UTC(), timePtr(closed)
	return n, err
}

// NotificationFilter selects notifications; Status "" means both.
type NotificationFilter struct {
	Containers []int64
	Status     string
	Limit      int
}

// Notifications lists notifications, newest first. Containers nil means
// every container (the engine loading its open notifications).
func (s *Store) Notifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where = append(where, "1 = 1")
	if f.Containers != nil {
		if len(f.Containers) == 0 {
			return []Notification{}, nil
		}
		where = append(where, "container_id IN ("+inList(&args, f.Containers)+")")
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	q := `SELECT ` + notificationColumns + ` FROM notifications WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT ` + arg(f.Limit) // #nosec G202 -- the clauses are constant text with $N placeholders; every value is an argument
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing notifications: %w", err)
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("listing notifications: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Maintenance is a window during which new alerts and notifications of a
// container (and everything below it) or of one asset are suppressed.
type Maintenance struct {
	ID          int64
	ContainerID int64
	AssetID     *int64
	StartsAt    time.Time
	EndsAt      time.Time
	Reason      string
	CreatedAt   time.Time
}

const maintenanceColumns = `id, container_id, asset_id, starts_at, ends_at, reason, created_at`

func scanMaintenance(row interface{ Scan(...any) error }) (Maintenance, error) {
	var m Maintenance
	var asset sql.NullInt64
	var starts, ends, created int64
	err := row.Scan(&m.ID, &m.ContainerID, &asset, &starts, &ends, &m.Reason, &created)
	m.AssetID = ptrInt(asset)
	m.StartsAt, m.EndsAt, m.CreatedAt = time.Unix(starts, 0).UTC(), time.Unix(ends, 0).UTC(), time.Unix(created, 0).UTC()
	return m, err
}

// CreateMaintenance stores a maintenance window.
func (s *Store) CreateMaintenance(ctx context.Context, m Maintenance) (int64, error) {
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO maintenance (container_id, asset_id, starts_at, ends_at, reason, created_at)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		m.ContainerID, nullInt(m.AssetID), m.StartsAt.Unix(), m.EndsAt.Unix(), m.Reason, m.CreatedAt.Unix()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("creating a maintenance window: %w", err)
	}
	return id, nil
}

// MaintenanceByID reads one maintenance window.
func (s *Store) MaintenanceByID(ctx context.Context, id int64) (Maintenance, error) {
	m, err := scanMaintenance(s.r.QueryRowContext(ctx, `SELECT `+maintenanceColumns+` FROM maintenance WHERE id = $1`, id))
	if err != nil {
		return m, notFound(err, fmt.Sprintf("maintenance window %d", id))
	}
	return m, nil
}

// DeleteMaintenance removes a maintenance window (ends it at once).
func (s *Store) DeleteMaintenance(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM maintenance WHERE id = $1`, id)
	return affected(res, err, fmt.Sprintf("maintenance window %d", id))
}

// MaintenanceWindows lists the windows that have not ended at now, of the
// given containers (and their assets), or of all containers when
// containers is nil.
func (s *Store) MaintenanceWindows(ctx context.Context, containers []int64, now time.Time) ([]Maintenance, error) {
	args := []any{now.Unix()}
	q := `SELECT ` + maintenanceColumns + ` FROM maintenance WHERE ends_at > $1`
	if containers != nil {
		if len(containers) == 0 {
			return []Maintenance{}, nil
		}
		q += ` AND container_id IN (` + inList(&args, containers) + `)`
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing maintenance windows: %w", err)
	}
	defer rows.Close()
	out := []Maintenance{}
	for rows.Next() {
		m, err := scanMaintenance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Rule is a notification rule: which alerts and notifications of a
// container's subtree go to which channel.
type Rule struct {
	ID                      int64
	ContainerID             int64
	Name                    string
	Channel                 string // webhook, email
	URL                     string
	Recipients              []string
	Secret                  secret.Secret
	MinSeverity             int
	MinNotificationSeverity int
	Events                  []string
	Labels                  []string
	ConditionIDs            []int64
	Schedule                string // JSON, "" for always
	Disabled                bool
	// SecretError says why a sealed secret did not open (the rule is then
	// read as disabled); "" when it did.
	SecretError string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const ruleColumns = `id, container_id, name, channel, url, recipients, secret, min_severity, min_notification_severity,
events, labels, condition_ids, schedule, disabled, created_at, updated_at`

func scanRule(sealer cipher.AEAD, row interface{ Scan(...any) error }) (Rule, error) {
	var r Rule
	var recipients, sec, events, labels, conds string
	var disabled int
	var created, updated int64
	err := row.Scan(&r.ID, &r.ContainerID, &r.Name, &r.Channel, &r.URL, &recipients, &sec, &r.MinSeverity,
		&r.MinNotificationSeverity, &events, &labels, &conds, &r.Schedule, &disabled, &created, &updated)
	if err != nil {
		return r, err
	}
	r.Disabled = disabled != 0
	var openErr error
	if r.Secret, openErr = openSecret(sealer, sec, aadRuleSecret); openErr != nil {
		// One rule whose secret does not open must not stop the others:
		// it is read as disabled, and says why.
		r.Disabled, r.SecretError = true, openErr.Error()
	}
	err = errors.Join(unmarshalList(recipients, &r.Recipients), unmarshalList(events, &r.Events),
		unmarshalList(labels, &r.Labels), unmarshalList(conds, &r.ConditionIDs))
	r.CreatedAt, r.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return r, err
}

// CreateRule stores a notification rule.
func (s *Store) CreateRule(ctx context.Context, r Rule, now time.Time) (int64, error) {
	sealed, err := sealSecret(s.sealer, r.Secret, aadRuleSecret)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.w.QueryRowContext(ctx, `INSERT INTO rules (container_id, name, channel, url, recipients, secret, min_severity,
min_notification_severity, events, labels, condition_ids, schedule, disabled, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id`,
		r.ContainerID, r.Name, r.Channel, r.URL, marshalList(r.Recipients), sealed, r.MinSeverity,
		r.MinNotificationSeverity, marshalList(r.Events), marshalList(r.Labels), marshalList(r.ConditionIDs), r.Schedule,
		boolInt(r.Disabled), now.Unix()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("creating rule %q: %w", r.Name, err)
	}
	return id, nil
}

// UpdateRule replaces a rule's fields (not its container).
func (s *Store) UpdateRule(ctx context.Context, r Rule, now time.Time) error {
	sealed, err := sealSecret(s.sealer, r.Secret, aadRuleSecret)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE rules SET name = $1, channel = $2, url = $3, recipients = $4, secret = $5,
min_severity = $6, min_notification_severity = $7, events = $8, labels = $9, condition_ids = $10, schedule = $11,
disabled = $12, updated_at = $13 WHERE id = $14`,
		r.Name, r.Channel, r.URL, marshalList(r.Recipients), sealed, r.MinSeverity, r.MinNotificationSeverity,
		marshalList(r.Events), marshalList(r.Labels), marshalList(r.ConditionIDs), r.Schedule, boolInt(r.Disabled), now.Unix(), r.ID)
	return affected(res, err, fmt.Sprintf("rule %d", r.ID))
}

// Rule reads one rule.
func (s *Store) Rule(ctx context.Context, id int64) (Rule, error) {
	r, err := scanRule(s.sealer, s.r.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM rules WHERE id = $1`, id))
	if err != nil {
		return r, notFound(err, fmt.Sprintf("rule %d", id))
	}
	return r, nil
}

// DeleteRule removes a rule and its delivery log.
func (s *Store) DeleteRule(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM rules WHERE id = $1`, id)
	return affected(res, err, fmt.Sprintf("rule %d", id))
}

// Rules lists the rules of one container, or of all when container is 0.
func (s *Store) Rules(ctx context.Context, container int64) ([]Rule, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+ruleColumns+` FROM rules WHERE $1 = 0 OR container_id = $1 ORDER BY id`, container)
	if err != nil {
		return nil, fmt.Errorf("listing rules: %w", err)
	}
	defer rows.Close()
	out := []Rule{}
	for rows.Next() {
		r, err := scanRule(s.sealer, rows)
		if err != nil {
			return nil, fmt.Errorf("listing rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Delivery is one message of a rule about one event, and how sending it
// went.
type Delivery struct {
	ID            int64
	RuleID        int64
	ContainerID   int64
	EventKey      string
	Event         string
	Payload       []byte
	Status        string // pending, delivered, failed, skipped
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}

const deliveryColumns = `id, rule_id, container_id, event_key, event, payload, status, attempts, next_attempt_at,
last_status, last_error, created_at, delivered_at`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var payload string
	var next, created int64
	var delivered sql.NullInt64
	err := row.Scan(&d.ID, &d.RuleID, &d.ContainerID, &d.EventKey, &d.Event, &payload, &d.Status, &d.Attempts, &next,
		&d.LastStatus, &d.LastError, &created, &delivered)
	d.Payload = []byte(payload)
	d.NextAttemptAt, d.CreatedAt, d.DeliveredAt = time.Unix(next, 0).UTC(), time.Unix(created, 0).UTC(), timePtr(delivered)
	return d, err
}

// DueRule is a rule with deliveries due.
type DueRule struct {
	RuleID, ContainerID int64
}

// DueRules lists the rules with a delivery due at now, the longest
// waiting first, at most perTenant of each tenant (a delivery's container
// is its rule's tenant) and limit in all.
func (s *Store) DueRules(ctx context.Context, now time.Time, perTenant, limit int) ([]DueRule, error) {
	rows, err := s.r.QueryContext(ctx, `
SELECT rule_id, tenant FROM (
    SELECT rule_id, MIN(container_id) AS tenant, MIN(next_attempt_at) AS due, MIN(id) AS first,
           ROW_NUMBER() OVER (PARTITION BY MIN(container_id) ORDER BY MIN(next_attempt_at), MIN(id)) AS n
    FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= $1
    GROUP BY rule_id
) AS due_rules
WHERE n <= $2
ORDER BY due, first
LIMIT $3`, now.Unix(), perTenant, limit)
	if err != nil {
		return nil, fmt.Errorf("reading due deliveries: %w", err)
	}
	defer rows.Close()
	var out []DueRule
	for rows.Next() {
		var d DueRule
		if err := rows.Scan(&d.RuleID, &d.ContainerID); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DueDeliveriesOfRule lists one rule's deliveries due at now, oldest
// first.
func (s *Store) DueDeliveriesOfRule(ctx context.Context, rule int64, now time.Time, limit int) ([]Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries
WHERE rule_id = $1 AND status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3`, rule, now.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("reading the due deliveries of rule %d: %w", rule, err)
	}
	return collectDeliveries(rows)
}

// NextDelivery is when the earliest pending delivery is due; ok is false
// when none is pending.
func (s *Store) NextDelivery(ctx context.Context) (at time.Time, ok bool, err error) {
	var next sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("reading the next delivery: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(next.Int64, 0), true, nil
}

// Deliveries lists a rule's deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, rule int64, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE rule_id = $1 ORDER BY id DESC LIMIT $2`, rule, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the deliveries of rule %d: %w", rule, err)
	}
	return collectDeliveries(rows)
}

func collectDeliveries(rows *sql.Rows) ([]Delivery, error) {
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UpdateDelivery records the outcome of an attempt on a delivery that was
// pending after prevAttempts attempts; ok is false (and nothing changes)
// when it no longer is: another worker got to it first.
func (s *Store) UpdateDelivery(ctx context.Context, d Delivery, prevAttempts int) (ok bool, err error) {
	var delivered sql.NullInt64
	if d.DeliveredAt != nil {
		delivered = sql.NullInt64{Int64: d.DeliveredAt.Unix(), Valid: true}
	}
	// Round the next attempt up: stored in whole seconds, rounding down
	// would retry early.
	next := d.NextAttemptAt.Unix()
	if d.NextAttemptAt.Nanosecond() > 0 {
		next++
	}
	res, err := s.w.ExecContext(ctx, `UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_status = $4,
last_error = $5, delivered_at = $6 WHERE id = $7 AND status = 'pending' AND attempts = $8`,
		d.Status, d.Attempts, next, d.LastStatus, d.LastError, delivered, d.ID, prevAttempts)
	if err != nil {
		return false, fmt.Errorf("recording delivery %d: %w", d.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MissingCheck is a check whose results stopped arriving.
type MissingCheck struct {
	ContainerID int64
	AssetID     int64
	AssetName   string
	Collector   string
	Check       string
	// LastReceived is zero when no result ever arrived.
	LastReceived time.Time
	Interval     time.Duration
	// Configured is true for a check with a configured interval (an
	// appliance's probe), false for one whose interval was learnt (an
	// agent's).
	Configured bool
}

// MissingChecks lists the enabled checks with no result for factor ×
// their interval (configured, or learnt from their results) at now.
func (s *Store) MissingChecks(ctx context.Context, now time.Time, factor int) ([]MissingCheck, error) {
	rows, err := s.r.QueryContext(ctx, `
SELECT a.container_id, a.id, a.name, r.collector, r.check_key, r.received_at, COALESCE(k.interval_s, r.observed_interval_s),
       CASE WHEN k.interval_s IS NOT NULL THEN 1 ELSE 0 END
FROM check_results r
JOIN assets a ON a.id = r.asset_id
LEFT JOIN asset_checks k ON k.asset_id = r.asset_id AND k.collector = r.collector AND k.check_key = r.check_key
WHERE COALESCE(k.disabled, 0) = 0
  AND COALESCE(k.interval_s, r.observed_interval_s, 0) > 0
  AND r.received_at + $2 * COALESCE(k.interval_s, r.observed_interval_s) < $1
UNION ALL
SELECT a.container_id, a.id, a.name, k.collector, k.check_key, 0, k.interval_s, 1
FROM asset_checks k
JOIN assets a ON a.id = k.asset_id
JOIN asset_collectors c ON c.asset_id = k.asset_id AND c.collector = k.collector
LEFT JOIN check_results r ON r.asset_id = k.asset_id AND r.collector = k.collector AND r.check_key = k.check_key
WHERE r.asset_id IS NULL AND k.disabled = 0 AND k.interval_s > 0
  AND c.created_at + $2 * k.interval_s < $1
ORDER BY 2, 4, 5`, now.Unix(), factor)
	if err != nil {
		return nil, fmt.Errorf("looking for missing checks: %w", err)
	}
	defer rows.Close()
	var out []MissingCheck
	for rows.Next() {
		var m MissingCheck
		var last, interval, configured int64
		if err := rows.Scan(&m.ContainerID, &m.AssetID, &m.AssetName, &m.Collector, &m.Check, &last, &interval, &configured); err != nil {
			return nil, fmt.Errorf("looking for missing checks: %w", err)
		}
		if last > 0 {
			m.LastReceived = time.Unix(last, 0).UTC()
		}
		m.Interval = time.Duration(interval) * time.Second
		m.Configured = configured != 0
		out = append(out, m)
	}
	return out, rows.Err()
}

// Tx is a write transaction over alerts, notifications and deliveries: a
// change and the deliveries announcing it commit together.
type Tx struct {
	ctx context.Context
	tx  *sql.Tx
}

// InTx runs fn in one write transaction.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return fn(&Tx{ctx: ctx, tx: tx}) })
}

// OpenAlert inserts an open alert and its "open" event. ok is false, and
// id the existing alert's, when the same condition, asset and item already
// have an open alert.
func (t *Tx) OpenAlert(a Alert) (id int64, ok bool, err error) {
	err = t.tx.QueryRowContext(t.ctx, `INSERT INTO alerts (container_id, asset_id, condition_id, item, severity, status, message, opened_at)
VALUES ($1, $2, $3, $4, $5, 'open', $6, $7) ON CONFLICT DO NOTHING RETURNING id`,
		a.ContainerID, a.AssetID, a.ConditionID, a.Item, a.Severity, a.Message, a.OpenedAt.Unix()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = t.tx.QueryRowContext(t.ctx, `SELECT id FROM alerts WHERE condition_id = $1 AND asset_id = $2 AND item = $3 AND status = 'open'`,
			a.ConditionID, a.AssetID, a.Item).Scan(&id)
		if err != nil {
			return 0, false, fmt.Errorf("reading an open alert: %w", err)
		}
		return id, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("opening an alert: %w", err)
	}
	return id, true, t.AddAlertEvent(AlertEvent{AlertID: id, At: a.OpenedAt, Kind: "open", Text: a.Message})
}

// Alert reads an alert inside the transaction.
func (t *Tx) Alert(id int64) (Alert, error) {
	a, err := scanAlert(t.tx.QueryRowContext(t.ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, id))
	if err != nil {
		return a, notFound(err, fmt.Sprintf("alert %d", id))
	}
	return a, nil
}

// CloseAlert closes an open alert and records why. ok is false when it was
// not open.
func (t *Tx) CloseAlert(id int64, at time.Time, reason, actor string) (a Alert, ok bool, err error) {
	res, err := t.tx.ExecContext(t.ctx, `UPDATE alerts SET status = 'closed', closed_at = $1, close_reason = $2 WHERE id = $3 AND status = 'open'`,
		at.Unix(), reason, id)
	if err != nil {
		return a, false, fmt.Errorf("closing alert %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return a, false, nil
	}
	if err := t.AddAlertEvent(AlertEvent{AlertID: id, At: at, Kind: "close", Actor: actor, Text: reason}); err != nil {
		return a, false, err
	}
	a, err = t.Alert(id)
	return a, err == nil, err
}

// AssignAlert sets who works on an alert.
func (t *Tx) AssignAlert(id int64, to, actor string, at time.Time) error {
	if _, err := t.tx.ExecContext(t.ctx, `UPDATE alerts SET assigned_to = $1 WHERE id = $2`, to, id); err != nil {
		return fmt.Errorf("assigning alert %d: %w", id, err)
	}
	return t.AddAlertEvent(AlertEvent{AlertID: id, At: at, Kind: "assign", Actor: actor, Text: to})
}

// AddAlertEvent appends to an alert's history.
func (t *Tx) AddAlertEvent(e AlertEvent) error {
	if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO alert_events (alert_id, at, kind, actor, text) VALUES ($1, $2, $3, $4, $5)`,
		e.AlertID, e.At.Unix(), e.Kind, e.Actor, e.Text); err != nil {
		return fmt.Errorf("recording the history of alert %d: %w", e.AlertID, err)
	}
	return nil
}

// OpenNotification inserts an open notification. ok is false, and id the
// existing one's, when one of the same container, kind and subject is open
// already.
func (t *Tx) OpenNotification(n Notification) (id int64, ok bool, err error) {
	err = t.tx.QueryRowContext(t.ctx, `INSERT INTO notifications (container_id, asset_id, appliance_id, kind, subject, severity, status, message, opened_at)
VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) ON CONFLICT DO NOTHING RETURNING id`,
		n.ContainerID, nullInt(n.AssetID), nullInt(n.ApplianceID), n.Kind, n.Subject, n.Severity, n.Message, n.OpenedAt.Unix()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = t.tx.QueryRowContext(t.ctx, `SELECT id FROM notifications WHERE container_id = $1 AND kind = $2 AND subject = $3 AND status = 'open'`,
			n.ContainerID, n.Kind, n.Subject).Scan(&id)
		if err != nil {
			return 0, false, fmt.Errorf("reading an open notification: %w", err)
		}
		return id, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("opening a notification: %w", err)
	}
	return id, true, nil
}

// CloseNotification closes an open notification; ok is false when it was
// not open.
func (t *Tx) CloseNotification(id int64, at time.Time) (n Notification, ok bool, err error) {
	res, err := t.tx.ExecContext(t.ctx, `UPDATE notifications SET status = 'closed', closed_at = $1 WHERE id = $2 AND status = 'open'`, at.Unix(), id)
	if err != nil {
		return n, false, fmt.Errorf("closing notification %d: %w", id, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return n, false, nil
	}
	n, err = scanNotification(t.tx.QueryRowContext(t.ctx, `SELECT `+notificationColumns+` FROM notifications WHERE id = $1`, id))
	return n, err == nil, err
}

// AddDelivery queues a delivery; one with the same rule and event key
// already queued is kept as it is.
func (t *Tx) AddDelivery(d Delivery) error {
	_, err := t.tx.ExecContext(t.ctx, `INSERT INTO deliveries (rule_id, container_id, event_key, event, payload, status, next_attempt_at, last_error, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (rule_id, event_key) DO NOTHING`,
		d.RuleID, d.ContainerID, d.EventKey, d.Event, string(d.Payload), d.Status, d.NextAttemptAt.Unix(), d.LastError, d.CreatedAt.Unix())
	if err != nil {
		return fmt.Errorf("queueing a delivery of rule %d: %w", d.RuleID, err)
	}
	return nil
}

// OpenAlerts lists every open alert (the engine's start).
func (s *Store) OpenAlerts(ctx context.Context) ([]Alert, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE status = 'open' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing open alerts: %w", err)
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("listing open alerts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// CountResults counts the checks of an asset's collector that have a
// result.
func (s *Store) CountResults(ctx context.Context, asset int64, collector string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM check_results WHERE asset_id = $1 AND collector = $2`, asset, collector).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting the checks of %s on asset %d: %w", collector, asset, err)
	}
	return n, nil
}

// CheckKnown reports whether an asset has a check: configured, or with a
// stored result.
func (s *Store) CheckKnown(ctx context.Context, asset int64, collector, check string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT
    (SELECT COUNT(*) FROM check_results WHERE asset_id = $1 AND collector = $2 AND check_key = $3) +
    (SELECT COUNT(*) FROM asset_checks WHERE asset_id = $1 AND collector = $2 AND check_key = $3)`, asset, collector, check).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("looking up check %s/%s of asset %d: %w", collector, check, asset, err)
	}
	return n > 0, nil
}

// Retention says how long finished records are kept.
type Retention struct {
	ClosedAlerts, ClosedNotifications, FinishedDeliveries time.Duration
}

// Prune deletes closed alerts (with their history), closed notifications
// and finished deliveries older than the retention, and says how many rows
// went.
func (s *Store) Prune(ctx context.Context, now time.Time, r Retention) (int64, error) {
	var total int64
	for _, q := range []struct {
		sql   string
		older time.Duration
	}{
		{`DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE status = 'closed' AND closed_at < $1 LIMIT 5000)`, r.ClosedAlerts},
		{`DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE status = 'closed' AND closed_at < $1 LIMIT 5000)`, r.ClosedNotifications},
		// The delivery of an opening is kept while its alert or
		// notification is open: the closing goes to the rules it shows.
		{`DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d WHERE d.status <> 'pending' AND d.created_at < $1
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.status = 'open' AND d.event_key = 'alert.open:' || a.id)
  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.status = 'open' AND d.event_key = 'notification.open:' || n.id)
  LIMIT 5000)`, r.FinishedDeliveries},
	} {
		// In batches: the writer is shared with ingest.
		for {
			res, err := s.w.ExecContext(ctx, q.sql, now.Add(-q.older).Unix())
			if err != nil {
				return total, fmt.Errorf("pruning old alerts and notifications: %w", err)
			}
			n, _ := res.RowsAffected()
			total += n
			if n < 5000 {
				break
			}
		}
	}
	return total, nil
}

// sealedPrefix marks a secret sealed with the hub's secret key.
const sealedPrefix = "sealed:v1:"

// What sealed values are, bound into their seal: a value sealed as one
// cannot be opened as another.
const (
	aadRuleSecret = "sonde rule secret" // #nosec G101 -- a label bound into the seal, not a credential
	aadTOTPSecret = "sonde totp secret" // #nosec G101 -- a label bound into the seal, not a credential
)

// UseSecretKey makes the store seal rule secrets at rest with key (32
// bytes, XChaCha20-Poly1305), so a copy of the database alone does not
// give them away. Call it before the store is used.
func (s *Store) UseSecretKey(key []byte) error {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return fmt.Errorf("the secret key: %w", err)
	}
	s.sealer = aead
	return nil
}

func sealSecret(aead cipher.AEAD, v secret.Secret, aad string) (string, error) {
	if aead == nil || v.IsZero() {
		return v.Reveal(), nil
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(v.Reveal())+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sealing a secret: %w", err)
	}
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(v.Reveal()), []byte(aad))), nil
}

func openSecret(aead cipher.AEAD, stored, aad string) (secret.Secret, error) {
	rest, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return secret.New(stored), nil
	}
	if aead == nil {
		return secret.Secret{}, errors.New("a secret is sealed and the hub has no secret key: restore <data>/secret.key")
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(b) < aead.NonceSize() {
		return secret.Secret{}, errors.New("a sealed secret is damaged")
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(aad))
	if err != nil {
		return secret.Secret{}, errors.New("a sealed secret does not open with <data>/secret.key: wrong key, or the database was changed")
	}
	return secret.New(string(plain)), nil
}

// HasDelivery reports whether a rule has a delivery for an event that was
// queued to be sent (pending, delivered, or failed; not skipped).
func (t *Tx) HasDelivery(rule int64, eventKey string) (bool, error) {
	var n int
	if err := t.tx.QueryRowContext(t.ctx, `SELECT COUNT(*) FROM deliveries WHERE rule_id = $1 AND event_key = $2 AND status <> 'skipped'`, rule, eventKey).Scan(&n); err != nil {
		return false, fmt.Errorf("looking up a delivery of rule %d: %w", rule, err)
	}
	return n > 0, nil
}

// DeferRule moves a rule's pending deliveries to until at the earliest:
// its receiver is failing.
func (s *Store) DeferRule(ctx context.Context, rule int64, until time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = $1 WHERE rule_id = $2 AND status = 'pending' AND next_attempt_at < $1`,
		until.Unix()+1, rule); err != nil {
		return fmt.Errorf("deferring the deliveries of rule %d: %w", rule, err)
	}
	return nil
}

// HasSealedSecrets reports whether the store holds values sealed with a
// secret key, which only that key opens.
func (s *Store) HasSealedSecrets(ctx context.Context) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT
    (SELECT COUNT(*) FROM rules WHERE secret LIKE 'sealed:%') +
    (SELECT COUNT(*) FROM users WHERE totp_secret LIKE 'sealed:%')`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("looking for sealed secrets: %w", err)
	}
	return n > 0, nil
}
