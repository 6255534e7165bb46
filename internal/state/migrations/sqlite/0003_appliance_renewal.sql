-- Certificate renewal: until the appliance has connected with its new
-- certificate, the one it had stays valid too, so that an appliance that
-- dies between the hub's answer and writing the new certificate to disk is
-- not locked out.
ALTER TABLE appliances ADD COLUMN prev_cert_fingerprint TEXT;
