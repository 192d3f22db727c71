-- A national layer's boundaries are tens of megabytes of coordinates. Compressing them
-- (pglz, the default for jsonb) took PostgreSQL about as long again as parsing them,
-- half of an import's writes (1.3 -> 0.7 s for 3,231 counties with a million vertices),
-- and every read of them paid to decompress. Coordinates compress poorly anyway.
ALTER TABLE precincts ALTER COLUMN geometry SET STORAGE EXTERNAL;
