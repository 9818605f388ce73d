-- Current version of every resource, as the exact JSON bytes served to clients.
CREATE TABLE resource (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,          -- microseconds since the Unix epoch, UTC
    deleted INTEGER NOT NULL DEFAULT 0,     -- 1: the current version is a tombstone
    content BLOB,                           -- NULL for tombstones
    PRIMARY KEY (type, id)
);

-- Every version, including tombstones; seq gives one global order for history paging.
CREATE TABLE resource_history (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method TEXT NOT NULL,                   -- POST, PUT, PATCH or DELETE
    content BLOB,
    UNIQUE (type, id, version)
);

CREATE INDEX resource_history_type_seq ON resource_history (type, seq);
CREATE INDEX resource_history_last_updated ON resource_history (last_updated);
