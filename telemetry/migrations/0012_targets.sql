-- 0012_targets: the balanced scorecard's yearly targets (telemetry/targets.py, shown at
-- /staff/scorecard by kiosk/staff_scorecard.py). Targets are versioned by year: one row per
-- (year, van, figure). `van` is a van id, or '' for all vans together (the hub's fleet).
-- `code` names the figure: a built-in one (telemetry/scorecard.py: FIGURES, e.g.
-- 'contacts', 'punctuality'), 'referrals-<partner code>', or 'custom-<slug>' for a target
-- staff defined themselves (its name and unit are in `label` and `unit`, its monthly
-- actual figures in target_actuals). Times are Unix seconds (UTC).
CREATE TABLE IF NOT EXISTS targets (
    year INTEGER NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    van TEXT NOT NULL,
    code TEXT NOT NULL,
    value REAL NOT NULL CHECK (value >= 0),
    profile TEXT,                     -- JSON list of 12 monthly weights; NULL = pro rata by days
    label TEXT NOT NULL DEFAULT '',   -- custom targets: the name staff gave it
    unit TEXT NOT NULL DEFAULT '',    -- custom targets: the unit
    lower_better INTEGER NOT NULL DEFAULT 0 CHECK (lower_better IN (0, 1)),
    updated REAL NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (year, van, code)
) WITHOUT ROWID;

-- Custom targets: the actual figure of each month, entered by staff.
CREATE TABLE IF NOT EXISTS target_actuals (
    year INTEGER NOT NULL,
    van TEXT NOT NULL,
    code TEXT NOT NULL,
    month INTEGER NOT NULL CHECK (month BETWEEN 1 AND 12),
    value REAL NOT NULL CHECK (value >= 0),
    updated REAL NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (year, van, code, month)
) WITHOUT ROWID;

-- Every change to a target or an actual figure: who, when, what, old -> new (text as shown
-- to staff; NULL = not set). Never updated or deleted by the application.
CREATE TABLE IF NOT EXISTS target_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user TEXT NOT NULL,
    year INTEGER NOT NULL,
    van TEXT NOT NULL,
    code TEXT NOT NULL,
    field TEXT NOT NULL,              -- value | profile | label | unit | lower_better | target | actual-MM
    old TEXT,
    new TEXT
);
CREATE INDEX IF NOT EXISTS target_log_year ON target_log (year, van, id);

-- The scorecard reads a year of contacts per month: everything it needs from one index
-- (a covering index: 50,000 contacts in about a tenth of the time of the table lookups).
CREATE INDEX IF NOT EXISTS contacts_scorecard
    ON contacts (van, day, ts, municipality, first_contact, persons, referrals);
