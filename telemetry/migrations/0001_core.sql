-- Core schema: events (positions, footfall, check-ins, stop visits) and the outbox.
-- Times are Unix seconds (UTC); `day` and `hour` are local (config timezone), fixed when the
-- event is recorded, so reports group by them without time-zone arithmetic in SQL.
CREATE TABLE positions (
    id TEXT PRIMARY KEY,
    van TEXT NOT NULL,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    mode INTEGER NOT NULL,
    alt REAL,
    speed REAL,
    track REAL,
    hdop REAL,
    sats INTEGER,
    suspect INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX positions_van_ts ON positions (van, ts);

CREATE TABLE footfall (
    id TEXT PRIMARY KEY,
    van TEXT NOT NULL,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    hour INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sensor TEXT NOT NULL,
    occupancy INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX footfall_van_day ON footfall (van, day);
CREATE INDEX footfall_van_ts ON footfall (van, ts);

CREATE TABLE checkins (
    id TEXT PRIMARY KEY,
    van TEXT NOT NULL,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    hour INTEGER NOT NULL,
    age_group TEXT NOT NULL,
    topics TEXT NOT NULL,          -- JSON list of topic codes
    first_visit INTEGER,           -- 1, 0 or NULL (not said)
    heard_from TEXT,
    language TEXT
);
CREATE INDEX checkins_van_day ON checkins (van, day);
CREATE INDEX checkins_van_ts ON checkins (van, ts);

CREATE TABLE stop_visits (
    id TEXT PRIMARY KEY,
    van TEXT NOT NULL,
    arrived REAL NOT NULL,
    "left" REAL,
    day TEXT NOT NULL,
    name TEXT NOT NULL,
    municipality TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    planned INTEGER NOT NULL
);
CREATE INDEX stop_visits_van_arrived ON stop_visits (van, arrived);

-- What still has to be published. A row is deleted when its PUBACK arrives.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    priority INTEGER NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX outbox_order ON outbox (priority, seq);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value
);
