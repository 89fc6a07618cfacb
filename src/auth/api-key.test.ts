import { describe, expect, it } from 'vitest';
import { generateApiKey, maskKey } from './api-key.js';

describe('maskKey', () => {
  it('shows a real key by its head and tail only', () => {
    const { key } = generateApiKey();
    const shown = maskKey(key);
    expect(shown.startsWith(key.slice(0, 6))).toBe(true);
    expect(shown.endsWith(key.slice(-4))).toBe(true);
    expect(shown).toContain('**********');
    expect(shown).not.toContain(key.slice(6, -4));
  });

  it('never repeats a short key or shows it whole', () => {
    expect(maskKey('nope')).toBe('no**');
    expect(maskKey('a')).toBe('a*');
    expect(maskKey('sk-1234567')).toBe('sk********');
    expect(maskKey('sk-1234567890abcdef')).toBe('sk*****************');
    expect(maskKey('sk-1234567890abcdefg')).toBe('sk-123**********defg');
  });
});
