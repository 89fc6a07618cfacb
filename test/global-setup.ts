import type { TestProject } from 'vitest/node';
import { startPostgres, startRedis, type RunningService } from './support/services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
  }
}

/** One PostgreSQL server and one Redis for the whole run; each test file makes its own database. */
export default async function setup(project: TestProject) {
  const started: RunningService[] = [];
  let databaseUrl = process.env.TEST_DATABASE_URL;
  let redisUrl = process.env.TEST_REDIS_URL;
  if (!databaseUrl) {
    const pg = await startPostgres();
    started.push(pg);
    databaseUrl = pg.url;
  }
  if (!redisUrl) {
    const redis = await startRedis();
    started.push(redis);
    redisUrl = redis.url;
  }
  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', redisUrl);
  return async () => {
    for (const s of started) await s.stop();
  };
}
