// Package cluster lets several hubs share one PostgreSQL state store and
// serve the same users and appliances interchangeably.
//
// It gives them two things. Events: a hub that changes something other
// hubs hold in memory (an asset's configuration that an appliance
// connected elsewhere must get, a condition, a rule) publishes it with
// PostgreSQL's NOTIFY, and every hub LISTENs and applies it. Leases: work
// that must happen once for all hubs — the health sweep, notifications,
// service checks, retention — runs on the hub that holds the work's
// PostgreSQL advisory lock; when that hub dies, its session ends, the lock
// is free and another hub takes the work over within DefaultLeaseRetry. Each
// new owner increments the lease's epoch in the leases table, and Fence
// checks it before a side effect, so a hub that lost its lease without
// noticing (cut off from PostgreSQL) cannot act on it.
//
// With a single hub (SQLite) there is nothing to share: events stay
// local and every lease is held at once.
package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Channel is the PostgreSQL NOTIFY channel of Sonde's events.
const Channel = "sonde_events"

// Event kinds.
const (
	// KindAsset: an asset's configuration changed (Container, Asset).
	KindAsset = "asset"
	// KindMembers: the appliances connected in a container changed
	// (Container): every hub shares its assets again.
	KindMembers = "members"
	// KindAppliance: an appliance's record changed (Appliance).
	KindAppliance = "appliance"
	// KindRevoked: an appliance was revoked (Appliance).
	KindRevoked = "revoked"
	// KindConnected: an appliance connected to the hub Hub (Appliance):
	// another hub still holding a stream of it drops that stream.
	KindConnected = "connected"
	// KindServices: the service checks changed.
	KindServices = "services"
	// KindConditions, KindRules, KindMaintenance: the condition engine's
	// definitions changed.
	KindConditions  = "conditions"
	KindRules       = "rules"
	KindMaintenance = "maintenance"
	// KindLabels: an asset's labels changed (Asset).
	KindLabels = "labels"
	// KindAlerts: alerts or notifications opened or closed.
	KindAlerts = "alerts"
	// KindAssetGone: an asset was deleted (Asset).
	KindAssetGone = "asset_gone"
	// KindResync is delivered locally (never published) when the
	// listener reconnected: events may have been missed, so everything
	// cached must be read again.
	KindResync = "resync"
)

// Event is one change, as published.
type Event struct {
	Kind      string `json:"k"`
	Container int64  `json:"c,omitempty"`
	Asset     int64  `json:"a,omitempty"`
	Appliance int64  `json:"p,omitempty"`
	// Hub is the publishing hub's ID; a hub ignores its own events.
	Hub string `json:"h"`
}

// DefaultLeaseRetry is how often a hub tries to take a lease it does not
// hold, and how often the holder checks its PostgreSQL session: a lease
// whose holder died is taken over within about that long after PostgreSQL
// notices (at once for a process that died; within the TCP keepalive
// settings of connect for a machine cut off).
const DefaultLeaseRetry = 5 * time.Second

// Config configures a Cluster.
type Config struct {
	// DSN is the PostgreSQL URL of the state store; empty for a single
	// hub on SQLite.
	DSN    string
	Logger *slog.Logger
	// LeaseRetry: see DefaultLeaseRetry (the default). Tests shorten it.
	LeaseRetry time.Duration
}

// Cluster is this hub's view of the others. Its methods are safe for
// concurrent use.
type Cluster struct {
	dsn   string
	id    string
	log   *slog.Logger
	retry time.Duration
	db    *sql.DB // NOTIFY and the leases table; nil for a single hub

	mu   sync.Mutex
	subs []func(context.Context, Event)
}

// New returns the cluster of this hub. For PostgreSQL it opens a small
// pool for publishing; Close closes it.
func New(cfg Config) (*Cluster, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	c := &Cluster{dsn: cfg.DSN, id: hex.EncodeToString(b[:]), log: log, retry: cmp.Or(cfg.LeaseRetry, DefaultLeaseRetry)}
	if cfg.DSN != "" {
		db, err := sql.Open("pgx", cfg.DSN)
		if err != nil {
			return nil, errors.New("opening the cluster's PostgreSQL connection failed") // the error would repeat the URL
		}
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(2)
		c.db = db
	}
	return c, nil
}

// ID identifies this hub process among the others.
func (c *Cluster) ID() string { return c.id }

// Shared says whether hubs may share the state store (PostgreSQL).
func (c *Cluster) Shared() bool { return c.db != nil }

// Close releases the publishing pool.
func (c *Cluster) Close() error {
	if c.db == nil {
		return nil
	}
	return c.db.Close()
}

// Subscribe adds fn to the handlers of events from other hubs (and of
// KindResync). Handlers run one at a time, in the listener's goroutine:
// they must not block for long.
func (c *Cluster) Subscribe(fn func(context.Context, Event)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, fn)
}

// Publish tells the other hubs of a change this hub made (after it is
// committed). It does nothing for a single hub. A failure is logged, not
// returned: the change is stored, and the others' periodic resync picks
// it up.
func (c *Cluster) Publish(ctx context.Context, ev Event) {
	if c.db == nil {
		return
	}
	ev.Hub = c.id
	b, err := json.Marshal(ev)
	if err != nil {
		c.log.Error("encoding a cluster event", "kind", ev.Kind, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := c.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, string(b)); err != nil {
		c.log.Warn("telling the other hubs of a change failed; they pick it up at their next resync", "kind", ev.Kind, "err", err)
	}
}

func (c *Cluster) deliver(ctx context.Context, ev Event) {
	c.mu.Lock()
	subs := c.subs
	c.mu.Unlock()
	for _, fn := range subs {
		fn(ctx, ev)
	}
}

// ResyncInterval is how often Listen delivers KindResync even when the
// listener stayed connected: a notification published while a
// publisher's pool was failing is not lost for long.
const ResyncInterval = 5 * time.Minute

// Listen follows the other hubs' events until ctx ends, reconnecting
// after a failure; after each reconnection (and every ResyncInterval) it
// delivers KindResync. It returns at once for a single hub.
func (c *Cluster) Listen(ctx context.Context) {
	if c.db == nil {
		return
	}
	backoff := time.Second
	first := true
	for ctx.Err() == nil {
		err := c.listen(ctx, first)
		first = false
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("lost the cluster's event listener; reconnecting", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (c *Cluster) listen(ctx context.Context, first bool) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("LISTEN: %w", err)
	}
	if !first {
		c.deliver(ctx, Event{Kind: KindResync})
	}
	lastResync := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, c.retry)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(lastResync) >= ResyncInterval {
			lastResync = time.Now()
			c.deliver(ctx, Event{Kind: KindResync})
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// Quiet: check that the session is alive.
			pctx, cancel := context.WithTimeout(ctx, c.retry)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("the listener's session: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for events: %w", err)
		}
		var ev Event
		if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
			c.log.Warn("ignoring a cluster event that does not decode", "err", err)
			continue
		}
		if ev.Hub == c.id || ev.Kind == KindResync {
			continue
		}
		c.deliver(ctx, ev)
	}
}

// connect opens a session of its own (LISTEN and advisory locks belong to
// one session) with TCP keepalives short enough that PostgreSQL notices a
// vanished hub within about 20 s and frees its locks.
func (c *Cluster) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.dsn)
	if err != nil {
		return nil, errors.New("the PostgreSQL URL cannot be read")
	}
	cfg.RuntimeParams["tcp_keepalives_idle"] = "5"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "5"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	cfg.RuntimeParams["application_name"] = "sonde-hub " + c.id
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	return conn, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// lockKey is the advisory lock of a lease: a 64-bit hash of its name in
// Sonde's namespace.
func lockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("sonde.lease." + name))
	return int64(h.Sum64()) // #nosec G115 -- a hash: any 64 bits do
}
