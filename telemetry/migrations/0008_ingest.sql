-- 0008_ingest: a van's own status and its bridge's state, kept apart. `box_status` is the
-- van's retained status topic (online | offline), `bridge` its mosquitto bridge's
-- notification topic (online | offline, from "1" | "0"; NULL for a van without a bridge).
-- `status` stays what both say together: offline while the bridge is down, else the
-- van's own status.
ALTER TABLE van_status ADD COLUMN box_status TEXT;
ALTER TABLE van_status ADD COLUMN bridge TEXT;
UPDATE van_status SET box_status = status WHERE status IN ('online', 'offline');
