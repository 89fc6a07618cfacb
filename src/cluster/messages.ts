/**
 * The in-flight registry's IPC between `serve` workers and their primary (node:cluster, with
 * `serialization: 'advanced'`, so vector bytes travel as bytes). Every message carries `ec`;
 * other traffic on the channel (rate-limiter-flexible's, Node's own) is left alone.
 */
import { DomainError, ERROR_KINDS, type DomainErrorDetails, type ErrorKind } from '../core/errors.js';

export interface WireValue {
  bytes: Uint8Array;
  tokens: number;
}

/** An owner's failure, as its waiters rethrow it. */
export interface WireError {
  kind: ErrorKind;
  message: string;
  details: Omit<DomainErrorDetails, 'cause' | 'limits'>;
}

export type ToPrimary =
  | { ec: 'claim'; id: number; keys: string[] }
  | { ec: 'settle'; key: string; value: WireValue; cached: boolean }
  | { ec: 'fail'; key: string; error: WireError }
  | { ec: 'stored'; keys: string[] }
  | { ec: 'drop'; tenantId: number };

/** Per claimed key: resolve it yourself, wait for its owner, or its computed value. */
export type ClaimAnswer = 'own' | 'wait' | WireValue;

export type ToWorker =
  | { ec: 'claimed'; id: number; answers: ClaimAnswer[] }
  | { ec: 'result'; key: string; value: WireValue; cached: boolean }
  | { ec: 'failed'; key: string; error: WireError }
  /** The key's owner stopped: this worker, which waited for it, resolves it now. */
  | { ec: 'take'; key: string };

const PRIMARY_KINDS = new Set(['claim', 'settle', 'fail', 'stored', 'drop']);
const WORKER_KINDS = new Set(['claimed', 'result', 'failed', 'take']);

function tagged(msg: unknown): string | null {
  if (typeof msg !== 'object' || msg === null || !('ec' in msg)) return null;
  const ec = (msg as { ec: unknown }).ec;
  return typeof ec === 'string' ? ec : null;
}

/** Our own processes send these; the tag is checked so that foreign traffic is ignored. */
export function isToPrimary(msg: unknown): msg is ToPrimary {
  const t = tagged(msg);
  return t !== null && PRIMARY_KINDS.has(t);
}

export function isToWorker(msg: unknown): msg is ToWorker {
  const t = tagged(msg);
  return t !== null && WORKER_KINDS.has(t);
}

export function toWire(err: unknown): WireError {
  if (err instanceof DomainError) {
    const { param, code, retryAfterSeconds, provider, upstreamStatus, owner } = err.details;
    return { kind: err.kind, message: err.message, details: { param, code, retryAfterSeconds, provider, upstreamStatus, owner } };
  }
  return { kind: 'internal', message: 'computing this input failed in another worker', details: {} };
}

export function fromWire(e: WireError): DomainError {
  const kind = (ERROR_KINDS as readonly string[]).includes(e.kind) ? e.kind : 'internal';
  return new DomainError(kind, e.message, e.details);
}

/** Bytes as they arrive (a Uint8Array after structured clone) as the Buffer the pipeline keeps. */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
