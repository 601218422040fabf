-- What can never be stored: an MQTT message the hub cannot decode or store, an event the
-- box cannot write (a value no column takes), a GPS sentence with absurd numbers. Kept
-- aside with its reason so it never blocks what comes after it, counted on /status.
-- `source` says where it entered (mqtt, record, nmea, http); `payload` is cut to 4 KiB.
CREATE TABLE dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    van TEXT NOT NULL DEFAULT '',
    topic TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    payload BLOB
);
CREATE INDEX dead_letters_at ON dead_letters (at);
