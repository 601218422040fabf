-- What SQLite has and PostgreSQL lacks, so the callers' SQL runs on both (applied on every
-- open, before the migrations; every statement may run again).

-- hub/ingest.py asks whether a table exists the SQLite way.
CREATE OR REPLACE VIEW sqlite_master AS
SELECT CASE c.relkind WHEN 'i' THEN 'index' WHEN 'v' THEN 'view' ELSE 'table' END AS type,
       c.relname::text AS name, c.relname::text AS tbl_name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'i');

-- round(real, digits): PostgreSQL has it for numeric only.
CREATE OR REPLACE FUNCTION round(double precision, integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT round($1::numeric, $2)::double precision';

-- SQLite's date(epoch seconds, 'unixepoch', modifier): the UTC date as text, moved by a
-- number of days ('-1 day', '+1 day').
CREATE OR REPLACE FUNCTION vanbox_utc_date(double precision, integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$SELECT to_char((to_timestamp($1) AT TIME ZONE 'UTC') + make_interval(days => $2),
                        'YYYY-MM-DD')$$;
