-- Binary content out of the resource row (samhandling.platform.fhir.binaries). A Binary's
-- resource row and history row hold its JSON without `data`, tagged SUBSETTED; the bytes
-- are here, per version, in chunks, so a raw read streams them chunk by chunk and no
-- document sits whole in memory. A version's content is written once, in the transaction
-- that writes the version, and never changes; a deletion keeps its earlier versions'
-- content (vread and history still show them).

-- One row per Binary version that has content: its size and digests.
CREATE TABLE binary_content (
    id text NOT NULL,                        -- the Binary's id
    version integer NOT NULL,                -- the version holding this content
    size bigint NOT NULL,                    -- bytes
    sha1 bytea NOT NULL,                     -- 20 bytes (IHE MHD's Attachment.hash)
    sha256 bytea NOT NULL,                   -- 32 bytes
    chunks integer NOT NULL,                 -- binary_chunk rows: seq 0 .. chunks - 1
    PRIMARY KEY (id, version)
);

-- The bytes, in order; every chunk but the last is full (256 KiB when written).
CREATE TABLE binary_chunk (
    id text NOT NULL,
    version integer NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (id, version, seq)
);
