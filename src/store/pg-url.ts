/**
 * DATABASE_URL as libpq reads it, handed to postgres.js as a URL it can parse plus the host and
 * port options it cannot read from one. postgres.js takes the host from the URL's authority
 * only: `postgresql:///db?host=/var/run/postgresql` (what psql and most guides use for a unix
 * socket) reached 127.0.0.1:5432 and then sent `host` to the server as a setting, and
 * `postgres://user@/db?host=...` failed as an "Invalid URL".
 */
export interface PgTarget {
  /** What postgres.js parses: user, password, database and the remaining query parameters. */
  url: string;
  /** A host name, or the directory of a unix socket (an absolute path). */
  host?: string;
  port?: number;
}

const URL_SHAPE = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/i;

/** Splits a libpq connection URI into what postgres.js reads from the URL and from options. */
export function pgTarget(raw: string): PgTarget {
  const m = URL_SHAPE.exec(raw);
  if (!m) return { url: raw };
  const [, scheme, authority, rest] = m;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  let hostspec = at >= 0 ? authority.slice(at + 1) : authority;
  let host: string | undefined;
  let port: number | undefined;
  // `%2Fvar%2Frun%2Fpostgresql[:5433]`: a socket directory in the authority, percent-encoded.
  if (/^%2f/i.test(hostspec)) {
    const p = /^(.*?)(?::(\d+))?$/.exec(hostspec)!;
    host = decodeURIComponent(p[1]);
    if (p[2]) port = Number(p[2]);
    hostspec = '';
  }
  // `?host=` and `?port=` override the authority, as in libpq; they are not server settings.
  const q = rest.indexOf('?');
  let path = q >= 0 ? rest.slice(0, q) : rest;
  let query = '';
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    const h = params.get('host');
    const p = params.get('port');
    if (h !== null) {
      host = h;
      params.delete('host');
    }
    if (p !== null && /^\d+$/.test(p)) {
      port = Number(p);
      params.delete('port');
    }
    const s = params.toString();
    query = s ? `?${s}` : '';
  }
  if (host === undefined) return { url: raw };
  // A URL with credentials needs a host to parse at all; the option given beside it wins.
  if (hostspec === '' && userinfo !== '') hostspec = 'localhost';
  if (path === '') path = '/';
  return { url: `${scheme}${userinfo}${hostspec}${path}${query}`, host, ...(port !== undefined ? { port } : {}) };
}

/** The URL without its password, and the socket or host it really reaches, for logs and messages. */
export function describePgUrl(raw: string): string {
  const t = pgTarget(raw);
  let shown: string;
  let port: number;
  try {
    const u = new URL(t.url);
    if (u.password) u.password = '***';
    shown = u.toString();
    // As postgres.js resolves it: the option, else the URL's own port, else the default.
    port = t.port ?? (Number(u.port) || 5432);
  } catch {
    return '(unparsable URL)';
  }
  if (t.host === undefined) return shown;
  const where = t.host.startsWith('/') ? `socket ${t.host}/.s.PGSQL.${port}` : `${t.host}:${port}`;
  return `${shown} via ${where}`;
}
