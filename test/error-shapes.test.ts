/**
 * Every error body has OpenAI's shape, the framework's and Node's own included: what a client
 * meets before any route runs (bad URL, long parameter, huge headers, huge or non-JSON bodies,
 * unknown routes, a server that is closing) and the request-parsing refusals.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

let t: TestServer;
let key: string;
let port: number;

beforeAll(async () => {
  t = await startTestServer({ listen: true, env: { BODY_LIMIT: '4096' } });
  key = await t.key('shapes');
  port = Number(new URL(t.url!).port);
});
afterAll(async () => {
  await t?.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses every complete HTTP/1.1 response in `data` (Content-Length framed, as ours all are). */
function parseResponses(data: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = data;
  while (rest.includes('\r\n\r\n')) {
    const end = rest.indexOf('\r\n\r\n');
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length'] ?? 0);
    const bodyBytes = Buffer.from(rest.slice(end + 4));
    if (bodyBytes.length < length) break;
    const body = bodyBytes.subarray(0, length).toString();
    out.push({ status: Number(statusLine.split(' ')[1]), headers, body });
    rest = bodyBytes.subarray(length).toString();
  }
  return out;
}

/** Opens a socket to the server; `read()` resolves with all it received once the server closes it. */
async function rawSocket(to = port): Promise<{ socket: Socket; read: () => Promise<string> }> {
  const socket = connect(to, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks).toString())));
  return { socket, read: () => closed };
}

function expectOpenAIShape(body: unknown, status: number, code?: string): void {
  const e = (body as { error: Record<string, unknown> }).error;
  expect(Object.keys(e).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof e.message).toBe('string');
  expect(e.type).toBe(status >= 500 ? (status === 503 ? 'service_unavailable' : 'server_error') : 'invalid_request_error');
  if (code) expect(e.code).toBe(code);
}

const auth = () => ({ authorization: `Bearer ${key}` });

describe('Fastify’s own errors in OpenAI’s shape', () => {
  it('answers bad percent-encoding in the path with a 400', async () => {
    const res = await t.server.app.inject({ url: '/v1/models/%E0%A4%A', headers: auth() });
    expect(res.statusCode).toBe(400);
    expectOpenAIShape(res.json(), 400, 'invalid_url');
  });

  it('answers an over-long path parameter with a 414', async () => {
    const res = await t.server.app.inject({ url: `/v1/models/${'m'.repeat(500)}`, headers: auth() });
    expect(res.statusCode).toBe(414);
    expectOpenAIShape(res.json(), 414, 'url_too_long');
  });

  it('answers an unknown route with a 404', async () => {
    const res = await t.server.app.inject({ url: '/v2/nothing-here', headers: auth() });
    expect(res.statusCode).toBe(404);
    expectOpenAIShape(res.json(), 404, 'not_found');
  });

  it('answers a body that is not JSON with a 415', async () => {
    const res = await t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { ...auth(), 'content-type': 'application/xml' }, payload: '<input>hello</input>' });
    expect(res.statusCode).toBe(415);
    expectOpenAIShape(res.json(), 415, 'unsupported_media_type');
  });

  it('answers a body over BODY_LIMIT on a real socket with a 413', async () => {
    const { socket, read } = await rawSocket();
    // The declared length is refused before the body is read: the client need not send it.
    socket.write(`POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n{"input":"`);
    const [res] = parseResponses(await read());
    expect(res.status).toBe(413);
    expectOpenAIShape(JSON.parse(res.body), 413, 'request_too_large');
  });

  it('answers headers over Node’s limit with a 431 in OpenAI’s shape, written on the socket', async () => {
    const { socket, read } = await rawSocket();
    socket.write(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Huge: ${'h'.repeat(32 * 1024)}\r\n\r\n`);
    const [res] = parseResponses(await read());
    expect(res.status).toBe(431);
    expect(res.headers['content-type']).toBe('application/json');
    expectOpenAIShape(JSON.parse(res.body), 431, 'request_header_fields_too_large');
  });
});

describe('request parsing', () => {
  const post = (url: string, payload: unknown) => t.server.app.inject({ method: 'POST', url, headers: auth(), payload: payload as object });

  it('says a wrong type is a wrong type', async () => {
    const res = await post('/v1/embeddings', { model: 1, input: 'x' });
    expect(res.statusCode).toBe(400);
    expectOpenAIShape(res.json(), 400);
    expect(res.json().error).toMatchObject({ param: 'model', message: expect.stringMatching(/^Invalid type for 'model': expected a string/) });
  });

  it('refuses lone surrogates with a 400 naming the input, on both route families, and computes nothing', async () => {
    const before = t.fake.stats().calls;
    // JSON escapes are how a lone surrogate arrives: raw UTF-8 cannot carry one.
    const raw = (url: string, json: string) => t.server.app.inject({ method: 'POST', url, headers: { ...auth(), 'content-type': 'application/json' }, payload: json });
    const a = await raw('/v1/embeddings', '{"model":"text-embedding-3-small","input":["fine","bad \\ud800 here"]}');
    expect(a.statusCode).toBe(400);
    expectOpenAIShape(a.json(), 400);
    expect(a.json().error).toMatchObject({ param: 'input', message: expect.stringMatching(/^'input\[1\]' contains a lone UTF-16 surrogate/) });
    const b = await raw('/v1/embed', '{"model":"text-embedding-3-small","text":"\\udfff"}');
    expect(b.statusCode).toBe(400);
    expect(b.json().error.param).toBe('text');
    const c = await raw('/v1/embed/batch', '{"model":"text-embedding-3-small","texts":["a","\\ud83d"]}');
    expect(c.statusCode).toBe(400);
    expect(c.json().error).toMatchObject({ param: 'texts', message: expect.stringMatching(/^'texts\[1\]'/) });
    // a replacement character and a proper pair are fine, and are different inputs
    const ok = await raw('/v1/embeddings', '{"model":"text-embedding-3-small","input":["\\ufffd","\\ud83d\\ude00"]}');
    expect(ok.statusCode).toBe(200);
    expect(t.fake.stats().calls).toBe(before + 1);
  });
});

describe('while closing', () => {
  it('answers a request arriving on a kept-alive connection with a 503 in OpenAI’s shape', async () => {
    const s = await startTestServer({ listen: true });
    const k = await s.key('closer');
    const http = s.server.app.server;
    const { socket, read } = await rawSocket(Number(new URL(s.url!).port));
    const body = JSON.stringify({ model: 'text-embedding-3-small', input: 'closing' });
    // Request 1 is routed at once but waits for the rest of its body: the connection is busy, so closing keeps it open.
    const routed = new Promise((resolve) => http.once('request', resolve));
    socket.write(`POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${k}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    await routed;
    const closed = s.close();
    // Fastify marks itself closing (and runs preClose) before it stops listening.
    for (let i = 0; i < 10_000 && http.listening; i++) await new Promise((r) => setImmediate(r));
    expect(http.listening).toBe(false);
    // The rest of request 1, and request 2 on the same connection, now that the server is closing.
    socket.write(`${body.slice(5)}GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${k}\r\nConnection: close\r\n\r\n`);
    const responses = parseResponses(await read());
    await closed;
    expect(responses.map((r) => r.status)).toEqual([200, 503]);
    expect(responses[1].headers['retry-after']).toBe('1');
    expectOpenAIShape(JSON.parse(responses[1].body), 503, 'shutting_down');
  });
});
