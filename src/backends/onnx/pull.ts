/**
 * Downloads a model directory from the Hugging Face hub (or a mirror speaking its
 * `/{repo}/resolve/{revision}/{file}` protocol): resumable through `.part` files and HTTP
 * Range, sha256-checked against the hub's LFS etag. Progress is reported through onProgress
 * (the CLI draws it). Network failures name the URL, the cause and what to do.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const HF_ENDPOINT = 'https://huggingface.co';

/** What the backend reads from a nomic-embed-text-v1.5 style repo (see model-dir.ts). */
export const MODEL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'config.json',
  'sentence_bert_config.json',
  '1_Pooling/config.json',
  'onnx/model.onnx',
  // Optional (skipped where the repo has none): where task prompts are declared.
  'config_sentence_transformers.json',
  'README.md',
];

/** Records the etag of each pulled file, so a later pull skips what has not changed. */
const MANIFEST = '.pull-manifest.json';
const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface PullProgress {
  file: string;
  /** Bytes of the file on disk so far (resumed bytes included). */
  received: number;
  /** Full size, when the server said. */
  total: number | null;
}

export interface PullOptions {
  /** Hub base URL; tests point it at a local server. */
  endpoint?: string;
  /** Branch, tag or commit. Default `main`. */
  revision?: string;
  /** Paths inside the repo. Default MODEL_FILES. */
  files?: string[];
  /** Of those, the ones a repo may lack (a 404 skips them). Default OPTIONAL_MODEL_FILES. */
  optionalFiles?: string[];
  /** Hub token for gated or private repos; sent to the hub only, never to the CDN it redirects to. */
  token?: string;
  onProgress?: (progress: PullProgress) => void;
  /** Attempts per file after a dropped connection, each resuming where the last stopped. Default 4. */
  attempts?: number;
  signal?: AbortSignal;
}

export interface PulledFile {
  file: string;
  path: string;
  bytes: number;
  /** The sha256 checked, or null where the hub gave none (small non-LFS files). */
  sha256: string | null;
  /** True when the file was already there with the same etag. */
  skipped: boolean;
}

/** What a HEAD on the resolve URL tells about one file. */
export interface RemoteFile {
  /** Where to GET the bytes (the CDN for LFS files). */
  url: string;
  etag: string | null;
  size: number | null;
}

export async function pullModel(repo: string, destDir: string, options: PullOptions = {}): Promise<PulledFile[]> {
  const endpoint = (options.endpoint ?? HF_ENDPOINT).replace(/\/+$/, '');
  const revision = options.revision ?? 'main';
  const manifestPath = join(destDir, MANIFEST);
  const manifest = await readManifest(manifestPath);
  const pulled: PulledFile[] = [];
  const optional = new Set(options.optionalFiles ?? OPTIONAL_MODEL_FILES);
  {
    for (const file of options.files ?? MODEL_FILES) {
      const url = `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
      let remote: RemoteFile;
      try {
        remote = await resolveFile(url, file, repo, revision, options);
      } catch (err) {
        // A repo without a model card or without sentence-transformers' prompts is still a model.
        if (err instanceof NotFoundError && optional.has(file)) continue;
        throw err;
      }
      const path = join(destDir, file);
      const sha256 = remote.etag && SHA256_HEX.test(remote.etag) ? remote.etag : null;
      const existing = await sizeOf(path);
      if (remote.etag && manifest[file] === remote.etag && existing !== null && (remote.size === null || existing === remote.size)) {
        pulled.push({ file, path, bytes: existing, sha256, skipped: true });
        continue;
      }
      const onProgress = (p: PullProgress) => options.onProgress?.(p);
      const bytes = await download({ remote, file, path, sha256, hubOrigin: new URL(endpoint).origin, onProgress }, options);
      if (remote.etag) {
        manifest[file] = remote.etag;
        await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
      }
      pulled.push({ file, path, bytes, sha256, skipped: false });
    }
  }
  return pulled;
}

/**
 * HEAD on the resolve URL without following redirects: the hub's first answer carries the LFS
 * sha256 (`x-linked-etag`) and size, then points at the CDN. Relative redirects (renamed repos)
 * are followed on the hub.
 */
export async function resolveFile(url: string, file: string, repo: string, revision: string, options: PullOptions): Promise<RemoteFile> {
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; hop < 5; hop++) {
    const res = await hubFetch(current, { method: 'HEAD', redirect: 'manual', headers: hubHeaders(options.token), signal: options.signal });
    if (res.status === 401 || res.status === 403) {
      throw new Error(`${repo}: access denied (HTTP ${res.status}) for ${file} at ${current}; the repo may be gated or private: set HF_TOKEN to a Hugging Face token that may read it`);
    }
    if (res.status === 404) throw new NotFoundError(`${repo}@${revision}: ${file} not found (HTTP 404 at ${current}); check the repo name and --revision`);
    const etag = cleanEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    const size = toSize(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, current);
      if (next.origin === origin && etag === null) {
        current = next.href;
        continue;
      }
      return { url: next.href, etag, size };
    }
    if (!res.ok) throw new Error(`${repo}@${revision}: ${file}: HTTP ${res.status} at ${current}`);
    return { url: current, etag, size };
  }
  throw new Error(`${repo}@${revision}: ${file}: too many redirects`);
}

/** One file to fetch. */
interface Job {
  remote: RemoteFile;
  file: string;
  path: string;
  sha256: string | null;
  /** The token goes to this origin only. */
  hubOrigin: string;
  onProgress: (p: PullProgress) => void;
}

/** Downloads into `<path>.part`, resuming it, then verifies and renames. Returns the size. */
async function download(job: Job, options: PullOptions): Promise<number> {
  const { remote, file, path, sha256 } = job;
  await mkdir(dirname(path), { recursive: true });
  const part = `${path}.part`;
  const attempts = options.attempts ?? 4;
  let retriedFresh = false;
  for (let attempt = 1; ; attempt++) {
    try {
      const { bytes, digest, resumed } = await fetchInto(job, part, options);
      if (remote.size !== null && bytes !== remote.size) {
        throw new RetryableError(`${file}: got ${bytes} bytes, expected ${remote.size}`);
      }
      if (sha256 && digest !== sha256) {
        await rm(part, { force: true });
        // Resumed bytes (a .part from an earlier run) may be stale: one fresh download decides.
        if (resumed && !retriedFresh) {
          retriedFresh = true;
          continue;
        }
        throw new Error(`${file}: checksum mismatch (expected sha256 ${sha256}, got ${digest})`);
      }
      await rename(part, path);
      return bytes;
    } catch (err) {
      const retryable = err instanceof RetryableError || isNetworkError(err);
      if (retryable && !(err instanceof UnreachableError) && attempt >= attempts && isNetworkError(err)) throw new UnreachableError(remote.url, err);
      if (!retryable || attempt >= attempts || options.signal?.aborted) throw err;
      await sleep(Math.min(200 * 2 ** (attempt - 1), 5_000), undefined, { signal: options.signal });
    }
  }
}

class RetryableError extends Error {}
class NotFoundError extends Error {}

/** Files a pull fetches when the repo has them (task prompts, the model card with its prefixes). */
export const OPTIONAL_MODEL_FILES = ['config_sentence_transformers.json', 'README.md'];

/**
 * The hub (or the CDN) could not be reached: says where, why (undici's cause, not its "fetch
 * failed") and what to do offline.
 */
export class UnreachableError extends Error {
  readonly code = 'EUNREACHABLE';
  constructor(url: string, err: unknown) {
    const cause = (err as { cause?: unknown }).cause;
    const why = cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
    super(
      `could not reach ${url}: ${why}. Check the network (or a proxy); set HF_ENDPOINT (or --endpoint) to a mirror of the hub; ` +
        'or, offline, copy a model directory to this machine and serve it with MODEL_DIR=/path/to/it.',
      { cause: err },
    );
    this.name = 'UnreachableError';
  }
}

/** fetch, with a failure to connect turned into an UnreachableError naming the URL. */
async function hubFetch(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw new UnreachableError(url, err);
  }
}

/** One GET, appending to `part` from its current size when the server honours Range. */
async function fetchInto(
  { remote, file, hubOrigin, onProgress }: Job,
  part: string,
  options: PullOptions,
): Promise<{ bytes: number; digest: string; resumed: boolean }> {
  let offset = (await sizeOf(part)) ?? 0;
  if (remote.size !== null && offset > remote.size) {
    await rm(part, { force: true });
    offset = 0;
  }
  const headers = hubHeaders(new URL(remote.url).origin === hubOrigin ? options.token : undefined);
  if (offset > 0) headers.range = `bytes=${offset}-`;
  const res = await hubFetch(remote.url, { headers, signal: options.signal });
  if (res.status === 416) {
    // The .part is no prefix of this file (or already whole but unrenamed): start over.
    await res.body?.cancel();
    await rm(part, { force: true });
    throw new RetryableError(`${file}: range not satisfiable, restarting`);
  }
  if (!res.ok || !res.body) throw statusError(file, res.status);
  if (offset > 0 && res.status !== 206) offset = 0; // Range ignored: the body is the whole file.
  const hash = createHash('sha256');
  if (offset > 0) await hashFile(part, hash);
  const handle = await open(part, offset > 0 ? 'a' : 'w');
  let received = offset;
  try {
    onProgress({ file, received, total: remote.size });
    for await (const chunk of res.body) {
      await handle.write(chunk);
      hash.update(chunk);
      received += chunk.length;
      onProgress({ file, received, total: remote.size });
    }
  } finally {
    await handle.close();
  }
  return { bytes: received, digest: hash.digest('hex'), resumed: offset > 0 };
}

function statusError(file: string, status: number): Error {
  const message = `${file}: download failed (HTTP ${status})`;
  return status >= 500 || status === 429 ? new RetryableError(message) : new Error(message);
}

/** A dropped connection surfaces from fetch as a TypeError ("terminated", "fetch failed"). */
function isNetworkError(err: unknown): boolean {
  return err instanceof TypeError || (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('E'));
}

function hubHeaders(token: string | undefined): Record<string, string> {
  return { 'user-agent': 'embedding-cache', 'accept-encoding': 'identity', ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

/** `W/"abc"` or `"abc"` -> `abc`. */
function cleanEtag(etag: string | null): string | null {
  return etag ? etag.replace(/^W\//, '').replace(/^"|"$/g, '') : null;
}

function toSize(value: string | null): number | null {
  const n = value === null ? NaN : Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function readManifest(path: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}
