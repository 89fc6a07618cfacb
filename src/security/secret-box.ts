import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Encrypts tenants' upstream API keys at rest: AES-256-GCM under a master key from `MASTER_KEY`.
 * Every sealed value records the id of the key that sealed it, so keys can be rotated: add a new
 * key first in the list (it seals from then on) and keep the old ones until re-sealed.
 */

const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DEFAULT_KEY_ID = 'k1';
const KEY_ID_RE = /^[A-Za-z0-9_.-]{1,32}$/;
const HEX_KEY_RE = /^[0-9a-fA-F]{64}$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;
/** Versioned so a future format can be told apart; the key id is bound so a row can't be relabelled. */
const AAD_PREFIX = 'embedding-cache/secret-box/v1/';
/** Secrets this short would be mostly revealed by their last four characters. */
const MIN_LENGTH_FOR_LAST4 = 12;

export interface MasterKeys {
  /** The id that `seal` uses. */
  readonly currentId: string;
  /** Every key usable by `open`, by id (the current one included). */
  readonly keys: ReadonlyMap<string, Buffer>;
}

export interface SealedSecret {
  keyId: string;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
  /** The plaintext's last four characters, for listings ('' when the secret is too short to show any). */
  last4: string;
}

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

const FORMAT_HELP =
  'MASTER_KEY must be 32 random bytes as 64 hex characters or as base64, optionally with key ids for rotation: ' +
  '"id1:KEY1,id2:KEY2" (the first seals, all open). Generate one with `openssl rand -hex 32`.';

/** Parses `MASTER_KEY`: a single key (id `k1`) or `id1:KEY1,id2:KEY2` with the current key first. */
export function parseMasterKeys(value: string): MasterKeys {
  const trimmed = value.trim();
  if (trimmed === '') throw new SecretBoxError(`MASTER_KEY is empty. ${FORMAT_HELP}`);
  const parts = trimmed.split(',').map((p) => p.trim());
  const keys = new Map<string, Buffer>();
  let currentId: string | undefined;
  for (const [i, part] of parts.entries()) {
    if (part === '') throw new SecretBoxError(`MASTER_KEY has an empty entry (position ${i + 1}). ${FORMAT_HELP}`);
    const colon = part.indexOf(':');
    // Only a list needs ids; a single bare key gets the default id.
    if (colon < 0 && parts.length > 1) {
      throw new SecretBoxError(`MASTER_KEY entry ${i + 1} has no key id; with several keys each needs one. ${FORMAT_HELP}`);
    }
    const id = colon < 0 ? DEFAULT_KEY_ID : part.slice(0, colon).trim();
    const material = colon < 0 ? part : part.slice(colon + 1).trim();
    if (!KEY_ID_RE.test(id)) {
      throw new SecretBoxError(`MASTER_KEY key id "${id}" is invalid: use 1 to 32 of A-Z a-z 0-9 _ . -. ${FORMAT_HELP}`);
    }
    if (keys.has(id)) throw new SecretBoxError(`MASTER_KEY lists key id "${id}" twice. ${FORMAT_HELP}`);
    keys.set(id, decodeKey(material, id));
    currentId ??= id;
  }
  if (currentId === undefined) throw new SecretBoxError(`MASTER_KEY has no keys. ${FORMAT_HELP}`);
  return { currentId, keys };
}

function decodeKey(material: string, id: string): Buffer {
  // Hex first: 64 hex characters are also valid base64 (of 48 bytes).
  if (HEX_KEY_RE.test(material)) return Buffer.from(material, 'hex');
  let bytes: Buffer | undefined;
  if (BASE64_RE.test(material)) bytes = Buffer.from(material, 'base64');
  else if (BASE64URL_RE.test(material)) bytes = Buffer.from(material, 'base64url');
  if (bytes === undefined) {
    // Never echo the material: it is (meant to be) a secret.
    throw new SecretBoxError(`MASTER_KEY key "${id}" is neither hex nor base64. ${FORMAT_HELP}`);
  }
  if (bytes.length !== KEY_BYTES) {
    throw new SecretBoxError(
      `MASTER_KEY key "${id}" decodes to ${bytes.length} bytes; AES-256 needs exactly ${KEY_BYTES}. ${FORMAT_HELP}`,
    );
  }
  return bytes;
}

function aad(keyId: string): Buffer {
  return Buffer.from(AAD_PREFIX + keyId, 'utf8');
}

/** Encrypts under the current key with a fresh random IV. */
export function seal(plaintext: string, keys: MasterKeys): SealedSecret {
  if (plaintext === '') throw new SecretBoxError('Refusing to seal an empty secret.');
  const keyId = keys.currentId;
  const key = keys.keys.get(keyId);
  if (!key) throw new SecretBoxError(`The current master key id "${keyId}" has no key.`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(keyId));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  const chars = Array.from(plaintext);
  const last4 = chars.length >= MIN_LENGTH_FOR_LAST4 ? chars.slice(-4).join('') : '';
  return { keyId, iv, tag, ciphertext, last4 };
}

/** Decrypts and authenticates; throws SecretBoxError for an unknown key id or anything altered. */
export function open(sealed: SealedSecret, keys: MasterKeys): string {
  const key = keys.keys.get(sealed.keyId);
  if (!key) {
    const known = [...keys.keys.keys()].join(', ');
    throw new SecretBoxError(
      `This secret was sealed with master key id "${sealed.keyId}", which MASTER_KEY does not contain (it has: ${known}). ` +
        'Add that key back to MASTER_KEY (after the current one) to read it.',
    );
  }
  if (sealed.iv.length !== IV_BYTES) throw new SecretBoxError(`Sealed secret has a ${sealed.iv.length}-byte IV; expected ${IV_BYTES}.`);
  // GCM would accept a truncated tag, weakening authentication; insist on the full 16 bytes.
  if (sealed.tag.length !== TAG_BYTES) throw new SecretBoxError(`Sealed secret has a ${sealed.tag.length}-byte tag; expected ${TAG_BYTES}.`);
  const decipher = createDecipheriv(ALGORITHM, key, sealed.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(sealed.keyId));
  decipher.setAuthTag(sealed.tag);
  try {
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretBoxError(
      `Sealed secret failed authentication under master key "${sealed.keyId}": it was altered, or that key id now holds a different key.`,
    );
  }
}
