-- Listings show only jobs in our format (a JSON `job_state`), not RuQi 1.x rows that could not
-- be adopted. `ruqi_format` says which a row is, computed by the database from `job_state`
-- itself (so rows written by any program are classified), and indexed with `c_time`: a page
-- of the job list and its `total` are index reads, not a scan of every `job_state`.
-- `hex()` because SQLite builds differ on whether LIKE matches a BLOB.
ALTER TABLE ruqi_jobs ADD COLUMN ruqi_format INTEGER GENERATED ALWAYS AS (hex(substr(job_state, 1, 1)) = '7B') VIRTUAL;
CREATE INDEX IF NOT EXISTS ruqijobs_format_c_time ON ruqi_jobs (ruqi_format, c_time);
