// Package dataclass names, in one place, the class of every field Sonde
// stores, after the seed's three classes:
//
//   - Restricted: credentials and keys (tokens, passwords, second
//     factors, webhook secrets, private keys, probe credentials). Stored
//     only hashed or sealed; never in logs, API answers, the UI or
//     exports, except once to the person who created them.
//   - Sensitive: the customers' data (monitoring results, names and
//     addresses of their systems, users and what they did). Shown only
//     within the tenant, to those with the permission.
//   - Internal: Sonde's own bookkeeping (ids, times, counters, flags).
//
// The hub's state store is checked against this list by a test (every
// column has a class), and a full run's API answers, pages and logs are
// searched for every restricted value the store holds.
package dataclass

// Class is a data class.
type Class int

// The classes, from the least to the most protected.
const (
	Internal Class = iota
	Sensitive
	Restricted
)

func (c Class) String() string {
	switch c {
	case Internal:
		return "internal"
	case Sensitive:
		return "sensitive"
	case Restricted:
		return "restricted"
	}
	return "unknown"
}

// Field is one stored field.
type Field struct {
	Store  string // "hub", "appliance", "agent"
	Table  string // table or file
	Column string // column; "" for a whole file
	Class  Class
	How    string // how it is kept, for restricted and sensitive fields
}

// The hub's state store, table by table.
func hubTables() map[string]map[string]Class {
	I, S, R := Internal, Sensitive, Restricted
	return map[string]map[string]Class{
		"schema_migrations": {"version": I, "applied_at": I},
		"containers":        {"id": I, "parent_id": I, "name": S, "created_at": I, "inherit_access": I, "require_totp": I},
		"assets":            {"id": I, "container_id": I, "name": S, "kind": S, "created_at": I, "zone": I, "appliance_id": I},
		"asset_collectors":  {"asset_id": I, "collector": I, "config": S, "created_at": I, "run_by": I},
		"asset_checks":      {"asset_id": I, "collector": I, "check_key": I, "interval_s": I, "disabled": I},
		"asset_labels":      {"asset_id": I, "label": S},
		"check_ids":         {"id": I, "asset_id": I, "collector": I, "check_key": I},
		"check_results": {"asset_id": I, "collector": I, "check_key": I, "ts": I, "received_at": I, "changed_at": I,
			"last_seen_at": I, "result": S, "error_message": S, "error_severity": I, "duration": I, "version": I, "observed_interval_s": I},
		"tokens": {"id": I, "container_id": I, "name": S, "hash": R, "permissions": I, "created_by": I, "created_at": I,
			"expires_at": I, "last_used_at": I, "revoked_at": I},
		"appliances": {"id": I, "container_id": I, "name": S, "zone": I, "token_id": I, "cert_fingerprint": I, "cert_not_after": I,
			"created_at": I, "last_seen_at": I, "revoked_at": I, "prev_cert_fingerprint": I, "connected_hub": I,
			"buffer_dropped": I, "missing_probes": I},
		"leases": {"name": I, "epoch": I, "holder": I, "acquired_at": I},
		"conditions": {"id": I, "container_id": I, "name": S, "kind": I, "collector": I, "check_key": I, "type_name": I,
			"expression": S, "items": S, "labels": S, "severity": I, "message": S, "ticks": I, "clear_ticks": I, "disabled": I,
			"created_at": I, "updated_at": I, "deleted_at": I},
		"alerts": {"id": I, "container_id": I, "asset_id": I, "condition_id": I, "item": S, "severity": I, "status": I,
			"message": S, "assigned_to": S, "opened_at": I, "closed_at": I, "close_reason": S},
		"alert_events":  {"id": I, "alert_id": I, "at": I, "kind": I, "actor": S, "text": S},
		"maintenance":   {"id": I, "container_id": I, "asset_id": I, "starts_at": I, "ends_at": I, "reason": S, "created_at": I},
		"notifications": {"id": I, "container_id": I, "asset_id": I, "appliance_id": I, "kind": I, "subject": S, "severity": I, "status": I, "message": S, "opened_at": I, "closed_at": I},
		"rules": {"id": I, "container_id": I, "name": S, "channel": I, "url": S, "recipients": S, "secret": R, "min_severity": I,
			"min_notification_severity": I, "events": I, "labels": S, "condition_ids": I, "schedule": I, "disabled": I,
			"created_at": I, "updated_at": I},
		"deliveries": {"id": I, "rule_id": I, "container_id": I, "event_key": I, "event": I, "payload": S, "status": I,
			"attempts": I, "next_attempt_at": I, "last_status": I, "last_error": S, "created_at": I, "delivered_at": I},
		"users": {"id": I, "username": S, "password_hash": R, "must_change": I, "totp_secret": R, "totp_last_step": I,
			"created_at": I, "updated_at": I, "disabled_at": I, "time_zone": I},
		"memberships":    {"user_id": I, "container_id": I, "permissions": I, "created_at": I},
		"sessions":       {"id_hash": R, "user_id": I, "csrf": I, "stage": I, "created_at": I, "last_seen_at": I, "expires_at": I, "remote_addr": S, "user_agent": S},
		"recovery_codes": {"user_id": I, "hash": R},
		"invitations": {"id": I, "token_hash": R, "container_id": I, "permissions": I, "note": S, "created_by": I,
			"created_at": I, "expires_at": I, "used_at": I, "used_by": I},
		"audit_log": {"id": I, "at": I, "container_id": I, "actor_kind": I, "actor_id": I, "action": I, "object_kind": I,
			"object_id": I, "address": S, "reason": S, "status": I, "detail": S},
	}
}

// hubHow says how the hub keeps its restricted columns.
func hubHow() map[string]string {
	// #nosec G101 -- descriptions of how secrets are kept, not secrets
	return map[string]string{
		"tokens.hash":            "SHA-256 of the token; the token is shown once, at creation",
		"rules.secret":           "sealed with XChaCha20-Poly1305 under <data>/secret.key",
		"users.password_hash":    "Argon2id",
		"users.totp_secret":      "sealed with XChaCha20-Poly1305 under <data>/secret.key",
		"sessions.id_hash":       "SHA-256 of the session cookie",
		"recovery_codes.hash":    "Argon2id of each code; the codes are shown once",
		"invitations.token_hash": "SHA-256 of the link's secret; the link is shown once",
	}
}

// HubColumns returns the classes of the hub's state store: table →
// column → class.
func HubColumns() map[string]map[string]Class { return hubTables() }

// Fields lists every stored field of the hub, the appliance and the
// agent.
func Fields() []Field {
	how := hubHow()
	var out []Field
	for table, cols := range hubTables() {
		for col, c := range cols {
			out = append(out, Field{Store: "hub", Table: table, Column: col, Class: c, How: how[table+"."+col]})
		}
	}
	out = append(out,
		Field{Store: "hub", Table: "<data>/secret.key", Class: Restricted, How: "0600; seals rule secrets and TOTP secrets"},
		Field{Store: "hub", Table: "<data>/tls/ca.key and <data>/tls/server.key", Class: Restricted, How: "0600"},
		Field{Store: "hub", Table: "<data>/admin-token", Class: Restricted, How: "0600; the root token written at the first start"},
		Field{Store: "hub", Table: "<data>/admin-password", Class: Restricted, How: "0600; removed when the first admin chooses a password"},
		Field{Store: "hub", Table: "time series", Class: Sensitive, How: "the tenant's metrics, labelled by container; in <data>/tsdb, or in a remote TSDB that only hubs may reach"},
		Field{Store: "hub", Table: "<data>/tsdb-queue", Class: Sensitive, How: "0600 segments: samples on their way to a remote TSDB"},
		Field{Store: "hub", Table: "--tsdb-bearer-token-file", Class: Restricted, How: "the operator's file; read at start, sent only to the remote TSDB, never logged"},
		Field{Store: "hub", Table: "cluster events (PostgreSQL NOTIFY)", Class: Internal, How: "kinds and ids of changed objects, never their content"},
		Field{Store: "appliance", Table: "vault", Class: Restricted, How: "probe credentials sealed with XChaCha20-Poly1305 under a per-appliance data key; never sent to the hub"},
		Field{Store: "appliance", Table: "vault key file", Class: Restricted, How: "0600, or derived from a passphrase with Argon2id"},
		Field{Store: "appliance", Table: "client.key.sealed", Class: Restricted, How: "the TLS client key, sealed under the vault's data key"},
		Field{Store: "appliance", Table: "assets.sealed", Class: Sensitive, How: "the last configuration from the hub, sealed under the vault's data key"},
		Field{Store: "appliance", Table: "buffer", Class: Sensitive, How: "results held while the hub is away, encrypted on disk"},
		Field{Store: "agent", Table: "token file", Class: Restricted, How: "readable by the agent's user only"},
		Field{Store: "agent", Table: "spool", Class: Sensitive, How: "results waiting for the hub, in the agent's state directory"},
	)
	return out
}
