import type { Sql } from './db.js';
import { noteRowsWritten } from './embeddings.js';

/** One exported cache row: everything but the tenant, which the importer chooses. */
export interface ExportedRow {
  model: string;
  model_version: string;
  input_hash: string; // hex
  dims: number;
  tokens: number;
  vector: string; // base64 of little-endian float32
}

/** How many rows exportRows will yield (the export's progress total). */
export async function countRows(sql: Sql, tenantId: number, model?: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM embeddings WHERE tenant_id = ${tenantId} AND (${model ?? null}::text IS NULL OR model = ${model ?? null})`;
  return n;
}

/** Streams a tenant's rows in pages (constant memory for large caches). */
export async function* exportRows(sql: Sql, tenantId: number, model?: string, pageSize = 1000): AsyncGenerator<ExportedRow> {
  let after: { model: string; model_version: string; input_hash: Buffer } | null = null;
  for (;;) {
    const rows: { model: string; model_version: string; input_hash: Buffer; dims: number; tokens: number; vector: Buffer }[] = after
      ? await sql`
          SELECT model, model_version, input_hash, dims, tokens, vector FROM embeddings
          WHERE tenant_id = ${tenantId} AND (${model ?? null}::text IS NULL OR model = ${model ?? null})
            AND (model, model_version, input_hash) > (${after.model}, ${after.model_version}, ${after.input_hash})
          ORDER BY model, model_version, input_hash LIMIT ${pageSize}`
      : await sql`
          SELECT model, model_version, input_hash, dims, tokens, vector FROM embeddings
          WHERE tenant_id = ${tenantId} AND (${model ?? null}::text IS NULL OR model = ${model ?? null})
          ORDER BY model, model_version, input_hash LIMIT ${pageSize}`;
    for (const r of rows) {
      yield { model: r.model, model_version: r.model_version, input_hash: r.input_hash.toString('hex'), dims: r.dims, tokens: r.tokens, vector: r.vector.toString('base64') };
    }
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1];
  }
}

/** Inserts exported rows for a tenant; rows already there are kept. Returns rows inserted. */
export async function importRows(sql: Sql, tenantId: number, rows: ExportedRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const values = rows.map((r) => {
    const vector = Buffer.from(r.vector, 'base64');
    if (vector.length !== r.dims * 4) throw new Error(`row ${r.input_hash}: vector has ${vector.length} bytes, expected ${r.dims * 4}`);
    if (!/^[0-9a-f]{64}$/.test(r.input_hash)) throw new Error(`row ${r.input_hash}: input_hash must be 64 hex characters`);
    return { tenant_id: tenantId, model: r.model, model_version: r.model_version, input_hash: Buffer.from(r.input_hash, 'hex'), dims: r.dims, vector, tokens: r.tokens };
  });
  const res = await sql`INSERT INTO embeddings ${sql(values)} ON CONFLICT DO NOTHING`;
  // A bulk import is the classic way to outgrow the statistics.
  await noteRowsWritten(sql, res.count);
  return res.count;
}
