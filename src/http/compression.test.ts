import { describe, expect, it } from 'vitest';
import { chooseCodec, isLoopback, worthCompressing } from './compression.js';

describe('chooseCodec', () => {
  it('prefers brotli when the client accepts it, as Node’s fetch (the OpenAI SDK) does', () => {
    expect(chooseCodec('gzip, deflate, br', true)).toBe('br');
    expect(chooseCodec('gzip, deflate, br', false)).toBe('gzip');
  });
  it('falls back to gzip, and to nothing for clients that accept neither', () => {
    expect(chooseCodec('gzip, deflate', true)).toBe('gzip');
    expect(chooseCodec('deflate', true)).toBeNull();
    expect(chooseCodec('identity', true)).toBeNull();
    expect(chooseCodec(undefined, true)).toBeNull();
    expect(chooseCodec('', true)).toBeNull();
  });
  it('honours q=0 as a refusal and * as any codec', () => {
    expect(chooseCodec('br;q=0, gzip', true)).toBe('gzip');
    expect(chooseCodec('br;q=0.0, gzip;q=0', true)).toBeNull();
    expect(chooseCodec('br;q=0.5', true)).toBe('br');
    expect(chooseCodec('*', true)).toBe('br');
    expect(chooseCodec('GZIP', true)).toBe('gzip');
  });
});

describe('worthCompressing', () => {
  it('never compresses a body marked incompressible in auto, whatever its size', () => {
    expect(worthCompressing('auto', 10_000_000, 65536, true)).toBe(false);
    expect(worthCompressing('auto', 65536, 65536, false)).toBe(true);
  });
  it('leaves bodies under the minimum alone in every mode, and everything alone when off', () => {
    for (const mode of ['auto', 'gzip', 'br'] as const) expect(worthCompressing(mode, 4095, 4096, false)).toBe(false);
    expect(worthCompressing('off', 10_000_000, 0, false)).toBe(false);
  });
  it('compresses incompressible bodies too when gzip or br is forced (bytes dearer than CPU)', () => {
    expect(worthCompressing('gzip', 8192, 4096, true)).toBe(true);
    expect(worthCompressing('br', 8192, 4096, true)).toBe(true);
  });
});

describe('isLoopback', () => {
  it('knows a client on this machine, in every form a socket reports it', () => {
    for (const a of ['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a)).toBe(true);
    for (const a of ['10.0.0.2', '192.168.1.9', '203.0.113.7', '::ffff:10.1.2.3', 'fe80::1', '2001:db8::1', undefined]) expect(isLoopback(a)).toBe(false);
  });
});
