import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('createLogger (json)', () => {
  it('writes every line asynchronously and loses none when the process exits right after logging', () => {
    // A child logs 2000 lines and exits at once: the asynchronous destination must be flushed on exit.
    const script = `
      const { createLogger } = await import(${JSON.stringify(new URL('./log.ts', import.meta.url).href)});
      const log = createLogger('info', 'json');
      for (let i = 0; i < 2000; i++) log.info({ i }, 'line');
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { i: number; msg: string });
    expect(lines).toHaveLength(2000);
    expect(lines[1999]).toMatchObject({ i: 1999, msg: 'line' });
  });
});
