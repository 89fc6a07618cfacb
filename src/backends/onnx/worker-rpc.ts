/**
 * A minimal typed request/response channel to a worker_thread: start-up handshake, calls
 * matched by id, errors carried back (DomainErrors keep their kind and details), and every pending call
 * rejected if the worker dies.
 */
import { Worker, parentPort, workerData, type TransferListItem } from 'node:worker_threads';
import { DomainError, ERROR_KINDS, type DomainErrorDetails, type ErrorKind } from '../../core/errors.js';

/** An error as it crosses the thread boundary (structured clone): a DomainError keeps its kind and details. */
export interface WireError {
  message: string;
  /** The cause travels as its message: an arbitrary value may not survive a structured clone. */
  domain?: { kind: ErrorKind; details: Omit<DomainErrorDetails, 'cause'>; cause?: string };
}
type Reply =
  | { kind: 'ready'; info: unknown }
  | { kind: 'failed'; error: WireError }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: WireError };

/** What a handler returns: the value, and buffers to move rather than copy. */
export interface Answer<Res> {
  value: Res;
  transfer?: TransferListItem[];
}

/** A sibling module of `base` (an import.meta.url) with base's extension: .js built, .ts from source. */
export function siblingModule(base: string, name: string): URL {
  const ext = new URL(base).pathname.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, base);
}

/** How long close() lets calls in flight finish before it ends the worker anyway. */
const CLOSE_GRACE_MS = 10_000;

export class WorkerClient<Req, Res, Info> {
  private nextId = 0;
  /** Set while close() waits for the calls in flight. */
  private drained: (() => void) | null = null;
  private readonly pending = new Map<number, { resolve: (v: Res) => void; reject: (e: Error) => void }>();
  private death: Error | null = null;
  private readonly deathListeners: ((err: Error) => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    /** What the worker reported once initialised. */
    readonly info: Info,
  ) {
    worker.on('message', (reply: Reply) => this.settle(reply));
    worker.on('error', (err) => this.die(err));
    worker.on('exit', (code) => this.die(new Error(`worker exited (code ${code})`)));
  }

  /** Called once if the worker dies other than by close() (crash, exit, terminate()). */
  onDeath(fn: (err: Error) => void): void {
    this.deathListeners.push(fn);
  }

  /** Ends the worker as a crash would (its calls fail, onDeath runs): for tests of recovery. */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }

  /** Starts the worker and waits for its init to succeed; its init error is thrown here. */
  static start<Req, Res, Info>(url: URL, data: unknown): Promise<WorkerClient<Req, Res, Info>> {
    const worker = spawn(url, data);
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`worker ${url.pathname} exited during start-up (code ${code})`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (reply: Reply) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        if (reply.kind === 'ready') {
          resolve(new WorkerClient<Req, Res, Info>(worker, reply.info as Info));
        } else {
          void worker.terminate();
          reject(reply.kind === 'failed' ? fromWire(reply.error) : new Error(`unexpected first message ${reply.kind}`));
        }
      });
    });
  }

  get alive(): boolean {
    return this.death === null;
  }

  /** Calls not yet answered: lets a pool pick the least busy worker. */
  get inFlight(): number {
    return this.pending.size;
  }

  call(req: Req, transfer: TransferListItem[] = []): Promise<Res> {
    if (this.death) return Promise.reject(this.death);
    const id = this.nextId++;
    return new Promise<Res>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, req }, transfer);
    });
  }

  /**
   * Takes no more calls, lets those in flight finish (at most graceMs), then ends the worker:
   * terminating a worker inside onnxruntime's session.run ended the whole process natively
   * ("terminate called after throwing an instance of 'Napi::Error'", seen on a BERT-base model).
   */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.death ??= new Error('worker closed');
    if (this.pending.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await this.worker.terminate();
  }

  private settle(reply: Reply): void {
    if (reply.kind !== 'result' && reply.kind !== 'error') return;
    const call = this.pending.get(reply.id);
    if (!call) return;
    this.pending.delete(reply.id);
    if (reply.kind === 'result') call.resolve(reply.value as Res);
    else call.reject(fromWire(reply.error));
    if (this.pending.size === 0) this.drained?.();
  }

  private die(err: Error): void {
    const first = this.death === null;
    this.death ??= err;
    // Calls in flight when a worker dies are retryable: it is restarted (see WorkerRunner).
    const gone = first
      ? new DomainError('unavailable', `The local model worker stopped (${err.message}) and is being restarted. Retry shortly.`, { retryAfterSeconds: 1, cause: err })
      : this.death;
    for (const call of this.pending.values()) call.reject(gone);
    this.pending.clear();
    this.drained?.();
    if (first) for (const fn of this.deathListeners) fn(err);
  }
}

/**
 * The worker side: `init` gets the workerData and returns the info for the client plus the
 * handler; each call is answered when its handler settles (callers that need one call at a
 * time, like the batcher, make sure of it themselves).
 */
export function serveWorker<Data, Req, Res, Info>(
  init: (data: Data) => Promise<{ info: Info; handle: (req: Req) => Promise<Answer<Res>> | Answer<Res> }>,
): void {
  const port = parentPort;
  if (!port) throw new Error('serveWorker must run inside a worker_thread');
  init(workerData as Data).then(
    ({ info, handle }) => {
      port.on('message', async ({ id, req }: { id: number; req: Req }) => {
        try {
          const { value, transfer } = await handle(req);
          port.postMessage({ kind: 'result', id, value } satisfies Reply, transfer ?? []);
        } catch (err) {
          port.postMessage({ kind: 'error', id, error: toWire(err) } satisfies Reply);
        }
      });
      port.postMessage({ kind: 'ready', info } satisfies Reply);
    },
    (err: unknown) => port.postMessage({ kind: 'failed', error: toWire(err) } satisfies Reply),
  );
}

/**
 * Built code runs the .js worker as is. From TypeScript source (vitest, tsx) the worker must
 * register tsx's loader before importing the .ts entry: Node 20 does not apply `--import` in a
 * worker's execArgv to the worker's own entry module.
 */
function spawn(url: URL, data: unknown): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

export function toWire(err: unknown): WireError {
  if (err instanceof DomainError) {
    const { cause, ...details } = err.details;
    const why = cause === undefined ? undefined : cause instanceof Error ? cause.message : String(cause);
    return { message: err.message, domain: { kind: err.kind, details, ...(why === undefined ? {} : { cause: why }) } };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

export function fromWire(error: WireError): Error {
  const d = error.domain;
  if (!d || !(ERROR_KINDS as readonly string[]).includes(d.kind)) return new Error(error.message);
  return new DomainError(d.kind, error.message, d.cause === undefined ? d.details : { ...d.details, cause: new Error(d.cause) });
}
