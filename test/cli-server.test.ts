/**
 * The CLI acts on the server you run: a real `embedding-cache serve` on an embedded database
 * under a temporary DATA_DIR, and CLI processes started from another directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../src/testing/fake-upstream.js';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');
const CLI = path.join(REPO, 'src/cli.ts');
const TSX = path.join(REPO, 'node_modules/tsx/dist/loader.mjs');

/** The environment without anything that says where a database is or which upstream to use. */
function bareEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(DATABASE_URL|DATA_DIR|UPSTREAM_|MODEL_DIR|ADMIN_TOKEN|JWT_SECRET|AUTH_DISABLED)/.test(k)) env[k] = v;
  }
  return { ...env, LOG_LEVEL: 'warn', ...extra };
}

async function cli(cwd: string, env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env, timeout: 120_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

let fake: FakeUpstream;
let server: ChildProcess;
let dataDir: string;
let elsewhere: string;
let url: string;

beforeAll(async () => {
  fake = await startFakeUpstream({ apiKey: 'up' });
  dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ec-server-')), 'data');
  elsewhere = mkdtempSync(path.join(os.tmpdir(), 'ec-elsewhere-'));
  server = spawn(process.execPath, ['--import', TSX, CLI, 'serve'], {
    cwd: REPO,
    env: bareEnv({ DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', UPSTREAM_BASE_URL: fake.url, UPSTREAM_API_KEY: 'up' }),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // The server writes DATA_DIR/server.json once it listens (port 0: the file says which port).
  const file = path.join(dataDir, 'server.json');
  // Bounded, and generous: in a full run on a loaded 2-core machine tsx + PGlite took over 60 s.
  for (let i = 0; i < 2400 && !existsSync(file); i++) {
    if (server.exitCode !== null) throw new Error(`serve exited with ${server.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!existsSync(file)) throw new Error(`serve did not write ${file} within 240 s`);
  url = (JSON.parse(readFileSync(file, 'utf8')) as { url: string }).url;
}, 300_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  await fake?.close();
});

const embed = (key: string, input: string) =>
  fetch(`${url}/v1/embeddings`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input }),
  });

describe('the CLI next to a running server', () => {
  it('refuses from another directory, naming the path it looked at; pointed at the server’s DATA_DIR its key is accepted by that server', async () => {
    const lost = await cli(elsewhere, bareEnv(), 'keys', 'create', '--tenant', 'acme');
    expect(lost.code).not.toBe(0);
    expect(lost.stderr).toContain(path.join(elsewhere, '.embedding-cache', 'pgdata'));
    expect(lost.stderr).toMatch(/DATA_DIR=.*DATABASE_URL=.*npm start/);
    expect(existsSync(path.join(elsewhere, '.embedding-cache', 'pgdata'))).toBe(false);

    const found = await cli(elsewhere, bareEnv({ DATA_DIR: dataDir }), 'keys', 'create', '--tenant', 'acme');
    expect(found.code).toBe(0);
    expect(found.stderr).toContain(`database: embedded PostgreSQL in ${path.join(dataDir, 'pgdata')}`);
    const key = found.stdout.trim().split('\n').pop()!;
    const res = await embed(key, 'accepted by the running server');
    expect(res.status).toBe(200);
    // A reading command says nothing about the database unless asked.
    expect((await cli(elsewhere, bareEnv({ DATA_DIR: dataDir }), 'tenants', 'list')).stderr).not.toContain('database:');
    expect((await cli(elsewhere, bareEnv({ DATA_DIR: dataDir }), 'tenants', 'list', '--verbose')).stderr).toContain('database: embedded');
  }, 240_000);

  it('seeds through the server’s own API without its UPSTREAM_*: the rows land where it reads, a later request is a hit', async () => {
    const env = bareEnv({ DATA_DIR: dataDir });
    expect((await cli(elsewhere, env, 'tenants', 'create', 'seeder')).code).toBe(0);
    const file = path.join(elsewhere, 'texts.txt');
    writeFileSync(file, Array.from({ length: 30 }, (_, i) => `next to the server ${i}`).join('\n') + '\n');
    const before = fake.stats().inputs;
    const seeded = await cli(elsewhere, env, 'seed', '--tenant', 'seeder', '--model', 'text-embedding-3-small', '--file', file, '--batch', '8');
    expect(seeded.stderr).toContain(`through the running server at ${url}`);
    expect(seeded.code).toBe(0);
    expect(seeded.stdout).toMatch(/seeded 30 inputs \(0 already cached, 30 computed\)/);
    expect(fake.stats().inputs - before).toBe(30);

    const key = (await cli(elsewhere, env, 'keys', 'create', '--tenant', 'seeder')).stdout.trim().split('\n').pop()!;
    const res = await embed(key, 'next to the server 7');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('hit');
    expect(fake.stats().inputs - before).toBe(30);
    // The seed's own key was temporary: revoked when it ended.
    expect((await cli(elsewhere, env, 'keys', 'list', '--tenant', 'seeder')).stdout).toMatch(/seed \(temporary\)\t\S+\t\d{4}-/);
  }, 240_000);

  it('refuses a second server on the same DATA_DIR, saying why and what to do; the first keeps serving', async () => {
    // Riding on the first server's database socket, a second one lost its database for good when the first stopped.
    const second = spawn(process.execPath, ['--import', TSX, CLI, 'serve'], {
      cwd: REPO,
      env: bareEnv({ DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', UPSTREAM_BASE_URL: fake.url, UPSTREAM_API_KEY: 'up' }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    second.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        second.kill('SIGKILL');
        resolve(null);
      }, 120_000);
      second.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(1);
    expect(stderr).toContain(`Another embedding-cache server is already running on DATA_DIR=${dataDir}`);
    expect(stderr).toMatch(/Stop the other server first, or give this one its own DATA_DIR/);
    // The first server, its record and its database are untouched.
    expect((JSON.parse(readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { url: string }).url).toBe(url);
    const key = (await cli(elsewhere, bareEnv({ DATA_DIR: dataDir }), 'keys', 'create', '--tenant', 'acme')).stdout.trim().split('\n').pop()!;
    expect((await embed(key, 'still served by the first server')).status).toBe(200);
  }, 240_000);

  it('removes DATA_DIR/server.json when the server stops', async () => {
    expect(server.exitCode).toBeNull();
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
    expect(existsSync(path.join(dataDir, 'server.json'))).toBe(false);
  }, 60_000);
});
