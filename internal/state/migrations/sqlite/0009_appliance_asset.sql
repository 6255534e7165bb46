-- An appliance's own asset: its hardening audit (collector "appliance",
-- check "hardening") runs on that appliance only, not on whichever
-- appliance of the zone the asset's id would pick.
ALTER TABLE assets ADD COLUMN appliance_id INTEGER REFERENCES appliances (id) ON DELETE SET NULL;
