-- Daily aggregates: what the reports need, per van and local day, kept after the raw
-- events are deleted by the retention job (telemetry/retention.py).
--
-- agg_days says, per van and day, where the reports read that day from:
--   state 0  raw rows only (new, or changed since folded): computed from the raw tables
--   state 1  folded into `aggregates`; raw rows still there
--   state 2  folded and pruned: raw rows deleted, only `aggregates` remain
-- Triggers below put every day that gets a raw row into agg_days and set a folded day
-- back to 0 when a row for it arrives later (a hub receiving a backlog) or a stop visit
-- that attributes its events changes, so a folded day is never stale.
CREATE TABLE agg_days (
    van TEXT NOT NULL,
    day TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (van, day)
) WITHOUT ROWID;
CREATE INDEX agg_days_day ON agg_days (day, state);

-- One figure of one van and day: metric names and keys are documented in reports.py.
CREATE TABLE aggregates (
    metric TEXT NOT NULL,
    day TEXT NOT NULL,
    van TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (metric, day, van, key)
) WITHOUT ROWID;
CREATE INDEX aggregates_van_day ON aggregates (van, day);

CREATE INDEX stop_visits_day ON stop_visits (day);

INSERT OR IGNORE INTO agg_days (van, day) SELECT DISTINCT van, day FROM positions;
INSERT OR IGNORE INTO agg_days (van, day) SELECT DISTINCT van, day FROM footfall;
INSERT OR IGNORE INTO agg_days (van, day) SELECT DISTINCT van, day FROM checkins;
INSERT OR IGNORE INTO agg_days (van, day) SELECT DISTINCT van, day FROM stop_visits;

CREATE TRIGGER agg_dirty_positions AFTER INSERT ON positions BEGIN
    INSERT INTO agg_days (van, day) VALUES (NEW.van, NEW.day)
        ON CONFLICT (van, day) DO UPDATE SET state = 0 WHERE state = 1;
END;
CREATE TRIGGER agg_dirty_footfall AFTER INSERT ON footfall BEGIN
    INSERT INTO agg_days (van, day) VALUES (NEW.van, NEW.day)
        ON CONFLICT (van, day) DO UPDATE SET state = 0 WHERE state = 1;
END;
CREATE TRIGGER agg_dirty_checkins AFTER INSERT ON checkins BEGIN
    INSERT INTO agg_days (van, day) VALUES (NEW.van, NEW.day)
        ON CONFLICT (van, day) DO UPDATE SET state = 0 WHERE state = 1;
END;
-- A stop visit attributes the events from its arrival to its departure (an open one for
-- at most 12 hours): every day in that span is recomputed.
CREATE TRIGGER agg_dirty_visit_new AFTER INSERT ON stop_visits BEGIN
    INSERT INTO agg_days (van, day) VALUES (NEW.van, NEW.day)
        ON CONFLICT (van, day) DO UPDATE SET state = 0 WHERE state = 1;
    UPDATE agg_days SET state = 0
        WHERE van = NEW.van AND state = 1 AND day >= date(NEW.arrived, 'unixepoch', '-1 day')
          AND day <= date(max(coalesce(NEW."left", 0), NEW.arrived + 43200), 'unixepoch', '+1 day');
END;
CREATE TRIGGER agg_dirty_visit_left AFTER UPDATE OF "left" ON stop_visits BEGIN
    UPDATE agg_days SET state = 0
        WHERE van = NEW.van AND state = 1 AND day >= date(NEW.arrived, 'unixepoch', '-1 day')
          AND day <= date(max(coalesce(NEW."left", 0), NEW.arrived + 43200), 'unixepoch', '+1 day');
END;
