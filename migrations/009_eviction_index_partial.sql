-- The eviction index (tenant_id, last_hit_at) was also a candidate for the cache lookup. On a
-- table of a few hundred rows, its tenant-only probe and the primary key's four-column probe
-- could both come out at one row, and the smaller index won: the lookup then read every row of
-- the tenant for each key asked for (bench miss: 0.95-1.08 ms a lookup at 8 connections).
-- A partial index serves only the queries that state its predicate: the eviction walk does
-- (`hits >= 0` holds for every row), the lookup does not.
CREATE INDEX embeddings_evict ON embeddings (tenant_id, last_hit_at) WHERE hits >= 0;
DROP INDEX embeddings_tenant_last_hit;
