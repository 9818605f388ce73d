-- The audit trail (samhandling.platform.audit): one row per access to personal health
-- information, append-only and hash-chained. Every process writes its own chains; each
-- row's hash is an HMAC (key derived from the platform secret) over the previous row's hash,
-- the chain id, the position, the recorded time, the persons concerned and the record JSON,
-- so verification (`samhandling audit verify`) detects any edited, inserted or removed row.
-- Times are microseconds since the Unix epoch, UTC.

-- The chains and their heads. seq numbers the chains in the order they were registered and
-- link chains the registrations (HMAC over the previous registration's link, seq, chain_id,
-- created), so a removed chain is detected. The head (last_position, last_hash) is updated
-- in the transaction that appends; head_mac authenticates it, so removing a chain's newest
-- rows is detected even when the head is moved back with them.
CREATE TABLE audit_chain (
    chain_id TEXT PRIMARY KEY,              -- random, made by the process that writes it
    seq INTEGER NOT NULL UNIQUE,            -- registration order: 1, 2, 3, ...
    created INTEGER NOT NULL,
    link BLOB NOT NULL,
    last_position INTEGER NOT NULL,         -- 0 until the first row
    last_hash BLOB NOT NULL,                -- the newest row's hash (32 zero bytes at first)
    head_mac BLOB NOT NULL                  -- HMAC over chain_id, last_position, last_hash
);

-- One row per audit record. id is the global order (citizens' and auditors' paging);
-- (chain_id, position) the place in its chain, positions consecutive from 1.
CREATE TABLE audit_record (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused, even after the newest is deleted
    chain_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    recorded INTEGER NOT NULL,
    service TEXT NOT NULL,                  -- whose data: registries, fhir, kjernejournal, ...
    emergency INTEGER NOT NULL,             -- 1: emergency access (AKUTT), to be followed up
    record BLOB NOT NULL,                   -- AuditRecord.to_json(): the exact bytes hashed
    prev_hash BLOB NOT NULL,                -- the previous row's hash (32 zero bytes first)
    hash BLOB NOT NULL,
    UNIQUE (chain_id, position)
);
CREATE INDEX audit_record_recorded ON audit_record (recorded);
CREATE INDEX audit_record_emergency ON audit_record (id) WHERE emergency = 1;

-- The persons each record concerns (its distinct `patients`), clustered by person for the
-- citizen's access log: "records concerning person X between t1 and t2, newest first".
CREATE TABLE audit_patient (
    person TEXT NOT NULL,                   -- fødselsnummer / D-number, or Patient/<id>
    record_id INTEGER NOT NULL,
    recorded INTEGER NOT NULL,              -- the record's time, to filter without a join
    PRIMARY KEY (person, record_id)
) WITHOUT ROWID;
CREATE INDEX audit_patient_record ON audit_patient (record_id);

-- Append-only: rows are never changed or removed, and a chain head only moves forward.
-- (Someone with the database file can drop these triggers, or write with INSERT OR REPLACE;
-- the hash chains still detect what they change.)
CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record
BEGIN SELECT RAISE(ABORT, 'audit_record is append-only'); END;
CREATE TRIGGER audit_record_no_delete BEFORE DELETE ON audit_record
BEGIN SELECT RAISE(ABORT, 'audit_record is append-only'); END;
CREATE TRIGGER audit_patient_no_update BEFORE UPDATE ON audit_patient
BEGIN SELECT RAISE(ABORT, 'audit_patient is append-only'); END;
CREATE TRIGGER audit_patient_no_delete BEFORE DELETE ON audit_patient
BEGIN SELECT RAISE(ABORT, 'audit_patient is append-only'); END;
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only'); END;
CREATE TRIGGER audit_chain_forward_only BEFORE UPDATE ON audit_chain
WHEN NEW.chain_id IS NOT OLD.chain_id OR NEW.seq IS NOT OLD.seq
    OR NEW.created IS NOT OLD.created OR NEW.link IS NOT OLD.link
    OR NEW.last_position <= OLD.last_position
BEGIN SELECT RAISE(ABORT, 'an audit_chain head only moves forward'); END;
