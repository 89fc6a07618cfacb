import { describe, expect, it } from 'vitest';
import { hashPassword, MIN_PASSWORD_LENGTH, passwordProblem, verifyAgainstDummy, verifyPassword } from './passwords.js';

describe('password policy', () => {
  it('refuses short passwords, counting characters rather than UTF-16 units', () => {
    expect(passwordProblem('a'.repeat(MIN_PASSWORD_LENGTH - 1))).toMatch(/at least 10/);
    expect(passwordProblem('🔑'.repeat(MIN_PASSWORD_LENGTH - 1))).toMatch(/at least 10/);
    expect(passwordProblem('a quiet lighthouse')).toBeNull();
  });

  it('refuses very long ones before they cost a hash', () => {
    expect(passwordProblem('x'.repeat(257))).toMatch(/at most 256/);
  });

  it('refuses the most common passwords whatever their case', () => {
    expect(passwordProblem('qwertyuiop')).toMatch(/most commonly used/);
    expect(passwordProblem('PassWord123')).toMatch(/most commonly used/);
    expect(passwordProblem('1234567890')).toMatch(/most commonly used/);
  });
});

describe('password hashing', () => {
  it('argon2id, verifies the password and nothing else, NFC-insensitive', async () => {
    const composed = 'caf\u00e9 au lait, s\u2019il vous pla\u00eet';
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    const h = await hashPassword(composed);
    expect(h).toMatch(/^\$argon2id\$/);
    expect(h).not.toContain(composed);
    expect(await verifyPassword(h, decomposed)).toBe(true);
    expect(await verifyPassword(h, 'cafe au lait')).toBe(false);
  });

  it('a broken stored hash is a refusal, not a crash', async () => {
    expect(await verifyPassword('not a hash', 'whatever password')).toBe(false);
    expect(await verifyAgainstDummy('anything at all')).toBe(false);
  });
});
