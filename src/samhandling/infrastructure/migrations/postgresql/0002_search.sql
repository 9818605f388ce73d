-- Search: a compact integer key (rid) for every resource, the index tables search reads, and
-- the resumable reindex jobs. Index rows are keyed by rid and pid (a 63-bit hash of
-- "Base.code" naming the search parameter); grp ties together the components of one
-- composite value. Dates are inclusive [low, high] in microseconds since the epoch (UTC).
-- Text columns compared by prefix or order use the C collation, so ranges and byte order
-- agree with SQLite; reference targets keep the default one, as they join resource (type, id).
ALTER TABLE resource ADD COLUMN rid bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX resource_rid ON resource (rid);
CREATE INDEX resource_type_rid ON resource (type, rid);
CREATE INDEX resource_type_updated ON resource (type, last_updated);

CREATE TABLE search_string (
    rid bigint NOT NULL, pid bigint NOT NULL, grp integer,
    value text COLLATE "C" NOT NULL,
    exact text COLLATE "C" NOT NULL
);
CREATE INDEX search_string_value ON search_string (pid, value, rid);
CREATE INDEX search_string_rid ON search_string (rid, pid);

CREATE TABLE search_token (
    rid bigint NOT NULL, pid bigint NOT NULL, grp integer,
    system text COLLATE "C", code text COLLATE "C",
    text text COLLATE "C"
);
CREATE INDEX search_token_code ON search_token (pid, code, rid);
CREATE INDEX search_token_rid ON search_token (rid, pid);

CREATE TABLE search_reference (
    rid bigint NOT NULL, pid bigint NOT NULL, grp integer,
    target_type text, target_id text,   -- the collation of resource (type, id): joins use its key
    url text COLLATE "C"
);
CREATE INDEX search_reference_target ON search_reference (pid, target_id, rid);
CREATE INDEX search_reference_url ON search_reference (pid, url) WHERE url IS NOT NULL;
CREATE INDEX search_reference_rid ON search_reference (rid, pid);

CREATE TABLE search_date (
    rid bigint NOT NULL, pid bigint NOT NULL, grp integer,
    low bigint NOT NULL, high bigint NOT NULL
);
CREATE INDEX search_date_low ON search_date (pid, low, high);
CREATE INDEX search_date_high ON search_date (pid, high);
CREATE INDEX search_date_rid ON search_date (rid, pid);

CREATE TABLE search_number (
    rid bigint NOT NULL, pid bigint NOT NULL, grp integer,
    value double precision NOT NULL
);
CREATE INDEX search_number_value ON search_number (pid, value);
CREATE INDEX search_number_rid ON search_number (rid, pid);

CREATE TABLE search_quantity (
    rid bigint NOT NULL, pid bigint NOT NULL, grp integer,
    value double precision NOT NULL, system text COLLATE "C", code text COLLATE "C",
    canon_value double precision, canon_code text COLLATE "C"
);
CREATE INDEX search_quantity_value ON search_quantity (pid, value);
CREATE INDEX search_quantity_canon ON search_quantity (pid, canon_code, canon_value);
CREATE INDEX search_quantity_rid ON search_quantity (rid, pid);

CREATE TABLE search_uri (
    rid bigint NOT NULL, pid bigint NOT NULL, grp integer,
    uri text COLLATE "C" NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (pid, uri, rid);
CREATE INDEX search_uri_rid ON search_uri (rid, pid);

CREATE TABLE reindex_job (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason text NOT NULL,
    resource_types text NOT NULL,
    status text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    last_rid bigint NOT NULL DEFAULT 0,
    max_rid bigint,
    processed bigint NOT NULL DEFAULT 0,
    total bigint,
    error text
);
INSERT INTO reindex_job (reason, resource_types, status)
    SELECT 'migration 0002: index existing resources', '*', 'pending'
    WHERE EXISTS (SELECT 1 FROM resource);
