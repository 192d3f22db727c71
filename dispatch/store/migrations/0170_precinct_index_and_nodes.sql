-- The precinct index is built once, by the process that imports the boundaries, and
-- stored with its import: every node loads it in a fraction of a second instead of
-- rebuilding it (minutes and gigabytes for a national layer). Kept uncompressed
-- (STORAGE EXTERNAL): it is mostly float and int arrays, and compressing tens of
-- megabytes would slow the import's commit for little gain.
CREATE TABLE precinct_index_blobs (
    import_id  bigint PRIMARY KEY REFERENCES precinct_imports (id),
    index      bytea NOT NULL
);
ALTER TABLE precinct_index_blobs ALTER COLUMN index SET STORAGE EXTERNAL;

-- Which import each running node serves, and since when; seen_at is the node's
-- heartbeat. An import waits until every node seen lately serves it.
CREATE TABLE precinct_nodes (
    node       text PRIMARY KEY,
    import_id  bigint NOT NULL,
    loaded_at  timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);
