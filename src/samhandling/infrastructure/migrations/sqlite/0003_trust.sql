-- Trust service (HelseID): signing keys, clients, delegations, one-time grants.
-- Times are Unix seconds.
CREATE TABLE trust_signing_key (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_jwk BLOB NOT NULL,           -- AES-GCM encrypted with the platform secret
    created_at INTEGER NOT NULL,
    retire_at INTEGER                    -- NULL: current; else published until then
);
CREATE TABLE trust_client (
    client_id TEXT PRIMARY KEY,
    document TEXT NOT NULL,              -- the client's configuration (JSON)
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE TABLE trust_delegation (          -- Altinn-style: parent organisation -> supplier
    parent_orgnr TEXT NOT NULL,
    supplier_orgnr TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (parent_orgnr, supplier_orgnr)
);
CREATE TABLE trust_grant (               -- pushed authorization requests, codes, refresh tokens
    handle BLOB PRIMARY KEY,             -- SHA-256 of the secret the client holds
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    family TEXT,                         -- refresh tokens of one sign-in (revoked together)
    document TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX trust_grant_family ON trust_grant (family) WHERE family IS NOT NULL;
CREATE INDEX trust_grant_expiry ON trust_grant (expires_at);
