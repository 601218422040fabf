-- 0010_feeds: where each of the hub's outgoing feeds stands (hub/owntracks.py: the
-- OwnTracks view; hub/forward.py: Traccar and webhook). `mark` is the rowid of the last
-- position handed on (positions are only ever appended, so a larger rowid is a later
-- arrival); a feed resumes from it after a restart or an outage of its receiver.
CREATE TABLE IF NOT EXISTS feed_marks (
    feed TEXT PRIMARY KEY,
    mark INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
-- What a feed sent that is no position (stop visit transitions: "<visit id>:enter",
-- "<visit id>:leave"), so each goes out once although a visit's row is updated on leaving.
CREATE TABLE IF NOT EXISTS feed_sent (
    feed TEXT NOT NULL,
    item TEXT NOT NULL,
    sent REAL NOT NULL,
    PRIMARY KEY (feed, item)
) WITHOUT ROWID;
