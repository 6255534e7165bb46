-- Entries past the retention are removed by time: an index on it.
CREATE INDEX audit_log_at ON audit_log (at);
