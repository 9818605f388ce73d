-- Trust service (HelseID): signing keys, clients, delegations, one-time grants, replay cache.
-- Times are Unix seconds.
CREATE TABLE trust_signing_key (
    kid text PRIMARY KEY,
    alg text NOT NULL,
    public_jwk text NOT NULL,
    private_jwk bytea NOT NULL,          -- AES-GCM encrypted with the platform secret
    created_at bigint NOT NULL,
    retire_at bigint                     -- NULL: current; else published until then
);
CREATE TABLE trust_client (
    client_id text PRIMARY KEY,
    document text NOT NULL,              -- the client's configuration (JSON)
    enabled boolean NOT NULL DEFAULT true,
    created_at bigint NOT NULL
);
CREATE TABLE trust_delegation (          -- Altinn-style: parent organisation -> supplier
    parent_orgnr text NOT NULL,
    supplier_orgnr text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (parent_orgnr, supplier_orgnr)
);
CREATE TABLE trust_grant (               -- pushed authorization requests, codes, refresh tokens
    handle bytea PRIMARY KEY,            -- SHA-256 of the secret the client holds
    kind text NOT NULL,
    client_id text NOT NULL,
    family text,                         -- refresh tokens of one sign-in (revoked together)
    document text NOT NULL,
    expires_at bigint NOT NULL,
    used_at bigint
);
CREATE INDEX trust_grant_family ON trust_grant (family) WHERE family IS NOT NULL;
CREATE INDEX trust_grant_expiry ON trust_grant (expires_at);
-- JWT ids seen (client assertions, DPoP proofs): no WAL, entries live for seconds
CREATE UNLOGGED TABLE auth_replay (
    key bytea PRIMARY KEY,
    expires_at bigint NOT NULL
);
