import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, parseMasterKeys, seal, SecretBoxError, type SealedSecret } from './secret-box.js';

const HEX_A = randomBytes(32).toString('hex');
const HEX_B = randomBytes(32).toString('hex');
const SECRET = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123456789WXYZ';

function copy(s: SealedSecret): SealedSecret {
  return { ...s, iv: Buffer.from(s.iv), tag: Buffer.from(s.tag), ciphertext: Buffer.from(s.ciphertext) };
}

describe('parseMasterKeys', () => {
  it('accepts a single hex key under id k1', () => {
    const keys = parseMasterKeys(HEX_A);
    expect(keys.currentId).toBe('k1');
    expect(keys.keys.get('k1')).toEqual(Buffer.from(HEX_A, 'hex'));
  });

  it('accepts upper-case hex and surrounding whitespace', () => {
    const keys = parseMasterKeys(`  ${HEX_A.toUpperCase()}\n`);
    expect(keys.keys.get('k1')).toEqual(Buffer.from(HEX_A, 'hex'));
  });

  it('accepts base64 and base64url of 32 bytes', () => {
    const raw = Buffer.from('fb'.repeat(32), 'hex'); // 0xfb bytes give '+'/'/' vs '-'/'_'
    expect(parseMasterKeys(raw.toString('base64')).keys.get('k1')).toEqual(raw);
    expect(parseMasterKeys(raw.toString('base64url')).keys.get('k1')).toEqual(raw);
  });

  it('parses id:key lists with the first as current', () => {
    const b64 = randomBytes(32).toString('base64');
    const keys = parseMasterKeys(`2025-06:${HEX_B}, old:${b64}`);
    expect(keys.currentId).toBe('2025-06');
    expect([...keys.keys.keys()]).toEqual(['2025-06', 'old']);
    expect(keys.keys.get('old')).toEqual(Buffer.from(b64, 'base64'));
  });

  it('accepts a single key with an explicit id', () => {
    expect(parseMasterKeys(`main:${HEX_A}`).currentId).toBe('main');
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['abc', /decodes to 2 bytes/],
    ['not a key!', /neither hex nor base64/],
    ['z'.repeat(64), /decodes to 48 bytes/],
    [HEX_A.slice(0, 62), /decodes to \d+ bytes; AES-256 needs exactly 32/],
    [randomBytes(16).toString('base64'), /decodes to 16 bytes/],
    [randomBytes(48).toString('base64'), /decodes to 48 bytes/],
    [`${HEX_A},${HEX_B}`, /has no key id/],
    [`a:${HEX_A},a:${HEX_B}`, /twice/],
    [`a:${HEX_A},`, /empty entry/],
    [`bad id:${HEX_A}`, /key id "bad id" is invalid/],
    [`:${HEX_A}`, /key id "" is invalid/],
  ])('rejects %j with a clear message', (value, message) => {
    expect(() => parseMasterKeys(value)).toThrow(SecretBoxError);
    expect(() => parseMasterKeys(value)).toThrow(message);
    expect(() => parseMasterKeys(value)).toThrow(/openssl rand -hex 32/);
  });

  it('never echoes key material in errors', () => {
    const material = randomBytes(20).toString('hex');
    try {
      parseMasterKeys(`k:${material}`);
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain(material);
    }
  });
});

describe('seal / open', () => {
  const keys = parseMasterKeys(HEX_A);

  it('round-trips', () => {
    const sealed = seal(SECRET, keys);
    expect(sealed.keyId).toBe('k1');
    expect(sealed.iv).toHaveLength(12);
    expect(sealed.tag).toHaveLength(16);
    expect(sealed.last4).toBe('WXYZ');
    expect(open(sealed, keys)).toBe(SECRET);
  });

  it('round-trips non-ASCII text', () => {
    const s = 'clé-secrète-🔑-0123456789';
    const sealed = seal(s, keys);
    expect(open(sealed, keys)).toBe(s);
    expect(sealed.last4).toBe('6789');
  });

  it('uses a fresh IV each time, so equal plaintexts give different ciphertexts', () => {
    const a = seal(SECRET, keys);
    const b = seal(SECRET, keys);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    const ivs = new Set(Array.from({ length: 200 }, () => seal(SECRET, keys).iv.toString('hex')));
    expect(ivs.size).toBe(200);
  });

  it('does not contain the plaintext', () => {
    const sealed = seal(SECRET, keys);
    const all = Buffer.concat([sealed.iv, sealed.tag, sealed.ciphertext]);
    expect(all.includes(Buffer.from(SECRET))).toBe(false);
    expect(all.includes(Buffer.from(SECRET.slice(8, 24)))).toBe(false);
    expect(all.toString('base64')).not.toContain(Buffer.from(SECRET).toString('base64').slice(4, 24));
  });

  it('shows no last4 for short secrets', () => {
    expect(seal('short', keys).last4).toBe('');
  });

  it('refuses to seal an empty secret', () => {
    expect(() => seal('', keys)).toThrow(/empty secret/);
  });

  it('detects a tampered ciphertext', () => {
    const sealed = copy(seal(SECRET, keys));
    sealed.ciphertext[0] ^= 0x01;
    expect(() => open(sealed, keys)).toThrow(SecretBoxError);
    expect(() => open(sealed, keys)).toThrow(/failed authentication/);
  });

  it('detects a tampered tag', () => {
    const sealed = copy(seal(SECRET, keys));
    sealed.tag[15] ^= 0x80;
    expect(() => open(sealed, keys)).toThrow(/failed authentication/);
  });

  it('detects a tampered IV', () => {
    const sealed = copy(seal(SECRET, keys));
    sealed.iv[0] ^= 0x01;
    expect(() => open(sealed, keys)).toThrow(/failed authentication/);
  });

  it('refuses a truncated tag rather than accepting weaker authentication', () => {
    const sealed = copy(seal(SECRET, keys));
    expect(() => open({ ...sealed, tag: sealed.tag.subarray(0, 12) }, keys)).toThrow(/12-byte tag; expected 16/);
    expect(() => open({ ...sealed, iv: Buffer.alloc(16) }, keys)).toThrow(/16-byte IV; expected 12/);
  });

  it('binds the key id: relabelling a secret to another id holding the same key fails', () => {
    const twin = parseMasterKeys(`a:${HEX_A},b:${HEX_A}`);
    const sealed = seal(SECRET, twin);
    expect(sealed.keyId).toBe('a');
    expect(open(sealed, twin)).toBe(SECRET);
    expect(() => open({ ...sealed, keyId: 'b' }, twin)).toThrow(/failed authentication/);
  });

  it('fails clearly for an unknown key id', () => {
    const sealed = seal(SECRET, parseMasterKeys(`gone:${HEX_B}`));
    expect(() => open(sealed, keys)).toThrow(SecretBoxError);
    expect(() => open(sealed, keys)).toThrow(/master key id "gone", which MASTER_KEY does not contain \(it has: k1\)/);
  });

  it('fails when the id is known but the key behind it changed', () => {
    const sealed = seal(SECRET, parseMasterKeys(`k1:${HEX_B}`));
    expect(() => open(sealed, keys)).toThrow(/failed authentication/);
  });

  it('supports rotation: old secrets open after a new current key is added', () => {
    const before = parseMasterKeys(HEX_A); // single key: id k1
    const old = seal(SECRET, before);
    const after = parseMasterKeys(`k2:${HEX_B},k1:${HEX_A}`);
    expect(open(old, after)).toBe(SECRET);
    const fresh = seal('sk-new-key-000000000000', after);
    expect(fresh.keyId).toBe('k2');
    expect(open(fresh, after)).toBe('sk-new-key-000000000000');
    // The old configuration cannot read secrets sealed under the new key.
    expect(() => open(fresh, before)).toThrow(/"k2"/);
  });
});
