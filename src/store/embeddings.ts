import type { CacheScope, HitCount, NewRow, StoredVector } from '../core/domain.js';
import type { Sql } from './db.js';

/** All requested hashes of one scope in one round trip, across the given tenants (own + public). */
export async function lookupVectors(
  sql: Sql,
  tenantIds: number[],
  scope: CacheScope,
  hashes: Buffer[],
): Promise<StoredVector[]> {
  const rows = await lookupQuery(sql, tenantIds, scope, hashes);
  return rows.map((r) => ({ tenantId: Number(r.tenant_id), inputHash: r.input_hash, vector: r.vector, tokens: r.tokens }));
}

/**
 * The lookup: one primary-key probe per (tenant, hash), a nested loop over every key asked for.
 * All four key columns come from the unnest, model and version repeated: as constants they
 * are estimated from the table's statistics, and where those put the scope at ~1 row (a model
 * version the last ANALYZE never saw, a table analysed while empty) the planner read the whole
 * scope and filtered it; as `= ANY` the same held for a tenant (139 ms a lookup at 20k rows).
 * Joined on the whole key, the table is costed at its real size: probes unless it is tiny.
 * Exported for test/store-plan.test.ts.
 */
export function lookupQuery(sql: Sql, tenantIds: number[], scope: CacheScope, hashes: Buffer[]) {
  const n = tenantIds.length * hashes.length;
  const keyTenants = new Array<number>(n);
  const keyHashes = new Array<Buffer>(n);
  let i = 0;
  for (const t of tenantIds) {
    for (const h of hashes) {
      keyTenants[i] = t;
      keyHashes[i++] = h;
    }
  }
  return sql<{ tenant_id: string; input_hash: Buffer; vector: Buffer; tokens: number }[]>`
    SELECT e.tenant_id, e.input_hash, e.vector, e.tokens
    FROM unnest(${keyTenants}::bigint[], ${new Array<string>(n).fill(scope.model)}::text[],
                ${new Array<string>(n).fill(scope.modelVersion)}::text[], ${sql.array(keyHashes, 17)}) AS k(t, m, v, h)
    JOIN embeddings e ON e.tenant_id = k.t AND e.model = k.m AND e.model_version = k.v AND e.input_hash = k.h`;
}

/** Rows written by this process at which `embeddings` is analysed (autovacuum's 10 % rule takes over later). */
const ANALYZE_AT = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
const written = new WeakMap<Sql, number>();

/**
 * Counts rows this process wrote and analyses `embeddings` when the count crosses a step of
 * ANALYZE_AT: statistics never lag the table by more than 10x, whether or not autovacuum runs
 * (PGlite has none) or has got to it yet. The first rows this process writes also analyse a
 * table with rows and no statistics (a fresh database): until then every condition is a 1-row
 * guess. At most six ANALYZEs per process, off the hot path.
 */
export async function noteRowsWritten(sql: Sql, count: number): Promise<void> {
  const before = written.get(sql) ?? 0;
  const after = before + count;
  written.set(sql, after);
  if (ANALYZE_AT.some((step) => before < step && after >= step)) await analyse(sql);
  else if (before === 0 && after > 0) await analyseIfNoStatistics(sql);
}

/**
 * Analyses `embeddings` when it holds rows but has no statistics: never analysed (fresh,
 * restored, or loaded by another tool), or analysed only while empty. Without them every
 * condition is a guess of ~1 row.
 */
export async function analyseIfNoStatistics(sql: Sql): Promise<boolean> {
  const [r] = await sql<{ due: boolean }[]>`
    SELECT NOT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'embeddings' AND attname = 'tenant_id')
      AND EXISTS (SELECT 1 FROM embeddings) AS due`;
  if (!r?.due) return false;
  await analyse(sql);
  return true;
}

/**
 * ANALYZE on a sample of 3k rows rather than the default 30k. The sample holds whole rows, and
 * a 1536-d row is 6 KB inline: the default took 180 MB, which the embedded store's wasm heap
 * keeps for good (+155 MB of RSS at the 100k-row ANALYZE, bench ingest). The lookup's plan needs
 * only the distinct counts, and autovacuum analyses on its own settings where it runs.
 */
async function analyse(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SET LOCAL default_statistics_target = 10`;
    await tx`ANALYZE embeddings`;
  });
}

/**
 * Writes new rows in one round trip; a row already there (a concurrent writer) is kept, and
 * rows of a tenant deleted meanwhile are dropped (the join), as are rows computed before a
 * clear (their cache epoch is behind the tenant's), so a late write cannot resurrect a cache.
 * FOR SHARE orders it with a concurrent clear or deletion (which update or delete the tenant
 * row): either the insert commits first and the clear deletes its rows, or it waits and then
 * sees the new epoch (or no tenant) and writes nothing.
 * The vectors travel as one bytea, cut by offset in SQL: postgres.js sends parameters as text,
 * and a bytea[] of N vectors is N quoted hex strings that the server's array parser walks
 * character by character (the bulk of an insert's CPU on the embedded store); one bytea is one
 * hex string. One statement shape for any row count: prepared once per connection.
 */
export async function insertVectors(sql: Sql, rows: NewRow[]): Promise<void> {
  if (rows.length === 0) return;
  const offsets = new Array<number>(rows.length);
  const lengths = new Array<number>(rows.length);
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    offsets[i] = at;
    lengths[i] = rows[i].vector.length;
    at += lengths[i];
  }
  const vectors = Buffer.concat(rows.map((r) => r.vector), at);
  const r = await sql`
    INSERT INTO embeddings (tenant_id, model, model_version, input_hash, dims, vector, tokens)
    SELECT v.t, v.m, v.mv, v.h, v.len / 4, substring(${vectors}::bytea FROM v.off + 1 FOR v.len), v.tok
    FROM unnest(
      ${rows.map((r) => r.tenantId)}::bigint[], ${rows.map((r) => r.scope.model)}::text[],
      ${rows.map((r) => r.scope.modelVersion)}::text[], ${sql.array(rows.map((r) => r.inputHash), 17)},
      ${offsets}::int[], ${lengths}::int[], ${rows.map((r) => r.tokens)}::int[],
      ${rows.map((r) => r.cacheEpoch ?? -1)}::int[]
    ) AS v(t, m, mv, h, off, len, tok, ep)
    JOIN tenants ON tenants.id = v.t AND (v.ep < 0 OR tenants.cache_epoch = v.ep)
    FOR SHARE OF tenants
    ON CONFLICT DO NOTHING`;
  await noteRowsWritten(sql, r.count);
}

/** Adds batched hit counts and touches last_hit_at (eviction order). */
export async function recordHits(sql: Sql, counts: HitCount[]): Promise<void> {
  if (counts.length === 0) return;
  await sql`
    UPDATE embeddings e SET hits = e.hits + v.n, last_hit_at = now()
    FROM (SELECT unnest(${counts.map((c) => c.tenantId)}::bigint[]) AS t,
                 unnest(${counts.map((c) => c.scope.model)}::text[]) AS m,
                 unnest(${counts.map((c) => c.scope.modelVersion)}::text[]) AS mv,
                 unnest(${sql.array(counts.map((c) => c.inputHash), 17)}) AS h,
                 unnest(${counts.map((c) => c.hits)}::bigint[]) AS n) v
    WHERE e.tenant_id = v.t AND e.model = v.m AND e.model_version = v.mv AND e.input_hash = v.h`;
}

export async function countRows(sql: Sql, tenantId: number): Promise<{ rows: number; bytes: number }> {
  const [r] = await sql<{ rows: string; bytes: string | null }[]>`
    SELECT count(*) AS rows, sum(octet_length(vector)) AS bytes FROM embeddings WHERE tenant_id = ${tenantId}`;
  return { rows: Number(r.rows), bytes: Number(r.bytes ?? 0) };
}

/**
 * Deletes a tenant's rows (optionally one model's) and moves its cache epoch on, in one
 * transaction, so rows computed before the clear and written after it are dropped; returns how many.
 */
export async function clearRows(sql: Sql, tenantId: number, model?: string): Promise<number> {
  return sql.begin(async (tx) => {
    await tx`UPDATE tenants SET cache_epoch = cache_epoch + 1 WHERE id = ${tenantId}`;
    const r = await tx`
      DELETE FROM embeddings WHERE tenant_id = ${tenantId}
        AND (${model ?? null}::text IS NULL OR model = ${model ?? null})`;
    return r.count;
  });
}

/** Drops rows not hit for `days` days. */
export async function expireRows(sql: Sql, days: number): Promise<number> {
  const r = await sql`DELETE FROM embeddings WHERE last_hit_at < now() - make_interval(days => ${days})`;
  return r.count;
}

/**
 * Deletes a tenant's `count` least recently hit rows (capacity eviction); ties (one write batch)
 * go by hash, so the order is deterministic. `hits >= 0` (every row) is the predicate of the
 * partial index embeddings_evict: stated here, so that this walk, and not the lookup, uses it.
 */
export async function evictLeastRecentlyHit(sql: Sql, tenantId: number, count: number): Promise<number> {
  const r = await sql`
    DELETE FROM embeddings e USING (
      SELECT model, model_version, input_hash FROM embeddings
      WHERE tenant_id = ${tenantId} AND hits >= 0 ORDER BY last_hit_at ASC, input_hash ASC LIMIT ${count}
    ) old
    WHERE e.tenant_id = ${tenantId} AND e.model = old.model AND e.model_version = old.model_version AND e.input_hash = old.input_hash`;
  return r.count;
}
