/**
 * Logs a person can read: one line per completed request with what they ask first (who, which
 * model, how many inputs, how many hits), a dependency's failure as one warning without a stack.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveLogFormat } from '../src/log.js';
import { startTestServer, type TestServer } from './support/server.js';

interface Line {
  level: number;
  msg: string;
  reqId?: string;
  [k: string]: unknown;
}

let t: TestServer;
let key: string;
const lines: Line[] = [];

beforeAll(async () => {
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Line);
  });
  t = await startTestServer({ logStream: stream, env: { UPSTREAM_MAX_RETRIES: '0' } });
  key = await t.key('loggers');
});
afterAll(async () => {
  await t?.close();
});

const post = (payload: object, id: string) =>
  t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}`, 'x-request-id': id }, payload });
const ofRequest = (id: string) => lines.filter((l) => l.reqId === id && l.level >= 30);

describe('logs', () => {
  it('writes one info line per embeddings request with tenant, model, inputs, hits, misses and backend time', async () => {
    expect((await post({ model: 'text-embedding-3-small', input: ['one', 'two'] }, 'req-miss')).statusCode).toBe(200);
    expect((await post({ model: 'text-embedding-3-small', input: ['one', 'three'] }, 'req-partial')).statusCode).toBe(200);
    const miss = ofRequest('req-miss');
    expect(miss).toHaveLength(1);
    expect(miss[0]).toMatchObject({ level: 30, method: 'POST', url: '/v1/embeddings', status: 200, tenant: 'loggers', model: 'text-embedding-3-small', inputs: 2, hits: 0, misses: 2 });
    expect(miss[0].msg).toMatch(/^POST \/v1\/embeddings 200 [\d.]+ms loggers text-embedding-3-small 2 in, 0 hit, 2 miss, backend [\d.]+ms$/);
    expect(miss[0].backend_ms).toBeGreaterThan(0);
    const partial = ofRequest('req-partial');
    expect(partial).toHaveLength(1);
    expect(partial[0]).toMatchObject({ inputs: 2, hits: 1, misses: 1 });
  });

  it('logs an upstream failure as one warning line without a stack, and the 502 in the access line', async () => {
    t.fake.failNext(500, 1);
    const res = await post({ model: 'text-embedding-3-small', input: 'fails once' }, 'req-fail');
    expect(res.statusCode).toBe(502);
    const mine = ofRequest('req-fail');
    const warns = mine.filter((l) => l.level === 40);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ kind: 'upstream_unreachable' });
    expect(JSON.stringify(warns[0])).not.toMatch(/"stack"/);
    expect(mine.filter((l) => l.level >= 50)).toHaveLength(0);
    const access = mine.filter((l) => l.level === 30);
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ status: 502, error: 'upstream_error' });
  });

  it('keeps probes out of the info log', async () => {
    await t.server.app.inject({ url: '/healthz', headers: { 'x-request-id': 'req-probe' } });
    expect(ofRequest('req-probe')).toHaveLength(0);
  });

  it('is pretty on a terminal and JSON otherwise unless LOG_FORMAT says', () => {
    expect(resolveLogFormat('auto', { isTTY: true })).toBe('pretty');
    expect(resolveLogFormat('auto', { isTTY: false })).toBe('json');
    expect(resolveLogFormat(undefined, {})).toBe('json');
    expect(resolveLogFormat('json', { isTTY: true })).toBe('json');
    expect(resolveLogFormat('pretty', { isTTY: false })).toBe('pretty');
  });
});
