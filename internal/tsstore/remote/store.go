// Package remote stores the hub's time series in a remote
// Prometheus-compatible TSDB (Prometheus, VictoriaMetrics, Grafana Mimir,
// Thanos Receive): samples go out with Prometheus remote-write 1.0 through
// a bounded queue on disk, so that an outage of the TSDB loses nothing the
// queue can hold; reads go to the remote's Prometheus HTTP API, each one
// confined to the caller's containers.
package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// Defaults of Options.
const (
	DefaultMaxSamplesPerSend = 20_000
	DefaultMinBackoff        = 100 * time.Millisecond
	DefaultMaxBackoff        = 10 * time.Second
	DefaultSendTimeout       = 30 * time.Second
	DefaultFutureTolerance   = time.Hour
	DefaultMaxSampleAge      = 24 * time.Hour
)

// ErrInvalidSample is the cause of refusing an Append call that holds a
// sample without a metric name or a container ID.
var ErrInvalidSample = errors.New("invalid sample")

// ErrClosed is returned by Append once the store is closed.
var ErrClosed = errors.New("remote time-series store is closed")

// Options configures a Store.
type Options struct {
	// WriteURL is the remote-write endpoint, e.g.
	// http://127.0.0.1:9090/api/v1/write (Prometheus) or
	// http://vminsert:8480/insert/0/prometheus/api/v1/write.
	WriteURL *url.URL
	// QueryURL is the base of the Prometheus HTTP API, the part before
	// /api/v1/query, e.g. http://127.0.0.1:9090 or
	// http://vmselect:8481/select/0/prometheus.
	QueryURL *url.URL
	// Client is the HTTP client of both, with its TLS configuration.
	// Default: a client with the system's roots.
	Client *http.Client
	// BearerToken, if set, is sent as "Authorization: Bearer …".
	BearerToken secret.Secret
	// OrgID, if set, is sent as X-Scope-OrgID (Mimir, Cortex, Thanos
	// Receive's tenant header).
	OrgID string
	// QueueDir holds the queue of samples not yet accepted by the remote.
	QueueDir string
	// Queue bounds and syncs the queue.
	Queue QueueOptions
	// MaxSamplesPerSend bounds the samples of one write request, about.
	MaxSamplesPerSend int
	// MinBackoff and MaxBackoff bound the wait between two attempts of a
	// request the remote did not accept for a reason that may pass (it is
	// down, overloaded, or answered 5xx or 429).
	MinBackoff, MaxBackoff time.Duration
	// SendTimeout bounds one write request.
	SendTimeout time.Duration
	// FutureTolerance is how far ahead of the hub's clock a sample's
	// timestamp may be: the embedded store's rule, kept so that both
	// stores refuse the same results. Negative disables the check.
	FutureTolerance time.Duration
	// MaxSampleAge is how far behind the hub's clock a sample's
	// timestamp may be, as the embedded store's out-of-order window: a
	// TSDB refuses samples older than its own window, and Prometheus
	// refuses the whole request that holds one, so the hub refuses such
	// a result itself (400 to its sender) instead of queueing a request
	// the TSDB never takes. Set it to the TSDB's out-of-order window.
	// Negative disables the check.
	MaxSampleAge time.Duration
	// QueryTimeout and MaxConcurrentQueries configure the reads.
	QueryTimeout         time.Duration
	MaxConcurrentQueries int
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.MaxSamplesPerSend <= 0 {
		o.MaxSamplesPerSend = DefaultMaxSamplesPerSend
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.FutureTolerance == 0 {
		o.FutureTolerance = DefaultFutureTolerance
	}
	if o.MaxSampleAge == 0 {
		o.MaxSampleAge = DefaultMaxSampleAge
	}
	return o
}

// decorate adds the authentication headers to a request to the remote.
func (o *Options) decorate(r *http.Request) {
	if !o.BearerToken.IsZero() {
		r.Header.Set("Authorization", "Bearer "+o.BearerToken.Reveal())
	}
	if o.OrgID != "" {
		r.Header.Set("X-Scope-OrgID", o.OrgID)
	}
}

// Store is the remote implementation of tsstore.Store. Its methods are
// safe for concurrent use.
type Store struct {
	opts    Options
	logger  *slog.Logger
	queue   *Queue
	reads   *Querier
	metrics *writeMetrics

	// mu guards closed against Append racing Close.
	mu     sync.RWMutex
	closed bool

	stop   context.CancelFunc
	sender sync.WaitGroup

	// appended counts the records put in the queue since Open, starting
	// from those an earlier run left; acked those the remote accepted or
	// refused for good. Flush waits for acked to reach appended.
	appended, acked atomic.Int64
}

var _ tsstore.Store = (*Store)(nil)

// Open opens the queue in opts.QueueDir (sending what an earlier run left
// in it) and starts sending. logger may be nil; reg, if not nil, receives
// the sender's metrics.
func Open(opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if opts.WriteURL == nil || opts.QueryURL == nil {
		return nil, errors.New("the remote time-series store needs both a remote-write URL and a query URL")
	}
	if opts.QueueDir == "" {
		return nil, errors.New("the remote time-series store needs a directory for its queue")
	}
	opts = opts.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Neither half follows a redirect: it would carry the credentials to
	// wherever the remote points.
	client := *opts.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts.Client = &client

	reads, err := NewQuerier(QuerierOptions{
		BaseURL:       opts.QueryURL,
		Client:        opts.Client,
		Decorate:      opts.decorate,
		QueryTimeout:  opts.QueryTimeout,
		MaxConcurrent: opts.MaxConcurrentQueries,
	})
	if err != nil {
		return nil, err
	}
	q, err := OpenQueue(opts.QueueDir, opts.Queue, logger)
	if err != nil {
		return nil, err
	}
	m, err := newWriteMetrics(reg, q)
	if err != nil {
		return nil, errors.Join(err, q.Close())
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Store{opts: opts, logger: logger, queue: q, reads: reads, metrics: m, stop: stop}
	s.appended.Store(int64(q.Stats().Records))
	if st := q.Stats(); st.Records > 0 {
		logger.Info("sending the samples an earlier run left in the remote-write queue",
			"records", st.Records, "bytes", st.Bytes, "remote", opts.WriteURL.Host)
	}
	s.sender.Go(func() { s.send(ctx) })
	return s, nil
}

// Append checks the samples and puts them in the queue as one record:
// once it returns, they survive a crash of the process, and the sender
// delivers them to the remote, in order, at least once. A full queue
// refuses them (ErrQueueFull): the caller refuses the result, which its
// sender keeps and sends again later.
func (s *Store) Append(ctx context.Context, samples []tsstore.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("appending samples: %w", err)
	}
	now := time.Now()
	maxT, minT := int64(0), int64(0)
	if s.opts.FutureTolerance > 0 {
		maxT = now.Add(s.opts.FutureTolerance).UnixMilli()
	}
	if s.opts.MaxSampleAge > 0 {
		minT = now.Add(-s.opts.MaxSampleAge).UnixMilli()
	}
	for i := range samples {
		smp := &samples[i]
		if smp.Key.Metric == "" || smp.Key.ContainerID == "" {
			return fmt.Errorf("appending samples: sample %d has no metric name or container ID: %w", i, ErrInvalidSample)
		}
		if maxT != 0 && smp.T > maxT {
			return fmt.Errorf("appending samples: sample %d (%s) is more than %s ahead of the hub's clock: %w",
				i, smp.Key.Metric, s.opts.FutureTolerance, tsstore.ErrOutOfRange)
		}
		if minT != 0 && smp.T < minT {
			return fmt.Errorf("appending samples: sample %d (%s) is more than %s old, older than the remote TSDB accepts (--tsdb-max-sample-age): %w",
				i, smp.Key.Metric, s.opts.MaxSampleAge, tsstore.ErrOutOfRange)
		}
	}
	rec := appendRecord(make([]byte, 0, 64*len(samples)), samples)

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.queue.Append(rec); err != nil {
		return fmt.Errorf("queueing %d samples for the remote TSDB: %w", len(samples), err)
	}
	s.appended.Add(1)
	return nil
}

// Flush waits until everything appended before the call has been accepted
// (or refused for good) by the remote, or ctx ends. Tests and shutdown
// use it; ingest never waits for the remote.
func (s *Store) Flush(ctx context.Context) error {
	target := s.appended.Load()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.acked.Load() >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			st := s.queue.Stats()
			return fmt.Errorf("waiting for the remote TSDB to accept %d queued records: %w", st.Records, ctx.Err())
		case <-t.C:
		}
	}
}

// QueueStats returns the queue's state.
func (s *Store) QueueStats() QueueStats {
	return s.queue.Stats()
}

// Query evaluates an instant query on the remote, confined to the scope.
func (s *Store) Query(ctx context.Context, scope tsstore.Scope, query string, ts time.Time) (parser.Value, error) {
	return s.reads.Query(ctx, scope, query, ts)
}

// QueryRange evaluates a range query on the remote, confined to the scope.
func (s *Store) QueryRange(ctx context.Context, scope tsstore.Scope, query string, start, end time.Time, step time.Duration) (parser.Value, error) {
	return s.reads.QueryRange(ctx, scope, query, start, end, step)
}

// Series returns the matching series of the scope's containers.
func (s *Store) Series(ctx context.Context, scope tsstore.Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]labels.Labels, error) {
	return s.reads.Series(ctx, scope, matchers, start, end)
}

// LabelNames returns the label names of the matching series of the scope.
func (s *Store) LabelNames(ctx context.Context, scope tsstore.Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error) {
	return s.reads.LabelNames(ctx, scope, matchers, start, end)
}

// LabelValues returns the values of a label of the matching series of the
// scope.
func (s *Store) LabelValues(ctx context.Context, scope tsstore.Scope, name string, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error) {
	return s.reads.LabelValues(ctx, scope, name, matchers, start, end)
}

// Delete removes the matching series of the scope through the remote's
// admin API.
func (s *Store) Delete(ctx context.Context, scope tsstore.Scope, start, end time.Time, matchers ...*labels.Matcher) error {
	return s.reads.Delete(ctx, scope, start, end, matchers...)
}

// Close stops the sender and closes the queue; what it holds is sent by
// the next Open.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.sender.Wait()
	s.metrics.unregister()
	return s.queue.Close()
}
