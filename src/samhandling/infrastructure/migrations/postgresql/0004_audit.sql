-- The audit trail (samhandling.platform.audit): one row per access to personal health
-- information, append-only and hash-chained. Every process writes its own chains; each
-- row's hash is an HMAC (key derived from the platform secret) over the previous row's hash,
-- the chain id, the position, the recorded time, the persons concerned and the record JSON,
-- so verification (`samhandling audit verify`) detects any edited, inserted or removed row.

-- The chains and their heads. seq numbers the chains in the order they were registered and
-- link chains the registrations (HMAC over the previous registration's link, seq, chain_id,
-- created), so a removed chain is detected. The head (last_position, last_hash) is locked
-- (SELECT ... FOR UPDATE) and updated in the transaction that appends; head_mac
-- authenticates it, so removing a chain's newest rows is detected even when the head is
-- moved back with them.
CREATE TABLE audit_chain (
    chain_id text PRIMARY KEY,               -- random, made by the process that writes it
    seq bigint NOT NULL UNIQUE,              -- registration order: 1, 2, 3, ...
    created timestamptz NOT NULL,
    link bytea NOT NULL,
    last_position bigint NOT NULL,           -- 0 until the first row
    last_hash bytea NOT NULL,                -- the newest row's hash (32 zero bytes at first)
    head_mac bytea NOT NULL                  -- HMAC over chain_id, last_position, last_hash
);

-- One row per audit record. id is the global order (citizens' and auditors' paging);
-- (chain_id, position) the place in its chain, positions consecutive from 1.
CREATE TABLE audit_record (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id text NOT NULL,
    position bigint NOT NULL,
    recorded timestamptz NOT NULL,
    service text NOT NULL,                   -- whose data: registries, fhir, kjernejournal, ...
    emergency boolean NOT NULL,              -- emergency access (AKUTT), to be followed up
    record bytea NOT NULL,                   -- AuditRecord.to_json(): the exact bytes hashed
    prev_hash bytea NOT NULL,                -- the previous row's hash (32 zero bytes first)
    hash bytea NOT NULL,
    UNIQUE (chain_id, position)
);
CREATE INDEX audit_record_recorded ON audit_record (recorded);
CREATE INDEX audit_record_emergency ON audit_record (id) WHERE emergency;

-- The persons each record concerns (its distinct `patients`), keyed by person for the
-- citizen's access log: "records concerning person X between t1 and t2, newest first".
CREATE TABLE audit_patient (
    person text NOT NULL,                    -- fødselsnummer / D-number, or Patient/<id>
    record_id bigint NOT NULL,
    recorded timestamptz NOT NULL,           -- the record's time, to filter without a join
    PRIMARY KEY (person, record_id)
);
CREATE INDEX audit_patient_record ON audit_patient (record_id);

-- Append-only: rows are never changed or removed (TRUNCATE included), and a chain head
-- only moves forward. (A database administrator can drop these triggers; the hash chains
-- still detect what they change.)
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE FUNCTION audit_chain_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.chain_id IS DISTINCT FROM OLD.chain_id OR NEW.seq IS DISTINCT FROM OLD.seq
        OR NEW.created IS DISTINCT FROM OLD.created OR NEW.link IS DISTINCT FROM OLD.link
        OR NEW.last_position <= OLD.last_position THEN
        RAISE EXCEPTION 'an audit_chain head only moves forward'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_patient_append_only BEFORE UPDATE OR DELETE ON audit_patient
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_patient_no_truncate BEFORE TRUNCATE ON audit_patient
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_forward_only BEFORE UPDATE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_forward_only();
