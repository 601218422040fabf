-- 0011_contacts: anonymous counselling contacts recorded by staff (telemetry/contacts.py,
-- kiosk/staff_contacts.py). One row per contact, the same uuid on box and hub (it syncs
-- like every other event, exactly once). No name, no free text, no location: the time is
-- rounded down to the full hour and the place is a municipality (or 'outside').
CREATE TABLE IF NOT EXISTS contacts (
    id TEXT PRIMARY KEY,          -- uuid, same id on box and hub (exactly once)
    van TEXT NOT NULL,
    ts REAL NOT NULL,             -- epoch seconds, rounded DOWN to the full hour
    day TEXT NOT NULL,            -- local date YYYY-MM-DD
    hour INTEGER NOT NULL,        -- local hour 0..23
    kind TEXT NOT NULL,           -- contact kind code (cfg.contacts["kinds"])
    topics TEXT NOT NULL,         -- JSON list of topic codes (same codes as check-ins)
    duration TEXT NOT NULL,       -- band: 'lt15' | '15-30' | '30-60' | 'gt60'
    age_group TEXT NOT NULL,      -- same codes as check-ins (incl. under-15 / over-27 / not said)
    municipality TEXT NOT NULL,   -- one name of cfg.reports["municipalities"] or 'outside'
    first_contact INTEGER NOT NULL, -- 1 first contact, 0 repeat
    persons INTEGER NOT NULL DEFAULT 1, -- people reached (a group offer counts each person), 1..50
    referrals TEXT NOT NULL,      -- JSON list of partner codes (cfg.contacts["partners"]), may be []
    outcome TEXT NOT NULL         -- outcome code (cfg.contacts["outcomes"])
);
CREATE INDEX IF NOT EXISTS contacts_van_day ON contacts (van, day);
