import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Sql } from './db.js';
import { analyseIfNoStatistics } from './embeddings.js';

/** migrations/ at the package root, from src/store or dist/store alike. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

// Any constant: serialises concurrent migrators (two instances starting at once).
const LOCK_ID = 7_264_011;

/**
 * Applies numbered SQL files (`001_name.sql`, ...) in order, each in its own transaction,
 * and records them in `schema_migrations`. Running it twice applies nothing the second time.
 * Returns the names applied now.
 */
export async function migrate(sql: Sql, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set((await tx<{ name: string }[]>`SELECT name FROM schema_migrations`).map((r) => r.name));
    for (const file of files) {
      if (done.has(file)) continue;
      const text = await readFile(new URL(file, `file://${dir}`), 'utf8');
      await tx.unsafe(text);
      await tx`INSERT INTO schema_migrations (name) VALUES (${file})`;
      applied.push(file);
    }
  });
  // A cache restored or loaded by other means has rows but no statistics: the lookup's plan needs them.
  await analyseIfNoStatistics(sql);
  return applied;
}
