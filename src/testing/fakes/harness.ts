/**
 * What every fake provider shares: a loopback HTTP server that records each call, answers with
 * injected latency and faults in the provider's own error format, and gives deterministic
 * vectors (a hash of model, input type, size and text). Each kind's fake only describes its
 * wire format. Loopback only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fakeVector } from '../fake-upstream.js';

export interface FakeRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export interface FakeAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface FakeCall {
  path: string;
  status: number;
  /** Texts the call carried (0 when refused before parsing them). */
  inputs: number;
  body: unknown;
}

export interface FakeKind {
  /** The provider's own error body for `status` with `message`, and its rate-limit headers. */
  error(status: number, message: string, opts?: { retryAfterSeconds?: number }): FakeAnswer;
  /** Answers one request (auth, shape and batch checks included). */
  handle(req: FakeRequest): FakeAnswer & { inputs?: number };
}

export interface FakeProvider {
  /** The base URL to configure (what the kind's docs call the endpoint or base URL). */
  url: string;
  calls(): FakeCall[];
  /** Input counts of the successful calls, in order. */
  batchSizes(): number[];
  reset(): void;
  setLatency(ms: number): void;
  /** The next `count` calls answer `status` in the provider's own error format. */
  failNext(status: number, count?: number, opts?: { retryAfterSeconds?: number }): void;
  /** The next `count` successful answers have their body replaced (bad-response faults). */
  corruptNext(mutate: (body: unknown) => unknown, count?: number): void;
  close(): Promise<void>;
}

export async function startFake(kind: FakeKind, opts: { basePath?: string; latencyMs?: number } = {}): Promise<FakeProvider> {
  let latencyMs = opts.latencyMs ?? 0;
  let calls: FakeCall[] = [];
  let failures: { status: number; count: number; retryAfterSeconds?: number } | null = null;
  let corrupt: { mutate: (b: unknown) => unknown; count: number } | null = null;

  const send = (res: http.ServerResponse, a: FakeAnswer) => {
    const text = JSON.stringify(a.body);
    res.writeHead(a.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...a.headers });
    res.end(text);
  };

  const answer = (req: http.IncomingMessage, raw: string): FakeAnswer => {
    const u = new URL(req.url ?? '/', 'http://fake');
    let body: unknown;
    try {
      body = raw.length > 0 ? JSON.parse(raw) : undefined;
    } catch {
      const a = kind.error(400, 'The request body is not valid JSON.');
      calls.push({ path: u.pathname, status: 400, inputs: 0, body: raw });
      return a;
    }
    if (failures && failures.count > 0) {
      failures.count--;
      const a = kind.error(failures.status, `injected failure ${failures.status}`, { retryAfterSeconds: failures.retryAfterSeconds });
      calls.push({ path: u.pathname, status: a.status, inputs: 0, body });
      return a;
    }
    const a = kind.handle({ method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, headers: req.headers, body });
    calls.push({ path: u.pathname, status: a.status, inputs: a.inputs ?? 0, body });
    if (a.status === 200 && corrupt && corrupt.count > 0) {
      corrupt.count--;
      return { ...a, body: corrupt.mutate(a.body) };
    }
    return a;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const reply = () => send(res, answer(req, raw));
      if (latencyMs > 0) setTimeout(reply, latencyMs);
      else reply();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${opts.basePath ?? ''}`,
    calls: () => calls.map((c) => ({ ...c })),
    batchSizes: () => calls.filter((c) => c.status === 200).map((c) => c.inputs),
    reset: () => {
      calls = [];
      failures = null;
      corrupt = null;
    },
    setLatency: (ms) => void (latencyMs = ms),
    failNext: (status, count = 1, o = {}) => void (failures = { status, count, retryAfterSeconds: o.retryAfterSeconds }),
    corruptNext: (mutate, count = 1) => void (corrupt = { mutate, count }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The vector a fake returns: a function of the model, the input type the provider was asked
 * for and the size, so a test can tell which input type and which native size were requested.
 */
export function providerVector(model: string, text: string, dims: number, o: { inputType?: string | null; reducedFrom?: number } = {}): Float32Array {
  const seed = `${model}#${o.inputType ?? ''}${o.reducedFrom !== undefined && o.reducedFrom !== dims ? `@${dims}` : ''}`;
  return fakeVector(seed, text, dims);
}

/** Unknown fields of a JSON object, for "unknown field" refusals. */
export function unknownFields(body: unknown, allowed: string[]): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return [];
  return Object.keys(body).filter((k) => !allowed.includes(k));
}

/** An error answer: `body`, plus Retry-After (default 7 s) when it is a 429. */
export function errorAnswer(status: number, body: unknown, retryAfterSeconds?: number, extra: Record<string, string> = {}): FakeAnswer {
  return { status, body, headers: status === 429 ? { 'retry-after': String(retryAfterSeconds ?? 7), ...extra } : {} };
}

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
export const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
export const tokensOf = (text: string): number => Math.max(1, Math.ceil(Buffer.byteLength(text) / 4));
