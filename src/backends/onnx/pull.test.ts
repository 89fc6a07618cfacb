import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadModelDir } from './model-dir.js';
import { MODEL_FILES, OPTIONAL_MODEL_FILES, pullModel, type PullProgress } from './pull.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/tiny-bert', import.meta.url));
const REPO = 'nomic-ai/tiny-bert';
const LFS = 'onnx/model.onnx';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

interface Seen {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

/**
 * A fake hub plus a fake CDN on another origin, as huggingface.co serves files: the resolve URL
 * of an LFS file answers 302 to the CDN with x-linked-etag (sha256) and x-linked-size; small
 * files are served directly with a git-sha1 etag. The CDN honours Range.
 */
class FakeHub {
  seen: Seen[] = [];
  /** Files whose next full CDN download is cut halfway. */
  cutOnce = new Set<string>();
  /** Overrides of the advertised sha256. */
  wrongSha = new Map<string, string>();
  requireToken: string | null = null;
  hub!: Server;
  cdn!: Server;

  async start(): Promise<void> {
    this.hub = createServer((req, res) => this.serveHub(req, res));
    this.cdn = createServer((req, res) => this.serveCdn(req, res));
    await Promise.all([listen(this.hub), listen(this.cdn)]);
  }
  async stop(): Promise<void> {
    this.hub.closeAllConnections();
    this.cdn.closeAllConnections();
    await Promise.all([new Promise((r) => this.hub.close(r)), new Promise((r) => this.cdn.close(r))]);
  }
  get endpoint(): string {
    return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
  }
  private get cdnBase(): string {
    return `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
  }
  /** Requests seen for one file, by server. */
  gets(server: 'hub' | 'cdn', file: string): Seen[] {
    const prefix = server === 'cdn' ? `/cdn/${file}` : `/${REPO}/resolve/main/${file}`;
    return this.seen.filter((s) => s.method === 'GET' && s.path.split('?')[0] === prefix);
  }

  private record(req: IncomingMessage): Seen {
    const s: Seen = { method: req.method ?? '', path: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization };
    this.seen.push(s);
    return s;
  }

  private serveHub(req: IncomingMessage, res: ServerResponse): void {
    this.record(req);
    if (this.requireToken && req.headers.authorization !== `Bearer ${this.requireToken}`) {
      res.writeHead(401).end();
      return;
    }
    const match = /^\/(.+?\/.+?)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const file = match ? decodeURIComponent(match[3]) : '';
    const body = match && match[1] === REPO ? readFixture(file) : null;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    if (file === LFS) {
      res.writeHead(302, {
        location: `${this.cdnBase}/cdn/${file}?signature=abc`,
        'x-linked-etag': `"${this.wrongSha.get(file) ?? sha256(body)}"`,
        'x-linked-size': String(body.length),
        'x-repo-commit': '0123456789abcdef0123456789abcdef01234567',
      });
      res.end();
      return;
    }
    res.writeHead(200, { etag: `"${sha1(body)}"`, 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private serveCdn(req: IncomingMessage, res: ServerResponse): void {
    const seen = this.record(req);
    if (seen.authorization) {
      // A presigned CDN URL rejects extra credentials, as S3 does.
      res.writeHead(400).end('unexpected authorization');
      return;
    }
    const file = decodeURIComponent((req.url ?? '').split('?')[0].replace(/^\/cdn\//, ''));
    const body = readFixture(file);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= body.length && body.length > 0) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const slice = body.subarray(start);
    const headers: Record<string, string> = { 'content-length': String(slice.length), 'accept-ranges': 'bytes' };
    if (range) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (!range && this.cutOnce.delete(file)) {
      // Send half, then drop the connection mid-body.
      res.write(slice.subarray(0, slice.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(slice);
  }
}

function readFixture(file: string): Buffer | null {
  try {
    return readFileSync(join(FIXTURE, file));
  } catch {
    return null;
  }
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(join(dir, entry.name), `${rel}/`)));
    else out.push(rel);
  }
  return out.sort();
}

describe('pullModel against a local fake hub', () => {
  let hub: FakeHub;
  let root: string;
  let dest: string;
  beforeEach(async () => {
    hub = new FakeHub();
    await hub.start();
    root = await mkdtemp(join(tmpdir(), 'pull-'));
    dest = join(root, 'tiny-bert');
  });
  afterEach(async () => {
    await hub.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('downloads every file the backend needs, byte for byte, into a loadable model directory', async () => {
    const pulled = await pullModel(REPO, dest, { endpoint: hub.endpoint });
    // The fixture has no model card and no sentence-transformers prompts: those optional files are skipped.
    const present = MODEL_FILES.filter((f) => !OPTIONAL_MODEL_FILES.includes(f));
    expect(pulled.map((p) => p.file)).toEqual(present);
    for (const file of present) expect(sha256(await readFile(join(dest, file)))).toBe(sha256(readFixture(file)!));
    expect(pulled.find((p) => p.file === LFS)?.sha256).toBe(sha256(readFixture(LFS)!));
    expect(pulled.find((p) => p.file === 'config.json')?.sha256).toBeNull();
    expect((await listFiles(dest)).filter((f) => f.endsWith('.part'))).toEqual([]);
    expect((await loadModelDir(dest)).id).toBe('tiny-bert');
  });

  it('resumes with Range after the connection drops halfway, and the result checks out', async () => {
    hub.cutOnce.add(LFS);
    const size = readFixture(LFS)!.length;
    await pullModel(REPO, dest, { endpoint: hub.endpoint });
    const gets = hub.gets('cdn', LFS);
    expect(gets).toHaveLength(2);
    expect(gets[0].range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(size);
    expect(sha256(await readFile(join(dest, LFS)))).toBe(sha256(readFixture(LFS)!));
  });

  it('resumes a .part left by an earlier, interrupted pull', async () => {
    const body = readFixture(LFS)!;
    await mkdir(join(dest, 'onnx'), { recursive: true });
    await writeFile(join(dest, `${LFS}.part`), body.subarray(0, 1000));
    await pullModel(REPO, dest, { endpoint: hub.endpoint });
    expect(hub.gets('cdn', LFS).map((g) => g.range)).toEqual(['bytes=1000-']);
    expect(sha256(await readFile(join(dest, LFS)))).toBe(sha256(body));
  });

  it('starts over once when a resumed .part turns out stale', async () => {
    const body = readFixture(LFS)!;
    await mkdir(join(dest, 'onnx'), { recursive: true });
    await writeFile(join(dest, `${LFS}.part`), Buffer.alloc(1000, 7));
    await pullModel(REPO, dest, { endpoint: hub.endpoint });
    expect(hub.gets('cdn', LFS).map((g) => g.range)).toEqual(['bytes=1000-', undefined]);
    expect(sha256(await readFile(join(dest, LFS)))).toBe(sha256(body));
  });

  it('refuses a file whose sha256 differs from the hub etag, leaving neither file nor .part', async () => {
    hub.wrongSha.set(LFS, 'f'.repeat(64));
    await expect(pullModel(REPO, dest, { endpoint: hub.endpoint })).rejects.toThrow(
      /onnx\/model\.onnx: checksum mismatch \(expected sha256 f{64}/,
    );
    expect((await listFiles(dest)).filter((f) => f.startsWith('onnx/'))).toEqual([]);
  });

  it('skips files already pulled with the same etag', async () => {
    await pullModel(REPO, dest, { endpoint: hub.endpoint });
    hub.seen = [];
    const again = await pullModel(REPO, dest, { endpoint: hub.endpoint });
    expect(again.every((p) => p.skipped)).toBe(true);
    expect(hub.seen.filter((s) => s.method === 'GET')).toEqual([]);
  });

  it('reports progress up to each file size', async () => {
    const events: PullProgress[] = [];
    await pullModel(REPO, dest, { endpoint: hub.endpoint, files: [LFS], onProgress: (p) => events.push(p) });
    const size = readFixture(LFS)!.length;
    expect(events.at(-1)).toEqual({ file: LFS, received: size, total: size });
    expect(events.map((e) => e.received)).toEqual([...events.map((e) => e.received)].sort((a, b) => a - b));
  });

  it('sends the token to the hub but not to the CDN it redirects to', async () => {
    hub.requireToken = 'hf_secret';
    await pullModel(REPO, dest, { endpoint: hub.endpoint, files: ['config.json', LFS], token: 'hf_secret' });
    expect(sha256(await readFile(join(dest, LFS)))).toBe(sha256(readFixture(LFS)!));
    expect(hub.gets('cdn', LFS)[0].authorization).toBeUndefined();
  });

  it('says a token is needed when the hub answers 401, and names a missing file', async () => {
    hub.requireToken = 'hf_secret';
    await expect(pullModel(REPO, dest, { endpoint: hub.endpoint })).rejects.toThrow(/access denied.*token/);
    hub.requireToken = null;
    await expect(pullModel(REPO, dest, { endpoint: hub.endpoint, files: ['onnx/model_fp16.onnx'] })).rejects.toThrow(
      /onnx\/model_fp16\.onnx not found/,
    );
  });

  it('names the URL, the cause and what to do when the hub cannot be reached', async () => {
    // A loopback port that was just closed: the connection is refused at once.
    const closed = createServer();
    await listen(closed);
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await pullModel(REPO, dest, { endpoint: `http://127.0.0.1:${port}`, files: ['config.json'] }).catch((e: Error) => e);
    expect(String(err)).toContain(`could not reach http://127.0.0.1:${port}/nomic-ai/tiny-bert/resolve/main/config.json: `);
    expect(String(err)).toMatch(/ECONNREFUSED/);
    expect(String(err)).toMatch(/HF_ENDPOINT.*MODEL_DIR/);
  });
});
