-- 0013_rollup: the fleet rollup (telemetry/rollup.py): the folded aggregates of all vans
-- summed per day, month and year, so the whole fleet's report pages read thousands of rows
-- instead of millions. Kept by the daily fold; a period is read from here only while it
-- is current (state 1) and no van has a stale day in it.
CREATE TABLE IF NOT EXISTS rollup_periods (
    period TEXT PRIMARY KEY,            -- a local day 'YYYY-MM-DD', a month 'YYYY-MM' or a year 'YYYY'
    state INTEGER NOT NULL DEFAULT 0    -- 1: rollup_sums holds its current sums; 0: to refresh
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS rollup_sums (
    period TEXT NOT NULL,
    grp TEXT NOT NULL,                  -- 'day', 'key' or 'stop' (see telemetry/rollup.py)
    metric TEXT NOT NULL,               -- an aggregates metric, or 'visits' (stop visits)
    key TEXT NOT NULL DEFAULT '',       -- 'key' rows: the aggregates' key
    name TEXT,                          -- 'stop' rows: the stop; NULL: not at a stop
    municipality TEXT,
    planned INTEGER,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rollup_sums_period ON rollup_sums (period, grp);

-- A hub that already folded days: every period with folded days is to be summed by the
-- next daily run (`vanbox prune`); until then the reports read the aggregates as before.
INSERT OR IGNORE INTO rollup_periods (period) SELECT DISTINCT day FROM agg_days WHERE state > 0;
INSERT OR IGNORE INTO rollup_periods (period)
    SELECT DISTINCT substr(day, 1, 7) FROM agg_days WHERE state > 0;
INSERT OR IGNORE INTO rollup_periods (period)
    SELECT DISTINCT substr(day, 1, 4) FROM agg_days WHERE state > 0;

-- A stop visit arriving late for a day already folded and pruned (a hub receiving an old
-- backlog) leaves agg_days as it is, but it counts among the day's stop visits: the
-- rollup of its day, month and year is summed again (telemetry/rollup.py).
CREATE TRIGGER IF NOT EXISTS rollup_visit_new AFTER INSERT ON stop_visits BEGIN
    UPDATE rollup_periods SET state = 0
        WHERE period IN (substr(NEW.day, 1, 4), substr(NEW.day, 1, 7), NEW.day);
END;
