package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// A queue record is one Append call: the number of samples as a uvarint,
// then the samples as the repeated timeseries field of a WriteRequest, one
// series of one sample each. Protobuf concatenates repeated fields, so the
// sender makes a request of several records by putting their fields end
// to end, without decoding them.

// appendRecord appends the record of samples to b.
func appendRecord(b []byte, samples []tsstore.Sample) []byte {
	b = binary.AppendUvarint(b, uint64(len(samples)))
	for i := range samples {
		b = appendSampleSeries(b, &samples[i])
	}
	return b
}

// seriesLabelsOf lists a key's labels in the order remote-write requires
// (sorted by name), leaving out empty values as the embedded store does.
func seriesLabelsOf(k *tsstore.SeriesKey, out *[7]Label) []Label {
	out[0] = Label{Name: "__name__", Value: k.Metric}
	n := 1
	for _, l := range [...]Label{
		{tsstore.LabelAsset, k.Asset},
		{tsstore.LabelAssetID, k.AssetID},
		{tsstore.LabelCheck, k.Check},
		{tsstore.LabelCollector, k.Collector},
		{tsstore.LabelContainerID, k.ContainerID},
		{tsstore.LabelItem, k.Item},
	} {
		if l.Value != "" {
			out[n] = l
			n++
		}
	}
	return out[:n]
}

// appendSampleSeries appends one timeseries field holding the sample.
func appendSampleSeries(b []byte, smp *tsstore.Sample) []byte {
	var arr [7]Label
	ls := seriesLabelsOf(&smp.Key, &arr)
	s := WriteSample{Value: smp.V, T: smp.T}
	size := 0
	for _, l := range ls {
		size += protowire.SizeTag(fieldLabels) + protowire.SizeBytes(labelSize(l))
	}
	size += protowire.SizeTag(fieldSamples) + protowire.SizeBytes(sampleSize(s))

	b = protowire.AppendTag(b, fieldTimeseries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	for _, l := range ls {
		b = protowire.AppendTag(b, fieldLabels, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(labelSize(l)))
		b = protowire.AppendTag(b, fieldName, protowire.BytesType)
		b = protowire.AppendString(b, l.Name)
		b = protowire.AppendTag(b, fieldValue, protowire.BytesType)
		b = protowire.AppendString(b, l.Value)
	}
	b = protowire.AppendTag(b, fieldSamples, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sampleSize(s)))
	if bits := math.Float64bits(s.Value); bits != 0 {
		b = protowire.AppendTag(b, fieldSampleV, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, bits)
	}
	if s.T != 0 {
		b = protowire.AppendTag(b, fieldSampleT, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.T))
	}
	return b
}

// splitRecord returns a record's sample count and its timeseries fields.
func splitRecord(rec []byte) (samples int, fields []byte, err error) {
	n, k := binary.Uvarint(rec)
	if k <= 0 || n > uint64(len(rec)) {
		return 0, nil, errors.New("a record of the remote-write queue has no valid sample count")
	}
	return int(n), rec[k:], nil
}

// bytesPerSample is about the size of one sample in a record (its labels
// repeated), to turn MaxSamplesPerSend into a byte bound for Peek.
const bytesPerSample = 128

// sendOutcome is what became of one write request.
type sendOutcome int

const (
	sent      sendOutcome = iota // the remote accepted the request
	refused                      // the remote refused it for good (4xx): sending it again cannot help
	retryable                    // the remote is down, overloaded or failing: send it again later
)

// splitAfter is how many failed attempts in a row, each answered with an
// error by a TSDB that is up, make the sender halve its request: one
// sample the TSDB cannot take (Prometheus refuses the whole request that
// holds a duplicate with another value, with a 5xx) must not hold back
// every other tenant's samples behind it.
const splitAfter = 3

// send runs until ctx ends: it takes the oldest records from the queue,
// sends them as one request, and acknowledges them once the remote has
// answered for good; it waits with a growing backoff while the remote
// fails. A request the TSDB refuses (4xx), or keeps failing (5xx) while it
// is up, is halved until the record it cannot take is alone: that one
// record (one result) is dropped, counted and logged — a refused one at
// once, a failing one once an empty request shows the TSDB healthy.
func (s *Store) send(ctx context.Context) {
	var pb, body []byte
	maxBytes := s.opts.MaxSamplesPerSend * bytesPerSample
	backoff := s.opts.MinBackoff
	var failingSince, lastLog time.Time
	limit, answeredFails := s.opts.MaxSamplesPerSend, 0 // records per request; failures answered by the TSDB in a row
	// droppedOne is set once a record was dropped as one the TSDB cannot
	// take, until a request succeeds: a TSDB that fails everything it is
	// sent but an empty request (a full disk) loses one record, not all.
	droppedOne := false
	for {
		recs, err := s.queue.Peek(maxBytes, limit)
		if err != nil {
			if errors.Is(err, ErrQueueClosed) || ctx.Err() != nil {
				return
			}
			s.logger.Error("reading the remote-write queue", "err", err)
			if !sleep(ctx, s.opts.MaxBackoff) {
				return
			}
			continue
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.queue.Ready():
			}
			continue
		}

		pb = pb[:0]
		samples := 0
		for _, rec := range recs {
			n, fields, err := splitRecord(rec)
			if err != nil {
				s.logger.Error("dropping a damaged record of the remote-write queue", "err", err)
				continue
			}
			samples += n
			pb = append(pb, fields...)
		}
		body = snappy.Encode(body[:cap(body)], pb)

		outcome, status, wait, err := s.post(ctx, body)
		if ctx.Err() != nil {
			return
		}
		if outcome == retryable {
			s.metrics.failed.Inc()
			now := time.Now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(lastLog) >= time.Minute {
				lastLog = now
				st := s.queue.Stats()
				s.logger.Warn("the remote TSDB does not accept samples; they wait in the queue",
					"remote", s.opts.WriteURL.Host, "err", err, "failing_for", now.Sub(failingSince).Round(time.Second),
					"queued_records", st.Records, "queued_bytes", st.Bytes)
			}
			if status >= 500 {
				answeredFails++
			} else {
				answeredFails = 0
			}
			if answeredFails >= splitAfter {
				answeredFails = 0
				if len(recs) > 1 {
					limit, backoff = (len(recs)+1)/2, s.opts.MinBackoff
					continue
				}
				if !droppedOne && s.healthy(ctx) {
					droppedOne = true
					s.metrics.dropped.Add(float64(samples))
					s.logger.Error("the remote TSDB fails every request that holds this result's samples while it takes others; dropped them",
						"remote", s.opts.WriteURL.Host, "samples", samples, "err", err)
					s.ack(1)
					limit = s.opts.MaxSamplesPerSend
					continue
				}
			}
			if !sleep(ctx, max(wait, backoff)) {
				return
			}
			backoff = min(2*backoff, s.opts.MaxBackoff)
			continue
		}
		if outcome == refused && len(recs) > 1 {
			// Prometheus refuses (and rolls back) a whole request for one
			// sample it cannot take: halve it until that one is alone,
			// rather than drop every other tenant's samples with it.
			limit = (len(recs) + 1) / 2
			continue
		}
		if outcome == refused {
			s.metrics.dropped.Add(float64(samples))
			s.logger.Error("the remote TSDB refused a result's samples; they are not sent again",
				"remote", s.opts.WriteURL.Host, "samples", samples, "err", err)
		} else {
			s.metrics.sent.Add(float64(samples))
			s.metrics.lastSent.SetToCurrentTime()
		}
		if !failingSince.IsZero() {
			s.logger.Info("the remote TSDB accepts samples again", "remote", s.opts.WriteURL.Host,
				"outage", time.Since(failingSince).Round(time.Second))
			failingSince, lastLog = time.Time{}, time.Time{}
		}
		backoff, answeredFails, droppedOne = s.opts.MinBackoff, 0, false
		if !s.ack(len(recs)) {
			return
		}
		// Whole requests again once the part that failed has gone.
		limit = min(2*limit, s.opts.MaxSamplesPerSend)
	}
}

// ack acknowledges the n oldest records; false when the queue is closed.
func (s *Store) ack(n int) bool {
	if err := s.queue.Ack(n); err != nil {
		if errors.Is(err, ErrQueueClosed) {
			return false
		}
		s.logger.Error("acknowledging records of the remote-write queue", "err", err)
	}
	s.acked.Add(int64(n))
	return true
}

// healthy reports whether the TSDB takes an empty write request: then a
// request it keeps failing fails for what it holds.
func (s *Store) healthy(ctx context.Context) bool {
	outcome, _, _, _ := s.post(ctx, snappy.Encode(nil, nil))
	return outcome == sent
}

// sleep waits for d or until ctx ends, and reports whether d passed.
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

// post sends one remote-write request. wait is how long the remote asked
// to be left alone (Retry-After), if it did.
func (s *Store) post(ctx context.Context, body []byte) (outcome sendOutcome, status int, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.WriteURL.String(), bytes.NewReader(body))
	if err != nil {
		return refused, 0, 0, fmt.Errorf("building the remote-write request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "sonde-hub")
	s.opts.decorate(req)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		// The URL, which may carry a tenant path, is the operator's own;
		// the error never holds the headers.
		return retryable, 0, 0, fmt.Errorf("sending to %s: %w", s.opts.WriteURL.Host, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode/100 == 2:
		return sent, resp.StatusCode, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return retryable, resp.StatusCode, retryAfter(resp.Header.Get("Retry-After")),
			fmt.Errorf("%s answered %s: %s", s.opts.WriteURL.Host, resp.Status, strings.TrimSpace(string(msg)))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode == http.StatusNotFound || resp.StatusCode/100 == 3:
		// Wrong credentials, tenant or URL: the operator's to fix, and
		// nothing is lost meanwhile.
		return retryable, resp.StatusCode, 0, fmt.Errorf("%s answered %s (check --tsdb-remote-write and the TSDB's credentials): %s",
			s.opts.WriteURL.Host, resp.Status, strings.TrimSpace(string(msg)))
	default:
		return refused, resp.StatusCode, 0, fmt.Errorf("%s answered %s: %s", s.opts.WriteURL.Host, resp.Status, strings.TrimSpace(string(msg)))
	}
}

// retryAfter reads a Retry-After header given in seconds, capped at a
// minute; a date or nonsense gives 0.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, time.Minute)
}

// writeMetrics are the sender's metrics.
type writeMetrics struct {
	reg                   prometheus.Registerer
	sent, dropped, failed prometheus.Counter
	lastSent              prometheus.Gauge
	all                   []prometheus.Collector
}

func newWriteMetrics(reg prometheus.Registerer, q *Queue) (*writeMetrics, error) {
	m := &writeMetrics{
		reg: reg,
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_tsdb_remote_samples_sent_total",
			Help: "Samples the remote TSDB accepted."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_tsdb_remote_samples_refused_total",
			Help: "Samples the remote TSDB refused for good (4xx other than 401, 403, 404 and 429)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_tsdb_remote_requests_failed_total",
			Help: "Remote-write requests that failed and are sent again."}),
		lastSent: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sonde_tsdb_remote_last_sent_timestamp_seconds",
			Help: "When the remote TSDB last accepted samples."}),
	}
	m.all = []prometheus.Collector{m.sent, m.dropped, m.failed, m.lastSent,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_tsdb_remote_queue_bytes",
			Help: "Bytes of samples waiting in the remote-write queue."}, func() float64 { return float64(q.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_tsdb_remote_queue_records",
			Help: "Results waiting in the remote-write queue."}, func() float64 { return float64(q.Stats().Records) }),
	}
	if reg != nil {
		for i, c := range m.all {
			if err := reg.Register(c); err != nil {
				for _, r := range m.all[:i] {
					reg.Unregister(r)
				}
				return nil, fmt.Errorf("registering the remote-write metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *writeMetrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
}
