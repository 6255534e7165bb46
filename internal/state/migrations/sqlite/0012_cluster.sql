-- Several hubs on one PostgreSQL. connected_hub names the hub process that
-- holds an appliance's stream (NULL: none), so that every hub shares a
-- container's assets among all of its connected appliances, wherever they
-- are connected; buffer_dropped and missing_probes are what the appliance
-- last reported, for the health sweep, which runs on one hub for all.
-- leases are the fencing epochs of the work one hub does for all (the
-- health sweep, notifications, service checks, housekeeping): each new
-- owner increments its lease's epoch.
ALTER TABLE appliances ADD COLUMN connected_hub TEXT;
ALTER TABLE appliances ADD COLUMN buffer_dropped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE appliances ADD COLUMN missing_probes TEXT NOT NULL DEFAULT '';
CREATE INDEX appliances_connected ON appliances (container_id, connected_hub);
CREATE TABLE leases (
	name TEXT PRIMARY KEY,
	epoch INTEGER NOT NULL,
	holder TEXT NOT NULL,
	acquired_at INTEGER NOT NULL
);
