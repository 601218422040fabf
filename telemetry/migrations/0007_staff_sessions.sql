-- 0007_staff_sessions: staff sessions, login failures and the web secret live in the
-- database, not in one web process's memory, so a restart keeps staff logged in and
-- any number of web processes (box, hub, a second hub worker) share them.

-- One row per open staff session. `id_hash` is SHA-256 of the random session id; the id
-- itself exists only in the browser's signed cookie, so a copy of the database logs
-- nobody in. `pwid` is a fingerprint of the login's password hash (a new password ends
-- the session). `seen` is the last request of the person (idle timeout).
CREATE TABLE staff_sessions (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    pwid TEXT NOT NULL,
    created REAL NOT NULL,
    seen REAL NOT NULL
);
CREATE INDEX staff_sessions_seen ON staff_sessions (seen);
CREATE INDEX staff_sessions_user ON staff_sessions (user);

-- Failed logins per (login name, client address); name '*' counts every name one client
-- tried. `failures` within the window since `first`; `locked_until` > now means locked;
-- `strikes` counts the lockouts in a row (each one lasts twice as long, up to 8x).
CREATE TABLE staff_failures (
    name TEXT NOT NULL,
    client TEXT NOT NULL,
    failures INTEGER NOT NULL,
    first REAL NOT NULL,
    last REAL NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0,
    strikes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, client)
);
CREATE INDEX staff_failures_last ON staff_failures (last);

-- Secrets of the web tier made once and shared by every process on this database:
-- 'session_key' signs the session and CSRF cookies when kiosk.secret_key_file is "".
CREATE TABLE web_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
);
