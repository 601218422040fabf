-- 0009_vans: the hub's van registry. A van appears as 'new' when it first publishes
-- (shown to staff only); staff name it and make it 'public'; a 'retired' van leaves the
-- public page and API but its data stays in the reports. `tid` is the OwnTracks tracker
-- id (1-2 letters or digits, empty = the van's own). Times are Unix seconds (UTC).
CREATE TABLE vans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    tid TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'public', 'retired')),
    first_seen REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX vans_state ON vans (state);
-- Every van the hub already heard from is known, but not public until staff publish it.
INSERT INTO vans (id, first_seen, updated)
SELECT van, coalesce(last_seen, status_since, strftime('%s', 'now')),
       coalesce(last_seen, status_since, strftime('%s', 'now'))
FROM van_status WHERE van != '';
