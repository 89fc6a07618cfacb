/**
 * The peer gateway reference for the miss path: the open-source Portkey AI gateway
 * (`@portkey-ai/gateway`) passing `/v1/embeddings` through to the same fake upstream the server
 * calls. Installed by the bench into a git-ignored folder of its own (bench/.peer/), never as a
 * project dependency. Its `@hono/node-server` is pinned to 1.13.8 through `overrides`: newer
 * versions fail every request (Portkey issue 1389).
 *
 * The gateway is told the upstream per request: `x-portkey-provider: openai` and
 * `x-portkey-custom-host: <upstream>/v1` (127.0.0.1 is in its default trusted custom hosts);
 * the client's `authorization` header is passed on as the provider key.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnTracked, stopChild, tailOf, waitHttp } from './services.mjs';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PEER_DIR = path.join(BENCH, '.peer');
export const PEER_VERSION = '1.15.2';
const HONO_NODE_SERVER = '1.13.8';
const ENTRY = path.join(PEER_DIR, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');

const MANIFEST = {
  name: 'embedding-cache-bench-peer',
  private: true,
  description: 'The peer gateway the miss bench measures against (installed by bench/lib/peer-gateway.mjs; not a project dependency).',
  type: 'module',
  dependencies: { '@portkey-ai/gateway': PEER_VERSION },
  overrides: { '@hono/node-server': HONO_NODE_SERVER },
};

function installedVersion(pkg) {
  try {
    return JSON.parse(readFileSync(path.join(PEER_DIR, 'node_modules', ...pkg.split('/'), 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/**
 * Installs the gateway into bench/.peer/ unless the pinned versions are already there.
 * Returns { ok: true, entry, version } or { ok: false, reason } (no registry, a failed install):
 * the caller reports the reason and measures without the peer.
 */
export function ensurePeerGateway(log = () => {}) {
  const ready = () => existsSync(ENTRY) && installedVersion('@portkey-ai/gateway') === PEER_VERSION && installedVersion('@hono/node-server') === HONO_NODE_SERVER;
  if (ready()) return { ok: true, entry: ENTRY, version: PEER_VERSION };
  mkdirSync(PEER_DIR, { recursive: true });
  writeFileSync(path.join(PEER_DIR, 'package.json'), `${JSON.stringify(MANIFEST, null, 2)}\n`);
  // Everything that npm writes stays in the folder; the gateway's own scripts are not needed.
  writeFileSync(path.join(PEER_DIR, '.gitignore'), '*\n');
  log(`installing the peer gateway @portkey-ai/gateway@${PEER_VERSION} into ${path.relative(path.dirname(BENCH), PEER_DIR)}/ (once)`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', '--loglevel=error'], {
    cwd: PEER_DIR,
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (r.status !== 0 || !ready()) {
    const out = `${r.error?.message ?? ''}${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-4).join(' | ');
    return { ok: false, reason: `npm install of @portkey-ai/gateway@${PEER_VERSION} failed (${r.signal ?? `exit ${r.status}`}): ${out || 'no output'}` };
  }
  return { ok: true, entry: ENTRY, version: PEER_VERSION };
}

/**
 * Starts the installed gateway as its own process on a free loopback port (headless: no console
 * UI). Returns { base, pid, stop }; throws with its log's tail when it does not come up.
 */
export async function startPeerGateway(entry, logDir) {
  const port = await freePort();
  const logFile = path.join(logDir, `peer-gateway-${port}.log`);
  // NODE_ENV=production: no console UI and no request log kept for it.
  const child = spawnTracked(process.execPath, [entry, `--port=${port}`, '--headless'], { cwd: PEER_DIR, env: { ...process.env, NODE_ENV: 'production' }, logFile });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${base}/`, 'peer gateway', 60_000, child);
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw new Error(`${err.message}\n--- ${logFile} ---\n${tailOf(logFile)}`);
  }
  return { base, pid: child.pid, stop: () => stopChild(child) };
}

/** The headers that make the gateway pass a request through to `upstreamBase` (`http://127.0.0.1:P/v1`). */
export function peerGatewayHeaders(upstreamBase, upstreamKey) {
  return { authorization: `Bearer ${upstreamKey}`, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': upstreamBase };
}
