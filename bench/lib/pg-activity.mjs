/**
 * What the server asks of PostgreSQL, counted by PostgreSQL itself: transactions committed in
 * the bench database (pg_stat_database). Backends report these when they go idle, at most once
 * a second and at the latest 10 s later (PostgreSQL 15's stats), so a reading waits for that
 * first: take one before and one after a block of runs, not per run.
 */
import postgres from 'postgres';
import { sleep } from './services.mjs';

const SETTLE_MS = 11_000;

export async function pgActivity(url) {
  await sleep(SETTLE_MS);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [r] = await sql`SELECT xact_commit::bigint AS commits FROM pg_stat_database WHERE datname = current_database()`;
    return { commits: Number(r.commits) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Per miss between two readings: transactions (every miss is one lookup transaction; the rest
 * are the write-behind INSERTs and the periodic flushes). The reading's own transaction counts
 * once, and `others` (transactions of other clients in between, such as a reference's
 * lookups) are not the server's: both subtracted.
 */
export function pgPerMiss(before, after, misses, others = 0) {
  if (!before || !after || misses <= 0) return null;
  const commits = after.commits - before.commits - 1 - others;
  const writes = commits - misses;
  return { commitsPerMiss: commits / misses, writeTransactions: writes };
}
