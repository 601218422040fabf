-- The hub: what it last heard from each van. One row per van, upserted by telemetry.hub.
-- `status` is the van's retained status topic (online | offline | unknown), `status_since`
-- when the hub saw it change; `last_seen` the newest event time (or status arrival) of the
-- van, Unix seconds; `messages` and `malformed` count what arrived for the van.
CREATE TABLE van_status (
    van TEXT PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'unknown',
    status_since REAL,
    last_seen REAL,
    messages INTEGER NOT NULL DEFAULT 0,
    malformed INTEGER NOT NULL DEFAULT 0
);
