-- Search: a compact integer key (rid) for every resource, the index tables search reads, and
-- the resumable reindex jobs. Index rows are keyed by rid and pid (a 63-bit hash of
-- "Base.code" naming the search parameter); grp ties together the components of one
-- composite value. Dates are inclusive [low, high] in microseconds since the epoch (UTC).
CREATE TABLE resource_new (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    content BLOB,
    UNIQUE (type, id)
);
INSERT INTO resource_new (type, id, version, last_updated, deleted, content)
    SELECT type, id, version, last_updated, deleted, content FROM resource ORDER BY rowid;
DROP TABLE resource;
ALTER TABLE resource_new RENAME TO resource;
CREATE INDEX resource_type ON resource (type);
CREATE INDEX resource_type_updated ON resource (type, last_updated);

CREATE TABLE search_string (
    rid INTEGER NOT NULL, pid INTEGER NOT NULL, grp INTEGER,
    value TEXT NOT NULL,        -- case- and accent-folded
    exact TEXT NOT NULL
);
CREATE INDEX search_string_value ON search_string (pid, value, rid);
CREATE INDEX search_string_rid ON search_string (rid, pid);

CREATE TABLE search_token (
    rid INTEGER NOT NULL, pid INTEGER NOT NULL, grp INTEGER,
    system TEXT, code TEXT,
    text TEXT                   -- folded display / text, for :text
);
CREATE INDEX search_token_code ON search_token (pid, code, rid);
CREATE INDEX search_token_rid ON search_token (rid, pid);

CREATE TABLE search_reference (
    rid INTEGER NOT NULL, pid INTEGER NOT NULL, grp INTEGER,
    target_type TEXT, target_id TEXT,   -- a literal reference on this server
    url TEXT                            -- an absolute, urn or canonical reference
);
CREATE INDEX search_reference_target ON search_reference (pid, target_id, rid);
CREATE INDEX search_reference_url ON search_reference (pid, url) WHERE url IS NOT NULL;
CREATE INDEX search_reference_rid ON search_reference (rid, pid);

CREATE TABLE search_date (
    rid INTEGER NOT NULL, pid INTEGER NOT NULL, grp INTEGER,
    low INTEGER NOT NULL, high INTEGER NOT NULL
);
CREATE INDEX search_date_low ON search_date (pid, low, high);
CREATE INDEX search_date_high ON search_date (pid, high);
CREATE INDEX search_date_rid ON search_date (rid, pid);

CREATE TABLE search_number (
    rid INTEGER NOT NULL, pid INTEGER NOT NULL, grp INTEGER,
    value REAL NOT NULL
);
CREATE INDEX search_number_value ON search_number (pid, value);
CREATE INDEX search_number_rid ON search_number (rid, pid);

CREATE TABLE search_quantity (
    rid INTEGER NOT NULL, pid INTEGER NOT NULL, grp INTEGER,
    value REAL NOT NULL, system TEXT, code TEXT,
    canon_value REAL, canon_code TEXT   -- UCUM-normalised, when the unit is understood
);
CREATE INDEX search_quantity_value ON search_quantity (pid, value);
CREATE INDEX search_quantity_canon ON search_quantity (pid, canon_code, canon_value);
CREATE INDEX search_quantity_rid ON search_quantity (rid, pid);

CREATE TABLE search_uri (
    rid INTEGER NOT NULL, pid INTEGER NOT NULL, grp INTEGER,
    uri TEXT NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (pid, uri, rid);
CREATE INDEX search_uri_rid ON search_uri (rid, pid);

-- Resumable (re)indexing: resources with rid in (last_rid, max_rid] are still to do.
CREATE TABLE reindex_job (
    id INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    resource_types TEXT NOT NULL,       -- comma-separated, or * for every type
    status TEXT NOT NULL,               -- pending, running, done, failed
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    last_rid INTEGER NOT NULL DEFAULT 0,
    max_rid INTEGER,
    processed INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    error TEXT
);
-- Resources stored before search existed have no index rows yet.
INSERT INTO reindex_job (reason, resource_types, status, created, updated)
    SELECT 'migration 0002: index existing resources', '*', 'pending',
           CAST(strftime('%s', 'now') AS INTEGER) * 1000000,
           CAST(strftime('%s', 'now') AS INTEGER) * 1000000
    WHERE EXISTS (SELECT 1 FROM resource);
