import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';

/**
 * SSRF guard for tenant-supplied provider base URLs. Two layers:
 * - `checkProviderUrl`: static checks when a provider is saved (scheme, credentials, literal IPs, names).
 * - `guardedFetch`: checks every resolved address when a connection is opened, so a name that
 *   resolves to a public address at save time and to 127.0.0.1 later (DNS rebinding) is refused.
 */

export interface SsrfPolicy {
  allowHttp: boolean;
  /** Host names, IPs or CIDRs that are permitted despite the rules (tests, private deployments). */
  allowlist: string[];
}

export class SsrfError extends Error {
  override name = 'SsrfError';
}

// ---------------------------------------------------------------------------------------------
// Addresses

type Family = 'ipv4' | 'ipv6';
interface Rule {
  net: string;
  prefix: number;
  reason: string;
}

/** IPv4 ranges that are not public unicast (IANA special-purpose registry). First match names the reason. */
const V4_RULES: Rule[] = [
  { net: '0.0.0.0', prefix: 8, reason: '"this network" (0.0.0.0/8)' },
  { net: '10.0.0.0', prefix: 8, reason: 'private (10.0.0.0/8)' },
  { net: '100.64.0.0', prefix: 10, reason: 'shared CGNAT space (100.64.0.0/10)' },
  { net: '127.0.0.0', prefix: 8, reason: 'loopback (127.0.0.0/8)' },
  { net: '169.254.0.0', prefix: 16, reason: 'link-local, where cloud metadata services live (169.254.0.0/16)' },
  { net: '172.16.0.0', prefix: 12, reason: 'private (172.16.0.0/12)' },
  { net: '192.0.0.0', prefix: 24, reason: 'IETF protocol assignments (192.0.0.0/24)' },
  { net: '192.0.2.0', prefix: 24, reason: 'documentation (192.0.2.0/24)' },
  { net: '192.88.99.0', prefix: 24, reason: '6to4 relay anycast (192.88.99.0/24)' },
  { net: '192.168.0.0', prefix: 16, reason: 'private (192.168.0.0/16)' },
  { net: '198.18.0.0', prefix: 15, reason: 'benchmarking (198.18.0.0/15)' },
  { net: '198.51.100.0', prefix: 24, reason: 'documentation (198.51.100.0/24)' },
  { net: '203.0.113.0', prefix: 24, reason: 'documentation (203.0.113.0/24)' },
  { net: '224.0.0.0', prefix: 4, reason: 'multicast (224.0.0.0/4)' },
  { net: '255.255.255.255', prefix: 32, reason: 'broadcast' },
  { net: '240.0.0.0', prefix: 4, reason: 'reserved (240.0.0.0/4)' },
];

/** IPv6 ranges refused outright; anything outside 2000::/3 is refused as well (see `v6Reason`). */
const V6_RULES: Rule[] = [
  { net: '::', prefix: 128, reason: 'unspecified (::)' },
  { net: '::1', prefix: 128, reason: 'loopback (::1)' },
  { net: '::', prefix: 96, reason: 'IPv4-compatible, deprecated (::/96)' },
  { net: 'fd00:ec2::254', prefix: 128, reason: 'the AWS metadata service (fd00:ec2::254)' },
  { net: 'fc00::', prefix: 7, reason: 'unique-local, private (fc00::/7)' },
  { net: 'fe80::', prefix: 10, reason: 'link-local (fe80::/10)' },
  { net: 'fec0::', prefix: 10, reason: 'site-local, deprecated (fec0::/10)' },
  { net: 'ff00::', prefix: 8, reason: 'multicast (ff00::/8)' },
  { net: '64:ff9b:1::', prefix: 48, reason: 'local-use NAT64 (64:ff9b:1::/48)' },
  { net: '100::', prefix: 64, reason: 'discard-only (100::/64)' },
  { net: '2001::', prefix: 23, reason: 'IETF protocol assignments, Teredo included (2001::/23)' },
  { net: '2001:db8::', prefix: 32, reason: 'documentation (2001:db8::/32)' },
  { net: '3fff::', prefix: 20, reason: 'documentation (3fff::/20)' },
];

/** Forms that carry an IPv4 address inside an IPv6 one: judged by the IPv4 address they reach. */
const V6_EMBEDDINGS: { net: string; prefix: number; offset: number; kind: string }[] = [
  { net: '::ffff:0:0', prefix: 96, offset: 12, kind: 'IPv4-mapped' },
  { net: '::ffff:0:0:0', prefix: 96, offset: 12, kind: 'IPv4-translated' },
  { net: '64:ff9b::', prefix: 96, offset: 12, kind: 'NAT64' },
  { net: '2002::', prefix: 16, offset: 2, kind: '6to4' },
];

function compileRules(rules: Rule[], family: Family): { list: BlockList; reason: string }[] {
  return rules.map((r) => {
    const list = new BlockList();
    list.addSubnet(r.net, r.prefix, family);
    return { list, reason: r.reason };
  });
}

const V4_COMPILED = compileRules(V4_RULES, 'ipv4');
const V6_COMPILED = compileRules(V6_RULES, 'ipv6');
const V6_EMBEDDED_COMPILED = V6_EMBEDDINGS.map((e) => {
  const list = new BlockList();
  list.addSubnet(e.net, e.prefix, 'ipv6');
  return { ...e, list };
});
const GLOBAL_UNICAST_V6 = new BlockList();
GLOBAL_UNICAST_V6.addSubnet('2000::', 3, 'ipv6');

/** Zone ids (`fe80::1%eth0`) are valid for isIP but make BlockList checks miss. */
function stripZone(ip: string): string {
  const pct = ip.indexOf('%');
  return pct < 0 ? ip : ip.slice(0, pct);
}

/** 16 bytes of a valid IPv6 address (the caller has checked it with isIP). */
function ipv6Bytes(ip: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let text = ip;
  // A trailing dotted quad stands for the last two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a, b, c, d] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(rest === undefined ? 0 : zeros).fill('0'), ...tailGroups];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    bytes[2 * i] = v >> 8;
    bytes[2 * i + 1] = v & 0xff;
  });
  return bytes;
}

function v4Reason(ip: string): string | undefined {
  return V4_COMPILED.find((r) => r.list.check(ip, 'ipv4'))?.reason;
}

function v6Reason(ip: string): string | undefined {
  for (const e of V6_EMBEDDED_COMPILED) {
    if (!e.list.check(ip, 'ipv6')) continue;
    const b = ipv6Bytes(ip);
    const v4 = `${b[e.offset]}.${b[e.offset + 1]}.${b[e.offset + 2]}.${b[e.offset + 3]}`;
    const inner = v4Reason(v4);
    return inner === undefined ? undefined : `${inner}, as IPv4 ${v4} inside a ${e.kind} IPv6 address`;
  }
  const hit = V6_COMPILED.find((r) => r.list.check(ip, 'ipv6'));
  if (hit) return hit.reason;
  if (!GLOBAL_UNICAST_V6.check(ip, 'ipv6')) return 'reserved, not global unicast (outside 2000::/3)';
  return undefined;
}

/** Why an address is refused, or undefined when it is public. Anything that is not an IP is refused. */
export function blockedAddressReason(ip: string): string | undefined {
  const bare = stripZone(ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip);
  const family = isIP(bare);
  if (family === 4) return v4Reason(bare);
  if (family === 6) return v6Reason(bare);
  return 'not an IP address';
}

/** True for loopback, private, link-local, metadata, multicast and other non-public addresses (v4 and v6). */
export function isBlockedAddress(ip: string): boolean {
  return blockedAddressReason(ip) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Host names

/** Names (and their subdomains) that only mean something inside a network. */
const BLOCKED_SUFFIXES = ['localhost', 'local', 'localdomain', 'internal', 'lan', 'intranet', 'corp', 'home', 'arpa'];
/** Cloud metadata names that are not already covered by a suffix above. */
const BLOCKED_NAMES = new Set(['metadata.goog', 'metadata.tencentyun.com']);

function normaliseHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

function blockedNameReason(host: string): string | undefined {
  const suffix = BLOCKED_SUFFIXES.find((s) => host === s || host.endsWith(`.${s}`));
  if (suffix !== undefined) return `a local-network name (.${suffix})`;
  if (BLOCKED_NAMES.has(host)) return 'a cloud metadata service name';
  if (!host.includes('.')) return 'a single-label name, which resolves through local search domains';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Policy

interface CompiledPolicy {
  allowHttp: boolean;
  names: Set<string>;
  addresses: BlockList;
}

const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$/;

function compilePolicy(policy: SsrfPolicy): CompiledPolicy {
  const names = new Set<string>();
  const addresses = new BlockList();
  for (const raw of policy.allowlist) {
    const entry = raw.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    if (slash >= 0) {
      const net = normaliseHost(entry.slice(0, slash));
      const bits = entry.slice(slash + 1);
      const family = isIP(net);
      const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
      if (family === 0 || !(prefix >= 0 && prefix <= (family === 4 ? 32 : 128))) {
        throw new SsrfError(`SSRF allowlist entry "${entry}" is not a valid CIDR; write it like 10.0.0.0/8 or fd00::/8.`);
      }
      addresses.addSubnet(net, prefix, family === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const host = normaliseHost(entry);
    const family = isIP(host);
    if (family !== 0) addresses.addAddress(stripZone(host), family === 4 ? 'ipv4' : 'ipv6');
    else if (HOSTNAME_RE.test(host)) names.add(host);
    else {
      throw new SsrfError(
        `SSRF allowlist entry "${entry}" is not a host name, IP address or CIDR (ports and schemes do not belong there).`,
      );
    }
  }
  return { allowHttp: policy.allowHttp, names, addresses };
}

function addressAllowed(p: CompiledPolicy, ip: string): boolean {
  const bare = stripZone(ip);
  const family = isIP(bare);
  return family !== 0 && p.addresses.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

/** Builds a policy from a comma-separated allowlist setting (host names, IPs, CIDRs). */
export function parseSsrfPolicy(allowlist?: string, allowHttp?: boolean): SsrfPolicy {
  const entries = (allowlist ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const policy: SsrfPolicy = { allowHttp: allowHttp ?? false, allowlist: entries };
  compilePolicy(policy); // Reject a malformed setting at startup, not at the first request.
  return policy;
}

// ---------------------------------------------------------------------------------------------
// Static URL check

const EXAMPLE = 'for example https://api.openai.com/v1';

function checkUrl(input: string, p: CompiledPolicy): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    // Not echoed: an unparsable URL may still hold credentials.
    throw new SsrfError(`The provider URL is not a valid URL. Give the provider's full base URL, ${EXAMPLE}.`);
  }
  const shown = url.origin !== 'null' ? url.origin : url.protocol;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && p.allowHttp)) {
    throw new SsrfError(
      url.protocol === 'http:'
        ? `Provider URL ${shown} uses plain http; only https:// provider URLs are allowed. Use the provider's https endpoint, ${EXAMPLE}.`
        : `Provider URL scheme "${url.protocol}" is not allowed; use an https:// URL, ${EXAMPLE}.`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new SsrfError(
      'Provider URL must not contain a user name or password. Remove them from the URL and set the API key as the provider key.',
    );
  }
  const host = normaliseHost(url.hostname);
  if (host === '') throw new SsrfError(`Provider URL has no host; give the provider's full base URL, ${EXAMPLE}.`);
  // The WHATWG parser has already turned decimal/octal/hex IPv4 forms into dotted quads.
  if (isIP(host) !== 0) {
    const reason = blockedAddressReason(host);
    if (reason !== undefined && !addressAllowed(p, host)) {
      throw new SsrfError(
        `Provider URL ${shown} points at ${host}, which is ${reason}; provider URLs must reach a public address. Use the provider's public host name.`,
      );
    }
  } else if (!p.names.has(host)) {
    const reason = blockedNameReason(host);
    if (reason !== undefined) {
      throw new SsrfError(
        `Provider URL ${shown} uses host "${host}", ${reason}; provider URLs must reach a public host. Use the provider's public host name.`,
      );
    }
  }
  return url;
}

/** Static checks of a tenant-supplied provider base URL; throws SsrfError saying what to change. */
export function checkProviderUrl(url: string, policy: SsrfPolicy): URL {
  return checkUrl(url, compilePolicy(policy));
}

// ---------------------------------------------------------------------------------------------
// Connect-time check

export interface GuardedFetchOptions {
  /** Resolves a host name to its addresses (default: the system resolver, all families). A seam for tests. */
  resolve?: (hostname: string) => Promise<string[]>;
  /** Connect timeout in milliseconds (undici's default when absent). */
  connectTimeoutMs?: number;
}

async function systemResolve(hostname: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses.map((a) => a.address));
    });
  });
}

function makeLookup(p: CompiledPolicy, resolve: (hostname: string) => Promise<string[]>): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const host = normaliseHost(hostname);
    resolve(host).then(
      (found) => {
        const addresses: LookupAddress[] = found.map((address) => ({ address, family: isIP(stripZone(address)) }));
        if (addresses.length === 0) {
          const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
          err.code = 'ENOTFOUND';
          callback(err, []);
          return;
        }
        // An allowlisted name is trusted wherever it points; otherwise every address must pass,
        // so a resolver answer mixing public and internal addresses cannot slip through.
        if (!p.names.has(host)) {
          for (const { address } of addresses) {
            const reason = blockedAddressReason(address);
            if (reason !== undefined && !addressAllowed(p, address)) {
              callback(
                new SsrfError(
                  `Provider host "${host}" resolves to ${address}, which is ${reason}; the connection was refused. ` +
                    'Provider URLs must reach a public address.',
                ),
                [],
              );
              return;
            }
          }
        }
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        const usable = wanted.length > 0 ? wanted : addresses;
        if (options.all) callback(null, usable);
        else callback(null, usable[0].address, usable[0].family);
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), []),
    );
  };
}

function findSsrfError(err: unknown): SsrfError | undefined {
  let cur: unknown = err;
  for (let i = 0; i < 8 && cur instanceof Error; i++) {
    if (cur instanceof SsrfError) return cur;
    cur = cur.cause;
  }
  return undefined;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * A `fetch` for provider calls (fits the `fetch` option of the openai client): static checks on
 * each URL (literal IPs never reach a resolver), every resolved address checked when a connection
 * opens, and redirects refused, since one could point inside.
 */
export function guardedFetch(policy: SsrfPolicy, options: GuardedFetchOptions = {}): typeof fetch {
  const p = compilePolicy(policy);
  const agent = new Agent({
    connect: {
      lookup: makeLookup(p, options.resolve ?? systemResolve),
      ...(options.connectTimeoutMs !== undefined ? { timeout: options.connectTimeoutMs } : {}),
    },
  });

  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let url: string;
    let fromRequest: RequestInit = {};
    if (typeof input === 'string') url = input;
    else if (input instanceof URL) url = input.href;
    else {
      url = input.url;
      fromRequest = { method: input.method, headers: input.headers, body: input.body, signal: input.signal };
      if (input.body) Object.assign(fromRequest, { duplex: 'half' });
    }
    checkUrl(url, p);
    // Global and undici's init types differ only in nominal details (their Headers/Body classes).
    const requestInit = { ...fromRequest, ...init, redirect: 'manual', dispatcher: agent } as unknown as UndiciRequestInit;
    let res: Awaited<ReturnType<typeof undiciFetch>>;
    try {
      res = await undiciFetch(url, requestInit);
    } catch (err) {
      throw findSsrfError(err) ?? err;
    }
    if (REDIRECT_STATUSES.has(res.status)) {
      const location = res.headers.get('location') ?? '(no Location)';
      await res.body?.cancel().catch(() => undefined);
      throw new SsrfError(
        `Provider answered ${res.status} with a redirect to ${location}; redirects are not followed because they could lead to internal addresses. ` +
          'Set the provider URL to the final address.',
      );
    }
    return res as unknown as Response;
  };
}
