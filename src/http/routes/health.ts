import type { FastifyInstance } from 'fastify';
import type { Embedder } from '../../core/types.js';

export interface HealthRoutesOptions {
  /** Resolves when the store answers a trivial query. */
  pingStore: () => Promise<unknown>;
  /** null when no Redis is configured. */
  pingRedis: (() => Promise<unknown>) | null;
  backends: () => Embedder[];
  /** Each dependency check gives up after this long: /readyz must answer while one hangs. */
  checkTimeoutMs?: number;
}

const NO_BACKEND =
  'no backend serves any model: set UPSTREAM_BASE_URL (and UPSTREAM_API_KEY) for an OpenAI-compatible upstream, MODEL_DIR for a local model directory, or run `embedding-cache models pull nomic-ai/nomic-embed-text-v1.5`';

/**
 * /healthz: the process is alive. /readyz: 200 `ready` when everything answers; 200 `degraded`
 * when a dependency (store, Redis, one of several backends) is away but requests are still
 * served; 503 `not_ready` with the reason when no backend can serve any model.
 */
export async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const timeoutMs = opts.checkTimeoutMs ?? 800;
  const check = (p: () => Promise<unknown>) => withDeadline(p(), timeoutMs);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const backends = opts.backends();
    const [store, redis, ...ready] = await Promise.all([
      check(opts.pingStore),
      opts.pingRedis ? check(opts.pingRedis) : Promise.resolve(null),
      ...backends.map((b) => check(async () => {
        if (!(await b.ready())) throw new Error('not ready');
      })),
    ]);
    const checks: Record<string, boolean> = { postgres: store === true };
    backends.forEach((b, i) => (checks[b.name] = ready[i] === true));
    if (redis !== null) checks.redis = redis === true;
    const serving = ready.filter((r) => r === true).length;
    const reasons: string[] = [];
    if (backends.length === 0) reasons.push(NO_BACKEND);
    else if (serving === 0) reasons.push('no backend is ready: see the checks and the server log');
    if (store !== true) reasons.push('the cache store does not answer: requests are computed and served without it');
    if (redis === false) reasons.push('Redis does not answer: rate limits run in-process');
    if (serving > 0 && serving < backends.length) reasons.push('some backends are not ready');
    const status = serving === 0 ? 'not_ready' : reasons.length > 0 ? 'degraded' : 'ready';
    void reply.code(status === 'not_ready' ? 503 : 200);
    return { status, checks, ...(reasons.length > 0 ? { reasons } : {}) };
  });
}

/** true when `p` resolves within `ms`, false when it rejects or takes longer. */
function withDeadline(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    p.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}
