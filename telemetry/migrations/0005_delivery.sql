-- 0005_delivery: delivery to the hub, not only to the broker (telemetry/tally.py,
-- hub/reconcile.py). Days are local days (config timezone), kinds are footfall, checkin,
-- stop, stop_left (stop visits with their leaving time) and position. Times are Unix
-- seconds (UTC).

-- Box: what the hub last said it holds per day and kind (its retained ack), and the
-- resend back-off: `resent_at` / `resent_count` (the gap, box minus hub, when it resent) /
-- `backoff_s`. A day is confirmed when the hub holds at least what the box has sent.
CREATE TABLE delivery_box (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    hub_count INTEGER NOT NULL DEFAULT 0,
    acked_at REAL,
    resent_at REAL,
    resent_count INTEGER,
    backoff_s REAL,
    PRIMARY KEY (day, kind)
);

-- Box: track points dropped from the outbox unsent (Store.thin_outbox), per day and kind:
-- the tally leaves them out, so the hub never asks for what the box gave up on.
CREATE TABLE delivery_thinned (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, kind)
);

-- Hub: the last tally of each van per day and kind against the hub's own count, and the
-- back-off of its resend requests (`asked_at`, `asked_count` = the gap, box minus hub, then).
CREATE TABLE delivery_hub (
    van TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    box_count INTEGER NOT NULL,
    hub_count INTEGER NOT NULL,
    tallied_at REAL NOT NULL,
    asked_at REAL,
    asked_count INTEGER,
    backoff_s REAL,
    PRIMARY KEY (van, day, kind)
);

-- Hub: the header of each van's last tally (outbox depth as the van reported it).
CREATE TABLE delivery_vans (
    van TEXT PRIMARY KEY,
    tst REAL NOT NULL,
    outbox INTEGER NOT NULL,
    received REAL NOT NULL
);

-- Box: "is this event still queued?" is asked for every event of a tally.
CREATE INDEX outbox_event ON outbox (event_id);

-- Issue 12.5: check-in ids no longer carry their creation time. Old ids (UUIDv1/6/7) get
-- the UUIDv4 made from sha256(old id) (vanbox_checkin_id, registered by the store, the
-- same function as telemetry.events.checkin_id), so box and hub agree on the new id.
UPDATE checkins SET id = vanbox_checkin_id(id) WHERE id != vanbox_checkin_id(id);
UPDATE outbox
SET payload = json_set(payload, '$.id', vanbox_checkin_id(event_id)),
    event_id = vanbox_checkin_id(event_id)
WHERE kind = 'checkin' AND event_id != vanbox_checkin_id(event_id);
