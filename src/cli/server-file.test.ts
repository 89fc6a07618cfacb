import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readServerFile, removeServerFile, writeServerFile } from './server-file.js';

describe('server.json', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('is complete the moment it appears (written aside and renamed), and read back as written', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-server-file-'));
    dirs.push(dir);
    const info = { pid: process.pid, url: 'http://127.0.0.1:1234', database: 'embedded (PGlite) in ./data', auth_disabled: false };
    const file = await writeServerFile(dir, info);
    expect(readdirSync(path.dirname(file)).filter((f) => f.includes('server.json'))).toEqual(['server.json']);
    expect(await readServerFile(dir)).toMatchObject(info);
    await removeServerFile(dir);
    expect(await readServerFile(dir)).toBeNull();
  });
});
