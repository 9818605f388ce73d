-- Binary content out of the resource row (samhandling.platform.fhir.binaries). A Binary's
-- resource row and history row hold its JSON without `data`, tagged SUBSETTED; the bytes
-- are here, per version, in chunks, so a raw read streams them chunk by chunk and no
-- document sits whole in memory. A version's content is written once, in the transaction
-- that writes the version, and never changes; a deletion keeps its earlier versions'
-- content (vread and history still show them).

-- One row per Binary version that has content: its size and digests.
CREATE TABLE binary_content (
    id TEXT NOT NULL,                       -- the Binary's id
    version INTEGER NOT NULL,               -- the version holding this content
    size INTEGER NOT NULL,                  -- bytes
    sha1 BLOB NOT NULL,                     -- 20 bytes (IHE MHD's Attachment.hash)
    sha256 BLOB NOT NULL,                   -- 32 bytes
    chunks INTEGER NOT NULL,                -- binary_chunk rows: seq 0 .. chunks - 1
    PRIMARY KEY (id, version)
) WITHOUT ROWID;

-- The bytes, in order; every chunk but the last is full (256 KiB when written).
CREATE TABLE binary_chunk (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (id, version, seq)
);
