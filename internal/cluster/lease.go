package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease names: the work one hub does for all.
const (
	LeaseHealth       = "health"       // the monitoring-health sweep (missing data, disconnected appliances)
	LeaseOutbox       = "outbox"       // sending notifications
	LeaseServices     = "services"     // the hub's own service checks
	LeaseHousekeeping = "housekeeping" // retention: old results, audit entries, sessions
)

// ErrFenced is returned by Fence when another hub holds the lease now.
var ErrFenced = errors.New("this hub no longer holds the lease")

type fenceKey struct{}

// fence is the lease a piece of work runs under.
type fence struct {
	name  string
	epoch int64
}

// Lead runs fn while this hub holds the lease name, until ctx ends; fn's
// context ends when the lease is lost (PostgreSQL's session broke), and
// Lead then waits to take it again. For a single hub it runs fn at once.
func (c *Cluster) Lead(ctx context.Context, name string, fn func(context.Context)) {
	if c.db == nil {
		fn(ctx)
		return
	}
	for ctx.Err() == nil {
		err := c.lead(ctx, name, fn)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("holding a lease of the cluster's work failed; trying again", "lease", name, "err", err)
		}
		if !sleep(ctx, c.retry) {
			return
		}
	}
}

func (c *Cluster) lead(ctx context.Context, name string, fn func(context.Context)) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	// Closing the session releases the advisory lock.
	defer conn.Close(context.WithoutCancel(ctx))
	key := lockKey(name)
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("asking for the lease: %w", err)
		}
		if got {
			break
		}
		if !sleep(ctx, c.retry) {
			return nil
		}
	}
	epoch, err := takeEpoch(ctx, conn, name, c.id)
	if err != nil {
		return err
	}
	c.log.Info("this hub now does the cluster's work", "lease", name, "epoch", epoch)

	wctx, cancel := context.WithCancel(context.WithValue(ctx, fenceKey{}, fence{name: name, epoch: epoch}))
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(wctx)
	}()
	t := time.NewTicker(c.retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		case <-done:
			return fmt.Errorf("the work of lease %s stopped", name)
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, c.retry)
			var cur int64
			err := conn.QueryRow(pctx, `SELECT epoch FROM leases WHERE name = $1`, name).Scan(&cur)
			pcancel()
			if err == nil && cur != epoch {
				err = fmt.Errorf("%w: %s moved to epoch %d", ErrFenced, name, cur)
			}
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				cancel()
				<-done
				c.log.Warn("lost a lease of the cluster's work; stopped it", "lease", name, "epoch", epoch, "err", err)
				return err
			}
		}
	}
}

// takeEpoch records this hub as the lease's holder and returns the new
// epoch.
func takeEpoch(ctx context.Context, conn *pgx.Conn, name, holder string) (int64, error) {
	var epoch int64
	err := conn.QueryRow(ctx, `INSERT INTO leases (name, epoch, holder, acquired_at) VALUES ($1, 1, $2, $3)
ON CONFLICT (name) DO UPDATE SET epoch = leases.epoch + 1, holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at
RETURNING epoch`, name, holder, time.Now().Unix()).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("recording the lease %s: %w", name, err)
	}
	return epoch, nil
}

// Fence checks, before a side effect (a notification sent), that the
// lease the work runs under is still this hub's: a hub cut off from
// PostgreSQL, or whose lease another hub took, gets ErrFenced or an
// error and must not act. Work outside a lease, and a single hub's, pass.
func (c *Cluster) Fence(ctx context.Context) error {
	f, ok := ctx.Value(fenceKey{}).(fence)
	if !ok || c.db == nil {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, c.retry)
	defer cancel()
	var epoch int64
	if err := c.db.QueryRowContext(qctx, `SELECT epoch FROM leases WHERE name = $1`, f.name).Scan(&epoch); err != nil {
		return fmt.Errorf("checking the lease %s: %w", f.name, err)
	}
	if epoch != f.epoch {
		return fmt.Errorf("%w %s: another hub took it (epoch %d, this hub's %d)", ErrFenced, f.name, epoch, f.epoch)
	}
	return nil
}
