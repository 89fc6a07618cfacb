import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { countLines, formatSeconds, plainLine, startProgress } from './progress.js';

/** A piped stream (not a terminal) that keeps what was written. */
function piped() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

describe('progress when piped', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('writes a plain line every interval with count, %, rate and ETA, and a summary at the end', async () => {
    const out = piped();
    let now = 0;
    const p = startProgress({ label: 'seed', unit: 'inputs', total: 1000, stream: out.stream, intervalMs: 2000, now: () => now, detail: () => '3 hits' });
    now = 2000;
    p.update(250);
    await vi.advanceTimersByTimeAsync(2000);
    expect(out.text()).toBe('seed: 250/1000 inputs (25%), 125 inputs/s, ETA 6 s | 3 hits\n');
    now = 4000;
    p.update(500);
    await vi.advanceTimersByTimeAsync(2000);
    p.finish('seeded 500 inputs');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(out.text().split('\n')).toEqual(['seed: 250/1000 inputs (25%), 125 inputs/s, ETA 6 s | 3 hits', 'seed: 500/1000 inputs (50%), 125 inputs/s, ETA 4 s | 3 hits', 'seeded 500 inputs', '']);
  });

  it('writes only the summary when the work ends within one interval, never a terminal escape', async () => {
    const out = piped();
    const p = startProgress({ label: 'export', unit: 'rows', total: 10, stream: out.stream });
    p.update(10);
    p.finish('exported 10 rows of acme');
    await vi.advanceTimersByTimeAsync(5000);
    expect(out.text()).toBe('exported 10 rows of acme\n');
  });
});

describe('progress text', () => {
  it('says counts without a total, and formats ETAs', () => {
    expect(plainLine('import', 'rows', 3000, null, 1500)).toBe('import: 3000 rows, 1500 rows/s');
    expect(plainLine('onnx/model.onnx', 'B', 50, 200, 0)).toBe('onnx/model.onnx: 50/200 B (25%), 0.0 B/s');
    expect(formatSeconds(125)).toBe('2 min 5 s');
    expect(formatSeconds(7300)).toBe('2 h 1 min');
  });

  it('counts the non-empty lines of a file (with or without a final newline)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lines-'));
    writeFileSync(path.join(dir, 'a'), 'one\n\ntwo\r\n  \nthree');
    writeFileSync(path.join(dir, 'b'), 'one\ntwo\n');
    expect(await countLines(path.join(dir, 'a'))).toBe(3);
    expect(await countLines(path.join(dir, 'b'))).toBe(2);
  });
});
