/**
 * Shutdown with connections a client opened and never used (undici opens spare ones when all are
 * busy): close() used to wait for Node's headersTimeout, 60 s, before it resolved. Now they are
 * closed at once, and a request still running when shutdown begins is answered all the same.
 */
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestServer } from './support/server.js';
import { sleep } from './support/services.js';

const opened = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
const closedSoon = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

describe('server shutdown', () => {
  it('closes connections that never sent a request, and idle kept-alive ones, without waiting for their timeouts', async () => {
    const t = await startTestServer({ listen: true });
    const port = Number(new URL(t.url!).port);
    const key = await t.key('drain');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // One kept-alive connection that served a request and now idles, and two never used.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${t.url}/v1/embeddings`, { method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('error', reject);
      req.end(JSON.stringify({ model: 'text-embedding-3-small', input: 'drain' }));
    });
    expect(status).toBe(200);
    const unused = [await opened(port), await opened(port)];
    // Bounded far below the 60 s it took: a hang shows as 'hung', not as a slow pass.
    const outcome = await Promise.race([t.close().then(() => 'closed'), sleep(15_000).then(() => 'hung')]);
    expect(outcome).toBe('closed');
    await Promise.all(unused.map(closedSoon));
    expect(unused.every((s) => s.destroyed)).toBe(true);
    agent.destroy();
  }, 60_000);
});
