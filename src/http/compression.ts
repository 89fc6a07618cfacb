import zlib from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Response compression, spent only where it pays (measured on this project's bodies, see
 * bench/README.md): a base64 embedding is float32 noise, so gzip only undoes base64's 4/3 (75 %
 * of the size at 17-36 µs of CPU per KB, two to three times what the whole hit costs); float
 * JSON halves (47 % with gzip level 1, 49 % with brotli quality 1 at half gzip's CPU per byte).
 *
 * - `auto` (default): bodies marked incompressible (base64 embeddings) are never compressed;
 *   other JSON/text bodies of at least `minBytes` are, with brotli quality 1 when the client
 *   accepts `br` (Node's fetch, hence the OpenAI SDK, does), else gzip level 1, unless the
 *   client is on this machine (a loopback address): there the bytes cross no wire, and
 *   compressing a 1 MB float response cost 17x the CPU of sending it (bench `hit`, 64 × float).
 * - `gzip` / `br`: every JSON/text body of at least `minBytes`, base64 embeddings included (a
 *   link where bytes cost more than CPU); `br` falls back to gzip for clients without it.
 * - `off`: never.
 */
export type CompressionMode = 'auto' | 'off' | 'gzip' | 'br';

export interface CompressionOptions {
  mode: CompressionMode;
  /** Bodies smaller than this are sent as they are. */
  minBytes: number;
}

declare module 'fastify' {
  interface FastifyReply {
    /** Set by a route whose body would barely shrink (base64 embeddings): `auto` leaves it as it is. */
    incompressible: boolean;
  }
}

type Codec = 'br' | 'gzip';

const COMPRESSIBLE_TYPE = /json|^text\//;
// Below this a body is compressed inline (a few hundred µs at most); above, on libuv's thread
// pool, so that one big response does not stall every other request on the event loop.
const SYNC_MAX_BYTES = 32 * 1024;

const brOptions = (size: number): zlib.BrotliOptions => ({
  params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size },
});
const GZIP_OPTIONS: zlib.ZlibOptions = { level: 1 };

/** The codec a client accepts, from its accept-encoding (q=0 refuses a codec; `*` means any). */
export function chooseCodec(acceptEncoding: string | undefined, preferBrotli: boolean): Codec | null {
  if (!acceptEncoding) return null;
  let br = false;
  let gzip = false;
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const refused = params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p));
    if (refused) continue;
    if (name === 'br') br = true;
    else if (name === 'gzip' || name === 'x-gzip') gzip = true;
    else if (name === '*') br = gzip = true;
  }
  if (br && preferBrotli) return 'br';
  return gzip ? 'gzip' : null;
}

/** Whether a body of this size and kind is compressed under `mode` (before asking the client). */
export function worthCompressing(mode: CompressionMode, bytes: number, minBytes: number, incompressible: boolean): boolean {
  if (mode === 'off' || bytes < minBytes) return false;
  return mode !== 'auto' || !incompressible;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped form: a client on this machine. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

export const compressionPlugin = fp(
  async (app: FastifyInstance, opts: CompressionOptions) => {
    app.decorateReply('incompressible', false);
    if (opts.mode === 'off') return;
    const preferBrotli = opts.mode !== 'gzip';
    app.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, value?: unknown) => void) => {
      if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return done(null, payload);
      const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
      if (!worthCompressing(opts.mode, size, opts.minBytes, reply.incompressible)) return done(null, payload);
      const type = reply.getHeader('content-type');
      if (typeof type !== 'string' || !COMPRESSIBLE_TYPE.test(type) || reply.hasHeader('content-encoding')) return done(null, payload);
      if (opts.mode === 'auto' && isLoopback(request.socket.remoteAddress)) return done(null, payload);
      void reply.header('vary', 'accept-encoding');
      const codec = chooseCodec(request.headers['accept-encoding'], preferBrotli);
      if (codec === null) return done(null, payload);
      const finish = (out: Buffer) => {
        void reply.header('content-encoding', codec).header('content-length', out.length);
        done(null, out);
      };
      if (size <= SYNC_MAX_BYTES) {
        try {
          finish(codec === 'br' ? zlib.brotliCompressSync(payload, brOptions(size)) : zlib.gzipSync(payload, GZIP_OPTIONS));
        } catch (err) {
          done(err as Error);
        }
        return;
      }
      const cb = (err: Error | null, out: Buffer) => (err ? done(err) : finish(out));
      if (codec === 'br') zlib.brotliCompress(payload, brOptions(size), cb);
      else zlib.gzip(payload, GZIP_OPTIONS, cb);
    });
  },
  { name: 'compression', fastify: '5.x' },
);
