/**
 * DATA_DIR/server.json: how a CLI command finds the server running on the same DATA_DIR (its
 * URL, pid and database), so `seed` can send its batches to that server's API and use that
 * server's backends instead of needing the server's environment repeated. Written by `serve`
 * once it listens, removed when it stops; a file left by a killed server is recognised by its
 * dead pid or a URL that does not answer.
 */
import { readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export const SERVER_FILE = 'server.json';

const serverFileSchema = z.object({
  url: z.url(),
  pid: z.number().int().positive(),
  /** resolveDatabase(...).display of the server: the CLI checks it is the same database. */
  database: z.string(),
  /** A server with AUTH_DISABLED serves every request as tenant `default`. */
  auth_disabled: z.boolean(),
  started_at: z.string(),
});
export type ServerFile = z.infer<typeof serverFileSchema>;

export const serverFilePath = (dataDir: string) => path.join(path.resolve(dataDir), SERVER_FILE);

export async function writeServerFile(dataDir: string, info: Omit<ServerFile, 'started_at'>): Promise<string> {
  const file = serverFilePath(dataDir);
  await mkdir(path.dirname(file), { recursive: true });
  // Written aside, then renamed over: a CLI reading it meanwhile sees the old file or the new one, never half of one.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ ...info, started_at: new Date().toISOString() }, null, 2) + '\n');
  await rename(tmp, file);
  return file;
}

/** Removes the file if it is still this process's (a second server may have written its own since). */
export async function removeServerFile(dataDir: string, pid = process.pid): Promise<void> {
  const current = await readServerFile(dataDir);
  if (current?.pid === pid) await rm(serverFilePath(dataDir), { force: true });
}

export async function readServerFile(dataDir: string): Promise<ServerFile | null> {
  try {
    const parsed = serverFileSchema.safeParse(JSON.parse(await readFile(serverFilePath(dataDir), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The server recorded in DATA_DIR when its process lives and its /healthz answers; else null. */
export async function findRunningServer(dataDir: string): Promise<ServerFile | null> {
  const info = await readServerFile(dataDir);
  if (!info || !alive(info.pid)) return null;
  try {
    const res = await fetch(new URL('/healthz', info.url), { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.ok ? info : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
