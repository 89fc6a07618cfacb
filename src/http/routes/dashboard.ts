import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { PublicStats } from '../../core/usage-report.js';

/** dist/dashboard at the package root, from src/http/routes (tests, tsx) or dist/http/routes alike. */
export const DASHBOARD_ASSETS_DIR = fileURLToPath(new URL('../../../dist/dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The pages' own code and styles only: no inline script or style, no other origin, not
 * framable. The API answers no cross-origin requests (no CORS headers), so a page of another
 * origin cannot read with the token a user typed here.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

interface Asset {
  body: Buffer;
  type: string;
}

export interface DashboardRoutesOptions {
  /** Where `npm run build` put the pages (index.html, stats.html, bundles). */
  assetsDir: string;
  /** PUBLIC_STATS_ENABLED: /stats and /stats.json exist only when the operator says so. */
  publicStats: boolean;
  /** Installation-wide figures for the public page. */
  stats: () => Promise<PublicStats>;
  /** Seconds a public figure is reused: the page is unauthenticated, so counting is bounded. */
  statsCacheSeconds?: number;
}

/** GET /dashboard (+ /dashboard/assets/*), and GET /stats, /stats.json when enabled. */
export async function dashboardRoutes(app: FastifyInstance, opts: DashboardRoutesOptions): Promise<void> {
  let assets: Map<string, Asset> | null = null;
  // Read once, on first use; a missing build is looked for again on the next request.
  const load = async (): Promise<Map<string, Asset> | null> => {
    if (assets) return assets;
    const names = await readdir(opts.assetsDir).catch(() => null);
    if (!names?.includes('index.html')) return null;
    const found = new Map<string, Asset>();
    for (const name of names) {
      const type = TYPES[path.extname(name)];
      if (type) found.set(name, { body: await readFile(path.join(opts.assetsDir, name)), type });
    }
    return (assets = found);
  };
  const send = async (reply: FastifyReply, name: string) => {
    const all = await load();
    const asset = all?.get(name);
    if (!all) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The dashboard is not built in this installation: run `npm run build` (npm ci runs it), then restart the server.\n');
    }
    if (!asset) return reply.callNotFound();
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  };

  app.addHook('onSend', async (_request, reply, payload) => {
    void reply.headers(SECURITY_HEADERS);
    return payload;
  });

  app.get('/', async (_request, reply) => reply.redirect('/dashboard'));
  app.get('/dashboard', async (_request, reply) => send(reply, 'index.html'));
  app.get('/dashboard/', async (_request, reply) => reply.redirect('/dashboard'));
  app.get<{ Params: { file: string } }>('/dashboard/assets/:file', async (request, reply) => {
    const file = request.params.file;
    // Only names of the build's own top-level files: nothing else on disk is reachable.
    if (file.endsWith('.html') || file !== path.basename(file)) return reply.callNotFound();
    return send(reply, file);
  });

  if (!opts.publicStats) return;
  const ttlMs = (opts.statsCacheSeconds ?? 10) * 1000;
  let cached: { at: number; value: Promise<PublicStats> } | null = null;
  const stats = (): Promise<PublicStats> => {
    if (!cached || Date.now() - cached.at > ttlMs) {
      const value = opts.stats();
      cached = { at: Date.now(), value };
      value.catch(() => (cached = null));
    }
    return cached.value;
  };
  app.get('/stats', async (_request, reply) => send(reply, 'stats.html'));
  app.get('/stats.json', async () => stats());
}
