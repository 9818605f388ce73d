-- Current version of every resource, as the exact JSON bytes served to clients.
CREATE TABLE resource (
    type text NOT NULL,
    id text NOT NULL,
    version integer NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,  -- true: the current version is a tombstone
    content bytea,                            -- NULL for tombstones
    PRIMARY KEY (type, id)
);

-- Every version, including tombstones; seq gives one global order for history paging.
CREATE TABLE resource_history (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type text NOT NULL,
    id text NOT NULL,
    version integer NOT NULL,
    last_updated timestamptz NOT NULL,
    method text NOT NULL,                     -- POST, PUT, PATCH or DELETE
    content bytea,
    UNIQUE (type, id, version)
);

CREATE INDEX resource_history_type_seq ON resource_history (type, seq);
CREATE INDEX resource_history_last_updated ON resource_history (last_updated);
