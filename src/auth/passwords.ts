import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hash, verify } from '@node-rs/argon2';

/**
 * Account passwords: argon2id through @node-rs/argon2 (its defaults: 19 MiB, 2 passes, 1 lane,
 * OWASP's minimum), a length rule and a list of the most common passwords. Passwords are
 * NFC-normalised first, so the same password typed on two keyboards verifies.
 */

export const MIN_PASSWORD_LENGTH = 10;
/** Far above any real password; stops a megabyte "password" from costing a hash. */
export const MAX_PASSWORD_LENGTH = 256;

/** data/common-passwords.txt at the package root, from src/auth or dist/auth alike. */
const COMMON_PASSWORDS_FILE = fileURLToPath(new URL('../../data/common-passwords.txt', import.meta.url));
let common: Set<string> | null = null;

function commonPasswords(): Set<string> {
  common ??= new Set(
    readFileSync(COMMON_PASSWORDS_FILE, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#')),
  );
  return common;
}

/** Why a password is refused, or null when it is acceptable. */
export function passwordProblem(password: string): string | null {
  const pw = password.normalize('NFC');
  // Code points, not UTF-16 units: an emoji is one character to the person typing it.
  const length = [...pw].length;
  if (length < MIN_PASSWORD_LENGTH) return `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`;
  if (length > MAX_PASSWORD_LENGTH) return `The password must be at most ${MAX_PASSWORD_LENGTH} characters long.`;
  if (commonPasswords().has(pw.toLowerCase())) {
    return 'This password is one of the most commonly used ones and is easy to guess: choose another (a few unrelated words work well).';
  }
  return null;
}

export function hashPassword(password: string): Promise<string> {
  return hash(password.normalize('NFC'));
}

/** False for a wrong password or an unreadable hash; never throws for either. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password.normalize('NFC'));
  } catch {
    return false;
  }
}

let dummy: Promise<string> | null = null;

/**
 * Spends the same work as a real check, for a login whose email is unknown: the answer and
 * its timing then do not tell whether the email has an account.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  await verifyPassword(await prepareDummy(), password);
  return false;
}

/** Hashes the dummy ahead of the first login, so that login's timing gives nothing away either. */
export function prepareDummy(): Promise<string> {
  dummy ??= hash('not-a-real-account-password');
  return dummy;
}
