-- Service checks: a collector the hub runs itself ('hub') instead of the
-- appliance or agent of the asset ('').
ALTER TABLE asset_collectors ADD COLUMN run_by TEXT NOT NULL DEFAULT '';
