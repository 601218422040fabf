-- 0013_rollup on PostgreSQL: the same tables and trigger as
-- telemetry/migrations/0013_rollup.sql (read that file for what they mean); the trigger is
-- a PL/pgSQL function.
CREATE TABLE IF NOT EXISTS rollup_periods (
    period TEXT PRIMARY KEY,
    state BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS rollup_sums (
    period TEXT NOT NULL,
    grp TEXT NOT NULL,
    metric TEXT NOT NULL,
    key TEXT NOT NULL DEFAULT '',
    name TEXT,
    municipality TEXT,
    planned BIGINT,
    value DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS rollup_sums_period ON rollup_sums (period, grp);

INSERT INTO rollup_periods (period)
    SELECT DISTINCT day FROM agg_days WHERE state > 0 ON CONFLICT DO NOTHING;
INSERT INTO rollup_periods (period)
    SELECT DISTINCT substr(day, 1, 7) FROM agg_days WHERE state > 0 ON CONFLICT DO NOTHING;
INSERT INTO rollup_periods (period)
    SELECT DISTINCT substr(day, 1, 4) FROM agg_days WHERE state > 0 ON CONFLICT DO NOTHING;

-- Ingest is not serialized with the daily job on PostgreSQL: the update waits for a
-- refresh that holds the period's row (telemetry/rollup.py locks it), and then marks it.
-- The rows are taken in the order of their key (year, month, day), as the refresh does.
CREATE FUNCTION vanbox_rollup_visit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM rollup_periods
        WHERE period IN (substr(NEW.day, 1, 4), substr(NEW.day, 1, 7), NEW.day)
        ORDER BY period FOR UPDATE;
    UPDATE rollup_periods SET state = 0
        WHERE period IN (substr(NEW.day, 1, 4), substr(NEW.day, 1, 7), NEW.day);
    RETURN NULL;
END $$;

CREATE TRIGGER rollup_visit_new AFTER INSERT ON stop_visits
    FOR EACH ROW EXECUTE FUNCTION vanbox_rollup_visit();
