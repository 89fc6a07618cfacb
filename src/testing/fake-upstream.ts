/**
 * A fake OpenAI-compatible embeddings server for tests and benchmarks: deterministic vectors
 * (a function of model and input), call counters, injectable latency and failures. Loopback
 * only. Also runnable as `embedding-cache fake-upstream`.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { l2Normalise } from '../core/dimensions.js';

export interface FakeUpstreamOptions {
  host?: string;
  port?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  latencyMs?: number;
  /** Most inputs accepted per call (400 above it), like a provider's batch limit. */
  maxBatch?: number;
  /** Full dimension per model id; unknown models get 404. */
  models?: Record<string, number>;
}

export interface FakeUpstreamStats {
  calls: number;
  inputs: number;
  failures: number;
  /** Input counts of each successful call, in order. */
  batchSizes: number[];
}

export interface FakeUpstream {
  url: string;
  stats(): FakeUpstreamStats;
  reset(): void;
  setLatency(ms: number): void;
  /** The next `count` calls answer `status` with an OpenAI error body. */
  failNext(status: number, count?: number): void;
  close(): Promise<void>;
}

export const FAKE_MODELS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
  'fake-768': 768,
};

/** The vector the fake returns for (model, input) at full dimension: unit length, seeded by sha256. */
export function fakeVector(model: string, input: string | number[], dims: number): Float32Array {
  const seed = createHash('sha256').update(model).update('\u0000').update(JSON.stringify(input)).digest();
  let s0 = seed.readUInt32LE(0) | 1;
  let s1 = seed.readUInt32LE(4) | 1;
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    // xorshift64-ish on two 32-bit halves: cheap and deterministic
    let t = s0 ^ (s0 << 11);
    s0 = s1;
    s1 = (s1 ^ (s1 >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    const x = s1 / 0xffffffff - 0.5;
    v[i] = x;
    norm += x * x;
  }
  const inv = 1 / Math.sqrt(norm);
  for (let i = 0; i < dims; i++) v[i] *= inv;
  return v;
}

const tokensOf = (input: string | number[]) =>
  typeof input === 'string' ? Math.max(1, Math.ceil(Buffer.byteLength(input) / 4)) : input.length;

export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const models = opts.models ?? FAKE_MODELS;
  const maxBatch = opts.maxBatch ?? 2048;
  let latencyMs = opts.latencyMs ?? 0;
  let failures: { status: number; count: number } | null = null;
  let stats: FakeUpstreamStats = { calls: 0, inputs: 0, failures: 0, batchSizes: [] };

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const fail = (res: http.ServerResponse, status: number, message: string, type = 'invalid_request_error', code: string | null = null) =>
    send(res, status, { error: { message, type, param: null, code } });

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string) => {
    const url = req.url ?? '';
    if (req.method === 'GET' && url.startsWith('/_fake/stats')) return send(res, 200, stats);
    if (url === '/v1/models' && req.method === 'GET') {
      return send(res, 200, { object: 'list', data: Object.keys(models).map((id) => ({ id, object: 'model', created: 0, owned_by: 'fake' })) });
    }
    if (!(req.method === 'POST' && url === '/v1/embeddings')) return fail(res, 404, `No route ${req.method} ${url}`);
    if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return fail(res, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    }
    if (failures && failures.count > 0) {
      failures.count--;
      stats.failures++;
      const status = failures.status;
      if (status === 429) res.setHeader('retry-after', '0');
      return fail(res, status, `injected failure ${status}`, status === 429 ? 'rate_limit_error' : 'server_error');
    }
    let body: { model?: string; input?: unknown; encoding_format?: string; dimensions?: number };
    try {
      body = JSON.parse(raw);
    } catch {
      return fail(res, 400, 'We could not parse the JSON body of your request.');
    }
    const dimsFull = body.model ? models[body.model] : undefined;
    if (!dimsFull) return fail(res, 404, `The model \`${body.model}\` does not exist`, 'invalid_request_error', 'model_not_found');
    const inputs: (string | number[])[] =
      typeof body.input === 'string'
        ? [body.input]
        : Array.isArray(body.input) && body.input.length > 0 && typeof body.input[0] === 'number'
          ? [body.input as number[]]
          : Array.isArray(body.input)
            ? (body.input as (string | number[])[])
            : [];
    if (inputs.length === 0) return fail(res, 400, "'$.input' is invalid.");
    if (inputs.length > maxBatch) return fail(res, 400, `Too many inputs: at most ${maxBatch} per request.`);
    const dims = body.dimensions ?? dimsFull;
    stats.calls++;
    stats.inputs += inputs.length;
    stats.batchSizes.push(inputs.length);
    let tokens = 0;
    const data = inputs.map((input, index) => {
      tokens += tokensOf(input);
      let v = fakeVector(body.model!, input, dimsFull);
      if (dims !== dimsFull) v = l2Normalise(v, dims); // OpenAI's text-embedding-3: truncate, re-normalise
      const embedding = body.encoding_format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v);
      return { object: 'embedding', index, embedding };
    });
    send(res, 200, { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (latencyMs > 0) setTimeout(() => handle(req, res, raw), latencyMs);
      else handle(req, res, raw);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}/v1`,
    stats: () => ({ ...stats, batchSizes: [...stats.batchSizes] }),
    reset: () => {
      stats = { calls: 0, inputs: 0, failures: 0, batchSizes: [] };
      failures = null;
    },
    setLatency: (ms) => void (latencyMs = ms),
    failNext: (status, count = 1) => void (failures = { status, count }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
