-- 0002_aggregates on PostgreSQL: the same tables, indexes and triggers as
-- telemetry/migrations/0002_aggregates.sql (read that file for what they mean); the
-- triggers are PL/pgSQL functions.
CREATE TABLE agg_days (
    van TEXT NOT NULL,
    day TEXT NOT NULL,
    state BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (van, day)
);
CREATE INDEX agg_days_day ON agg_days (day, state);

CREATE TABLE aggregates (
    metric TEXT NOT NULL,
    day TEXT NOT NULL,
    van TEXT NOT NULL,
    key TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (metric, day, van, key)
);
CREATE INDEX aggregates_van_day ON aggregates (van, day);

CREATE INDEX stop_visits_day ON stop_visits (day);

INSERT INTO agg_days (van, day) SELECT DISTINCT van, day FROM positions ON CONFLICT DO NOTHING;
INSERT INTO agg_days (van, day) SELECT DISTINCT van, day FROM footfall ON CONFLICT DO NOTHING;
INSERT INTO agg_days (van, day) SELECT DISTINCT van, day FROM checkins ON CONFLICT DO NOTHING;
INSERT INTO agg_days (van, day) SELECT DISTINCT van, day FROM stop_visits ON CONFLICT DO NOTHING;

CREATE FUNCTION vanbox_agg_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agg_days AS a (van, day) VALUES (NEW.van, NEW.day)
        ON CONFLICT (van, day) DO UPDATE SET state = 0 WHERE a.state = 1;
    RETURN NULL;
END $$;

-- A stop visit attributes the events from its arrival to its departure (an open one for
-- at most 12 hours): every day in that span is recomputed.
CREATE FUNCTION vanbox_agg_dirty_visit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO agg_days AS a (van, day) VALUES (NEW.van, NEW.day)
            ON CONFLICT (van, day) DO UPDATE SET state = 0 WHERE a.state = 1;
    END IF;
    UPDATE agg_days SET state = 0
        WHERE van = NEW.van AND state = 1 AND day >= vanbox_utc_date(NEW.arrived, -1)
          AND day <= vanbox_utc_date(greatest(coalesce(NEW."left", 0), NEW.arrived + 43200), 1);
    RETURN NULL;
END $$;

CREATE TRIGGER agg_dirty_positions AFTER INSERT ON positions
    FOR EACH ROW EXECUTE FUNCTION vanbox_agg_dirty();
CREATE TRIGGER agg_dirty_footfall AFTER INSERT ON footfall
    FOR EACH ROW EXECUTE FUNCTION vanbox_agg_dirty();
CREATE TRIGGER agg_dirty_checkins AFTER INSERT ON checkins
    FOR EACH ROW EXECUTE FUNCTION vanbox_agg_dirty();
CREATE TRIGGER agg_dirty_visit_new AFTER INSERT ON stop_visits
    FOR EACH ROW EXECUTE FUNCTION vanbox_agg_dirty_visit();
CREATE TRIGGER agg_dirty_visit_left AFTER UPDATE OF "left" ON stop_visits
    FOR EACH ROW EXECUTE FUNCTION vanbox_agg_dirty_visit();
