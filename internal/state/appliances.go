package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hardening"
)

// Appliance is an appliance enrolled in a container.
type Appliance struct {
	ID          int64
	ContainerID int64
	Name        string
	Zone        int
	TokenID     *int64
	// CertFingerprint is the SHA-256 fingerprint of the client
	// certificate the appliance was given; it must present exactly this
	// certificate.
	CertFingerprint string
	// PrevCertFingerprint is the certificate before a renewal, valid
	// until the appliance connects with the new one.
	PrevCertFingerprint string
	CertNotAfter        *time.Time
	CreatedAt           time.Time
	LastSeenAt          *time.Time
	RevokedAt           *time.Time
	// ConnectedHub is the hub process holding the appliance's stream, ""
	// when none (or none since that hub stopped: see LastSeenAt).
	ConnectedHub string
	// BufferDropped and MissingProbes are what the appliance last
	// reported: results its buffer dropped so far, and the probes it was
	// asked for and lacks.
	BufferDropped int64
	MissingProbes []string
}

// StreamFresh is how recently the hub holding an appliance's stream must
// have heard from it (heartbeats come every 30 s) for the record to say it
// is connected: a hub that died leaves its records behind.
const StreamFresh = 2 * time.Minute

// ConnectedAt reports whether a hub, this one or another, holds the
// appliance's stream at now.
func (a Appliance) ConnectedAt(now time.Time) bool {
	return a.ConnectedHub != "" && a.RevokedAt == nil && a.LastSeenAt != nil && now.Sub(*a.LastSeenAt) <= StreamFresh
}

const applianceColumns = `id, container_id, name, zone, token_id, COALESCE(cert_fingerprint, ''), COALESCE(prev_cert_fingerprint, ''), cert_not_after, created_at, last_seen_at, revoked_at,
COALESCE(connected_hub, ''), buffer_dropped, missing_probes`

func scanAppliance(row interface{ Scan(...any) error }) (Appliance, error) {
	var a Appliance
	var tok, notAfter, seen, revoked sql.NullInt64
	var created int64
	var missing string
	err := row.Scan(&a.ID, &a.ContainerID, &a.Name, &a.Zone, &tok, &a.CertFingerprint, &a.PrevCertFingerprint, &notAfter, &created, &seen, &revoked,
		&a.ConnectedHub, &a.BufferDropped, &missing)
	if missing != "" {
		a.MissingProbes = strings.Split(missing, ",")
	}
	a.TokenID = ptrInt(tok)
	a.CertNotAfter, a.LastSeenAt, a.RevokedAt = timePtr(notAfter), timePtr(seen), timePtr(revoked)
	a.CreatedAt = time.Unix(created, 0)
	return a, err
}

// CreateAppliance records a new appliance (before its certificate is
// issued) and returns its id.
func (s *Store) CreateAppliance(ctx context.Context, a Appliance) (int64, error) {
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO appliances (container_id, name, zone, token_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		a.ContainerID, a.Name, a.Zone, nullInt(a.TokenID), time.Now().Unix()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("recording appliance %q: %w", a.Name, err)
	}
	return id, nil
}

// SetApplianceCert records the certificate issued to an appliance.
func (s *Store) SetApplianceCert(ctx context.Context, id int64, fingerprint string, notAfter time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET cert_fingerprint = $1, cert_not_after = $2 WHERE id = $3`, fingerprint, notAfter.Unix(), id)
	if err != nil {
		return fmt.Errorf("recording the certificate of appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// RenewApplianceCert records a renewed certificate; the previous one stays
// valid until ConfirmApplianceCert.
func (s *Store) RenewApplianceCert(ctx context.Context, id int64, fingerprint string, notAfter time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET prev_cert_fingerprint = cert_fingerprint, cert_fingerprint = $1, cert_not_after = $2
WHERE id = $3 AND revoked_at IS NULL`, fingerprint, notAfter.Unix(), id)
	if err != nil {
		return fmt.Errorf("recording the renewed certificate of appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// ConfirmApplianceCert forgets the certificate from before a renewal, once
// the appliance has connected with the new one.
func (s *Store) ConfirmApplianceCert(ctx context.Context, id int64) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE appliances SET prev_cert_fingerprint = NULL WHERE id = $1`, id); err != nil {
		return fmt.Errorf("confirming the certificate of appliance %d: %w", id, err)
	}
	return nil
}

// UpdateAppliance stores the name and zone an appliance announced and when
// it was last seen.
func (s *Store) UpdateAppliance(ctx context.Context, id int64, name string, zone int, seen time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET name = $1, zone = $2, last_seen_at = $3 WHERE id = $4`, name, zone, seen.Unix(), id)
	if err != nil {
		return fmt.Errorf("updating appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// TouchAppliance records that an appliance was seen. It returns
// ErrNotFound when the appliance was revoked (or deleted) meanwhile: its
// stream must end, on whichever hub holds it.
func (s *Store) TouchAppliance(ctx context.Context, id int64, seen time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET last_seen_at = $1 WHERE id = $2 AND revoked_at IS NULL`, seen.Unix(), id)
	if err != nil {
		return fmt.Errorf("updating appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// RecordApplianceInfo records what an appliance reported at a heartbeat:
// that it was seen, the results its buffer dropped so far and the probes
// it lacks. Like TouchAppliance it returns ErrNotFound once the appliance
// is revoked.
func (s *Store) RecordApplianceInfo(ctx context.Context, id int64, seen time.Time, dropped int64, missing []string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET last_seen_at = $1, buffer_dropped = $2, missing_probes = $3 WHERE id = $4 AND revoked_at IS NULL`,
		seen.Unix(), dropped, strings.Join(missing, ","), id)
	if err != nil {
		return fmt.Errorf("updating appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// SetApplianceConnected records that hub holds the appliance's stream
// from now on.
func (s *Store) SetApplianceConnected(ctx context.Context, id int64, hub string, seen time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET connected_hub = $1, last_seen_at = $2 WHERE id = $3 AND revoked_at IS NULL`, hub, seen.Unix(), id)
	if err != nil {
		return fmt.Errorf("recording the stream of appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// SetApplianceDisconnected records that hub no longer holds the
// appliance's stream; a stream another hub took over meanwhile stays.
func (s *Store) SetApplianceDisconnected(ctx context.Context, id int64, hub string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE appliances SET connected_hub = NULL WHERE id = $1 AND connected_hub = $2`, id, hub); err != nil {
		return fmt.Errorf("recording the end of the stream of appliance %d: %w", id, err)
	}
	return nil
}

// ForgetConnections records that no hub holds any stream: a single hub
// calls it at start, after a crash left its appliances marked connected.
func (s *Store) ForgetConnections(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE appliances SET connected_hub = NULL WHERE connected_hub IS NOT NULL`); err != nil {
		return fmt.Errorf("forgetting appliance streams: %w", err)
	}
	return nil
}

// ConnectedAppliance is an appliance with a stream to some hub.
type ConnectedAppliance struct {
	ID   int64
	Zone int
	Hub  string
}

// ConnectedAppliances lists the appliances of a container whose stream a
// hub holds and that were seen since the given time (a hub that died
// leaves its appliances marked connected until they reconnect elsewhere
// or go stale), by id.
func (s *Store) ConnectedAppliances(ctx context.Context, container int64, since time.Time) ([]ConnectedAppliance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, zone, connected_hub FROM appliances
WHERE container_id = $1 AND connected_hub IS NOT NULL AND revoked_at IS NULL AND last_seen_at >= $2 ORDER BY id`, container, since.Unix())
	if err != nil {
		return nil, fmt.Errorf("listing the connected appliances of container %d: %w", container, err)
	}
	defer rows.Close()
	var out []ConnectedAppliance
	for rows.Next() {
		var a ConnectedAppliance
		if err := rows.Scan(&a.ID, &a.Zone, &a.Hub); err != nil {
			return nil, fmt.Errorf("listing the connected appliances of container %d: %w", container, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAppliance removes an appliance record; only for one that never
// got a certificate.
func (s *Store) DeleteAppliance(ctx context.Context, id int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM appliances WHERE id = $1 AND cert_fingerprint IS NULL`, id); err != nil {
		return fmt.Errorf("removing appliance %d: %w", id, err)
	}
	return nil
}

// CountEnrollments counts the appliances a token created since a time.
func (s *Store) CountEnrollments(ctx context.Context, token int64, since time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM appliances WHERE token_id = $1 AND created_at >= $2`, token, since.Unix()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting the enrollments of token %d: %w", token, err)
	}
	return n, nil
}

// SetApplianceZone sets the zone of an appliance (0–9).
func (s *Store) SetApplianceZone(ctx context.Context, id int64, zone int) error {
	if zone < 0 || zone > 9 {
		return fmt.Errorf("zone %d: give a zone from 0 to 9", zone)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET zone = $1 WHERE id = $2`, zone, id)
	if err != nil {
		return fmt.Errorf("setting the zone of appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// RevokeAppliance revokes an appliance: its certificate is refused from
// now on.
func (s *Store) RevokeAppliance(ctx context.Context, id int64, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE appliances SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, at.Unix(), id)
	if err != nil {
		return fmt.Errorf("revoking appliance %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("appliance %d", id))
}

// ApplianceByID returns one appliance.
func (s *Store) ApplianceByID(ctx context.Context, id int64) (Appliance, error) {
	a, err := scanAppliance(s.r.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE id = $1`, id))
	if err != nil {
		return a, notFound(err, fmt.Sprintf("appliance %d", id))
	}
	return a, nil
}

// Appliances lists the appliances of a container, or of every container
// when container is 0, by id.
func (s *Store) Appliances(ctx context.Context, container int64) ([]Appliance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE $1 = 0 OR container_id = $1 ORDER BY id`, container)
	if err != nil {
		return nil, fmt.Errorf("listing appliances of container %d: %w", container, err)
	}
	defer rows.Close()
	var out []Appliance
	for rows.Next() {
		a, err := scanAppliance(rows)
		if err != nil {
			return nil, fmt.Errorf("listing appliances of container %d: %w", container, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetAssetZone sets an asset's zone (0–9).
func (s *Store) SetAssetZone(ctx context.Context, id int64, zone int) error {
	if zone < 0 || zone > 9 {
		return fmt.Errorf("zone %d: give a zone from 0 to 9", zone)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE assets SET zone = $1 WHERE id = $2`, zone, id)
	if err != nil {
		return fmt.Errorf("setting the zone of asset %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("asset %d", id))
}

// ProbeCheck is one check of one collector on one asset, as an appliance
// runs it.
type ProbeCheck struct {
	ID       int64
	Key      string
	Interval int
	Disabled bool
}

// ProbeCollector is a collector of an asset with its configuration and
// checks.
type ProbeCollector struct {
	Key    string
	Config json.RawMessage
	Checks []ProbeCheck
}

// ProbeAsset is an asset with the collectors an appliance runs for it.
type ProbeAsset struct {
	ID          int64
	ContainerID int64
	Zone        int
	Name        string
	// ApplianceID binds the asset to one appliance (its own asset); 0
	// leaves it to the zone's share.
	ApplianceID int64
	Collectors  []ProbeCollector
}

// The collector and check of an appliance's own hardening audit.
const (
	ApplianceCollector = hardening.Collector
	HardeningCheck     = hardening.Check
	// HardeningInterval is how often (seconds) the audit runs.
	HardeningInterval = 3600
)

// EnsureApplianceAsset gives a Sonde appliance its own asset (named after
// it, kind "Sonde appliance", bound to it) with the hardening audit, once;
// it returns the asset's id.
func (s *Store) EnsureApplianceAsset(ctx context.Context, appliance int64) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM assets WHERE appliance_id = $1`, appliance).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		now := time.Now().Unix()
		if err := tx.QueryRowContext(ctx, `INSERT INTO assets (container_id, name, kind, zone, created_at, appliance_id)
SELECT container_id, name, 'Sonde appliance', zone, $2, id FROM appliances WHERE id = $1 RETURNING id`, appliance, now).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO asset_collectors (asset_id, collector, config, created_at) VALUES ($1, $2, '{}', $3)`,
			id, ApplianceCollector, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO asset_checks (asset_id, collector, check_key, interval_s, disabled) VALUES ($1, $2, $3, $4, 0)`,
			id, ApplianceCollector, HardeningCheck, HardeningInterval)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("giving appliance %d its own asset: %w", appliance, err)
	}
	return id, nil
}

// RunByHub marks a collector the hub runs itself (a service check).
const RunByHub = "hub"

// ProbeAssets returns the assets of a container (or the one asset when
// only is not 0) with their collectors among keys that appliances run
// (not the hub's service checks) and the checks of those collectors, each
// check with its stable id (created on first use). Assets without such a
// collector are left out.
func (s *Store) ProbeAssets(ctx context.Context, container, only int64, keys []string) ([]ProbeAsset, error) {
	return s.probeAssets(ctx, container, only, keys, "")
}

// ServiceAssets returns, across every container, the assets with
// collectors the hub runs itself (among keys), as ProbeAssets does.
func (s *Store) ServiceAssets(ctx context.Context, keys []string) ([]ProbeAsset, error) {
	return s.probeAssets(ctx, 0, 0, keys, RunByHub)
}

func (s *Store) probeAssets(ctx context.Context, container, only int64, keys []string, runBy string) ([]ProbeAsset, error) {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	q := `SELECT a.id, a.container_id, a.zone, a.name, COALESCE(a.appliance_id, 0), c.collector, c.config, k.check_key, k.interval_s, k.disabled
FROM assets a
JOIN asset_collectors c ON c.asset_id = a.id
JOIN asset_checks k ON k.asset_id = a.id AND k.collector = c.collector
WHERE ($1 = 0 OR a.container_id = $1) AND ($2 = 0 OR a.id = $2) AND c.run_by = $3
ORDER BY a.id, c.collector, k.check_key`
	rows, err := s.r.QueryContext(ctx, q, container, only, runBy)
	if err != nil {
		return nil, fmt.Errorf("listing the probe checks of container %d: %w", container, err)
	}
	var out []ProbeAsset
	type missing struct {
		asset      int64
		col, check string
		at         [2]int // index in out, index in Collectors
		ci         int
	}
	var need []missing
	for rows.Next() {
		var pa ProbeAsset
		var col, cfg, check string
		var pc ProbeCheck
		var disabled int
		if err := rows.Scan(&pa.ID, &pa.ContainerID, &pa.Zone, &pa.Name, &pa.ApplianceID, &col, &cfg, &check, &pc.Interval, &disabled); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing the probe checks of container %d: %w", container, err)
		}
		if !want[col] {
			continue
		}
		pc.Key, pc.Disabled = check, disabled != 0
		if n := len(out); n == 0 || out[n-1].ID != pa.ID {
			out = append(out, pa)
		}
		a := &out[len(out)-1]
		if n := len(a.Collectors); n == 0 || a.Collectors[n-1].Key != col {
			a.Collectors = append(a.Collectors, ProbeCollector{Key: col, Config: json.RawMessage(cfg)})
		}
		c := &a.Collectors[len(a.Collectors)-1]
		c.Checks = append(c.Checks, pc)
		need = append(need, missing{asset: pa.ID, col: col, check: check, at: [2]int{len(out) - 1, len(a.Collectors) - 1}, ci: len(c.Checks) - 1})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing the probe checks of container %d: %w", container, err)
	}
	for _, m := range need {
		id, err := s.checkID(ctx, m.asset, m.col, m.check)
		if err != nil {
			return nil, err
		}
		out[m.at[0]].Collectors[m.at[1]].Checks[m.ci].ID = id
	}
	return out, nil
}

// checkID returns the stable id of a check, creating it on first use.
func (s *Store) checkID(ctx context.Context, asset int64, collector, check string) (int64, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT id FROM check_ids WHERE asset_id = $1 AND collector = $2 AND check_key = $3`, asset, collector, check).Scan(&id)
	if err == nil {
		return id, nil
	}
	if err != sql.ErrNoRows {
		return 0, fmt.Errorf("reading the id of check %s/%s of asset %d: %w", collector, check, asset, err)
	}
	err = s.w.QueryRowContext(ctx, `INSERT INTO check_ids (asset_id, collector, check_key) VALUES ($1, $2, $3)
ON CONFLICT (asset_id, collector, check_key) DO UPDATE SET collector = excluded.collector RETURNING id`, asset, collector, check).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("numbering check %s/%s of asset %d: %w", collector, check, asset, err)
	}
	return id, nil
}

// CheckByID returns the asset, collector and check key of a check id.
func (s *Store) CheckByID(ctx context.Context, id int64) (asset int64, collector, check string, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT asset_id, collector, check_key FROM check_ids WHERE id = $1`, id).Scan(&asset, &collector, &check)
	if err != nil {
		return 0, "", "", notFound(err, fmt.Sprintf("check %d", id))
	}
	return asset, collector, check, nil
}

// Hardening is the summary of an appliance's latest hardening audit.
type Hardening struct {
	AssetID int64
	At      time.Time
	Failed  int
	Unknown int
	Total   int
}

// ApplianceHardening summarises the latest hardening audit of each
// appliance of a container that has sent one, by appliance id.
func (s *Store) ApplianceHardening(ctx context.Context, container int64) (map[int64]Hardening, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.appliance_id, a.id, r.ts, r.result FROM assets a
JOIN check_results r ON r.asset_id = a.id AND r.collector = $2 AND r.check_key = $3
WHERE a.container_id = $1 AND a.appliance_id IS NOT NULL`, container, ApplianceCollector, HardeningCheck)
	if err != nil {
		return nil, fmt.Errorf("reading the hardening audits of container %d: %w", container, err)
	}
	defer rows.Close()
	out := map[int64]Hardening{}
	for rows.Next() {
		var app int64
		var h Hardening
		var ts int64
		var raw []byte
		if err := rows.Scan(&app, &h.AssetID, &ts, &raw); err != nil {
			return nil, err
		}
		h.At = time.Unix(ts, 0).UTC()
		var res map[string][]struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(raw, &res) == nil {
			for _, it := range res[hardening.Type] {
				h.Total++
				switch it.Status {
				case string(hardening.Fail):
					h.Failed++
				case string(hardening.Unknown):
					h.Unknown++
				}
			}
		}
		out[app] = h
	}
	return out, rows.Err()
}

// CountServiceChecks counts the checks of the collectors the hub runs
// itself in a container.
func (s *Store) CountServiceChecks(ctx context.Context, container int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM asset_checks k
JOIN asset_collectors c ON c.asset_id = k.asset_id AND c.collector = k.collector
JOIN assets a ON a.id = k.asset_id
WHERE a.container_id = $1 AND c.run_by = $2`, container, RunByHub).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting the service checks of container %d: %w", container, err)
	}
	return n, nil
}
