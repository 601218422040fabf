-- 0005_delivery on PostgreSQL: the tables of telemetry/migrations/0005_delivery.sql (read
-- that file for what they mean). Its last part, mapping check-in ids of older box
-- databases to UUIDv4 (issue 12.5), has nothing to do here: a PostgreSQL hub database
-- is created with the current schema and never held an old id.
CREATE TABLE delivery_box (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    hub_count BIGINT NOT NULL DEFAULT 0,
    acked_at DOUBLE PRECISION,
    resent_at DOUBLE PRECISION,
    resent_count BIGINT,
    backoff_s DOUBLE PRECISION,
    PRIMARY KEY (day, kind)
);
CREATE TABLE delivery_thinned (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, kind)
);
CREATE TABLE delivery_hub (
    van TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    box_count BIGINT NOT NULL,
    hub_count BIGINT NOT NULL,
    tallied_at DOUBLE PRECISION NOT NULL,
    asked_at DOUBLE PRECISION,
    asked_count BIGINT,
    backoff_s DOUBLE PRECISION,
    PRIMARY KEY (van, day, kind)
);
CREATE TABLE delivery_vans (
    van TEXT PRIMARY KEY,
    tst DOUBLE PRECISION NOT NULL,
    outbox BIGINT NOT NULL,
    received DOUBLE PRECISION NOT NULL
);
CREATE INDEX outbox_event ON outbox (event_id);
