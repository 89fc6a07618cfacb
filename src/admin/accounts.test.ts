import { describe, expect, it } from 'vitest';
import { normaliseEmail, SignupInput, tenantNameFor } from './accounts.js';

describe('emails', () => {
  it('are trimmed, NFC-normalised and lowercased', () => {
    expect(normaliseEmail('  Jos\u0065\u0301@Example.COM ')).toBe('jos\u00e9@example.com');
    expect(SignupInput.parse({ email: ' A@B.example ', password: 'x' }).email).toBe('a@b.example');
  });

  it('must be email addresses', () => {
    for (const email of ['', 'plain', 'a@', '@b.example', 'a b@c.example']) expect(SignupInput.safeParse({ email, password: 'x' }).success).toBe(false);
  });
});

describe('tenant names from emails', () => {
  it.each([
    ['jane.doe@example.com', 'jane.doe'],
    ['Jane.Doe+news@example.com', 'jane.doe-news'],
    ['_x_@example.com', 'x'],
    ['jos\u00e9@example.com', 'jose'],
    ['!!!@example.com', 'user'],
    [`${'a'.repeat(80)}@example.com`, 'a'.repeat(40)],
  ])('%s -> %s', (email, name) => {
    const n = tenantNameFor(email);
    expect(n).toBe(name);
    expect(n).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
  });
});
