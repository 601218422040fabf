-- 0006_fleet_plans: each van's tour plan, one row per saved version (telemetry/plan.py).
-- The hub writes a new version for every staff change and publishes it retained on
-- <prefix>/<van>/plan; the box stores each newer version it receives. `body` is the
-- plan's JSON (Plan.to_json), the same text as the MQTT payload.
CREATE TABLE plans (
    van TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated REAL NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (van, version)
);
