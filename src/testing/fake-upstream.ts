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
  /** Calls answered with bad vectors (corruptNext). */
  corrupted: number;
  /** Input counts of each successful call, in order. */
  batchSizes: number[];
}

/**
 * Ways the fake answers 200 with something that must not be cached. `infinity` is sent as the
 * JSON number `1e999` (float format), `nan` through base64 (JSON cannot carry NaN).
 */
export const BAD_VECTOR_MODES = [
  'wrong_length',
  'mixed_lengths',
  'nan',
  'infinity',
  'zeros',
  'huge',
  'empty',
  'strings',
  'duplicate_index',
  'missing_index',
  'null_embedding',
  'bad_base64',
  'garbage',
  'error_body',
] as const;
export type BadVectorMode = (typeof BAD_VECTOR_MODES)[number];

export interface FakeUpstream {
  url: string;
  stats(): FakeUpstreamStats;
  reset(): void;
  setLatency(ms: number): void;
  /** The next `count` calls answer `status` with an OpenAI error body. */
  failNext(status: number, count?: number): void;
  /** The next `count` calls answer 200 with `mode`'s bad vectors (also `POST /_fake/corrupt {"mode","count"}`). */
  corruptNext(mode: BadVectorMode, count?: number): void;
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
  let corrupt: { mode: BadVectorMode; count: number } | null = null;
  let stats: FakeUpstreamStats = { calls: 0, inputs: 0, failures: 0, corrupted: 0, batchSizes: [] };

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
    if (req.method === 'POST' && url === '/_fake/corrupt') {
      const { mode, count } = JSON.parse(raw || '{}') as { mode?: string; count?: number };
      if (!BAD_VECTOR_MODES.includes(mode as BadVectorMode)) return fail(res, 400, `mode must be one of ${BAD_VECTOR_MODES.join(', ')}`);
      corrupt = { mode: mode as BadVectorMode, count: count ?? 1 };
      return send(res, 200, { ok: true });
    }
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
    const usage = { prompt_tokens: tokens, total_tokens: tokens };
    if (corrupt && corrupt.count > 0) {
      corrupt.count--;
      stats.corrupted++;
      return sendCorrupt(res, corrupt.mode, data, body.model!, usage, body.encoding_format === 'base64');
    }
    send(res, 200, { object: 'list', data, model: body.model, usage });
  };

  const sendCorrupt = (
    res: http.ServerResponse,
    mode: BadVectorMode,
    good: { object: string; index: number; embedding: unknown }[],
    model: string,
    usage: unknown,
    base64: boolean,
  ) => {
    const enc = (v: ArrayLike<number>) => {
      const f = Float32Array.from(v);
      return base64 ? Buffer.from(f.buffer).toString('base64') : Array.from(f);
    };
    const dims = (i: number) => {
      const e = good[i].embedding;
      return typeof e === 'string' ? Buffer.from(e, 'base64').length / 4 : (e as number[]).length;
    };
    const each = (f: (i: number) => unknown) => good.map((d, i) => ({ ...d, embedding: f(i) }));
    const list = (data: unknown[]) => ({ object: 'list', data, model, usage });
    const text = (t: string) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(t) });
      res.end(t);
    };
    switch (mode) {
      case 'wrong_length':
        return send(res, 200, list(each((i) => enc(new Float32Array(Math.max(1, dims(i) - 1)).fill(0.1)))));
      case 'mixed_lengths':
        // Vector 0 keeps its length, the others lose half: one input alone gets a length of its own.
        return send(res, 200, list(each((i) => enc(new Float32Array(i === 0 && good.length > 1 ? dims(i) : Math.ceil(dims(i) / 2)).fill(0.1)))));
      case 'nan':
        return send(res, 200, list(each((i) => Buffer.from(new Float32Array(dims(i)).fill(Number.NaN).buffer).toString('base64'))));
      case 'infinity': {
        // JSON.stringify cannot write it; 1e999 is valid JSON that every parser reads as Infinity.
        const data = good.map((d, i) => `{"object":"embedding","index":${d.index},"embedding":[1e999${',0.1'.repeat(dims(i) - 1)}]}`);
        return text(`{"object":"list","data":[${data.join(',')}],"model":${JSON.stringify(model)},"usage":${JSON.stringify(usage)}}`);
      }
      case 'zeros':
        return send(res, 200, list(each((i) => enc(new Float32Array(dims(i))))));
      case 'huge':
        return send(res, 200, list(each((i) => enc(new Float32Array(dims(i)).fill(1e30)))));
      case 'empty':
        return send(res, 200, list(each(() => (base64 ? '' : []))));
      case 'strings':
        return send(res, 200, list(each((i) => Array.from({ length: dims(i) }, () => 'x'))));
      case 'duplicate_index':
        return send(res, 200, list(good.map((d) => ({ ...d, index: 0 }))));
      case 'missing_index':
        return send(res, 200, list(good.map((d) => ({ ...d, index: d.index + 1 }))));
      case 'null_embedding':
        return send(res, 200, list(each(() => null)));
      case 'bad_base64':
        return send(res, 200, list(each((i) => Buffer.from(new Float32Array(dims(i)).fill(0.1).buffer).toString('base64').slice(0, -1))));
      case 'garbage':
        return text('{"object":"list","data":[{"index":0,"embedding":"AAAA');
      case 'error_body':
        return send(res, 200, { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } });
    }
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
      stats = { calls: 0, inputs: 0, failures: 0, corrupted: 0, batchSizes: [] };
      failures = null;
      corrupt = null;
    },
    setLatency: (ms) => void (latencyMs = ms),
    failNext: (status, count = 1) => void (failures = { status, count }),
    corruptNext: (mode, count = 1) => void (corrupt = { mode, count }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
