import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  blockedAddressReason,
  checkProviderUrl,
  guardedFetch,
  isBlockedAddress,
  parseSsrfPolicy,
  SsrfError,
  type SsrfPolicy,
} from './ssrf.js';

const STRICT: SsrfPolicy = { allowHttp: false, allowlist: [] };

describe('isBlockedAddress', () => {
  it.each([
    // IPv4
    '0.0.0.0',
    '0.1.2.3',
    '10.0.0.1',
    '10.255.255.255',
    '100.64.0.1',
    '100.100.100.200', // Alibaba metadata (CGNAT range)
    '100.127.255.255',
    '127.0.0.1',
    '127.255.255.254',
    '169.254.169.254', // AWS / GCP / Azure metadata
    '169.254.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.0.0.1',
    '192.0.2.1',
    '192.168.0.1',
    '192.168.255.255',
    '198.18.0.1',
    '198.51.100.7',
    '203.0.113.9',
    '224.0.0.1',
    '239.255.255.250',
    '240.0.0.1',
    '255.255.255.255',
    // IPv6
    '::',
    '::1',
    '0:0:0:0:0:0:0:1',
    '::7f00:1', // IPv4-compatible (deprecated)
    'fe80::1',
    'fe80::1%eth0',
    'febf:ffff::1',
    'fc00::1',
    'fd00::1',
    'fd00:ec2::254', // AWS IPv6 metadata
    'FD00:EC2::254',
    'fec0::1',
    'ff02::1',
    'ff05::1:3',
    // IPv4 inside IPv6
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '0:0:0:0:0:ffff:a9fe:a9fe', // ::ffff:169.254.169.254
    '::ffff:10.0.0.1',
    '::ffff:0:7f00:1', // IPv4-translated
    '64:ff9b::7f00:1', // NAT64 of 127.0.0.1
    '64:ff9b::169.254.169.254',
    '64:ff9b::a00:1',
    '2002:7f00:1::', // 6to4 of 127.0.0.1
    '2002:a9fe:a9fe::1', // 6to4 of 169.254.169.254
    '2002:c0a8:101::', // 6to4 of 192.168.1.1
    // Other non-public IPv6
    '64:ff9b:1::1',
    '100::1',
    '2001::1', // Teredo
    '2001:db8::1',
    '3fff::1',
    '4000::1',
    '::2',
    // Not an IP: refuse rather than guess
    'example.com',
    '',
    '2130706433',
    '127.1',
  ])('blocks %s', (ip) => {
    expect(isBlockedAddress(ip)).toBe(true);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '104.18.6.192',
    '172.15.255.255',
    '172.32.0.1',
    '100.63.255.255',
    '100.128.0.1',
    '169.253.255.255',
    '192.169.0.1',
    '223.255.255.255',
    '2606:4700:4700::1111',
    '2a00:1450:4001:82a::200e',
    '::ffff:8.8.8.8', // mapped public
    '64:ff9b::808:808', // NAT64 of 8.8.8.8, what DNS64 hands out on IPv6-only networks
    '2002:808:808::1', // 6to4 of 8.8.8.8
    '2001:4860:4860::8888',
  ])('allows %s', (ip) => {
    expect(isBlockedAddress(ip)).toBe(false);
  });

  it('explains why', () => {
    expect(blockedAddressReason('127.0.0.1')).toMatch(/loopback/);
    expect(blockedAddressReason('169.254.169.254')).toMatch(/metadata/);
    expect(blockedAddressReason('fd00:ec2::254')).toMatch(/AWS metadata/);
    expect(blockedAddressReason('::ffff:7f00:1')).toMatch(/loopback .*127\.0\.0\.1 inside a IPv4-mapped/);
    expect(blockedAddressReason('64:ff9b::a00:1')).toMatch(/private .*10\.0\.0\.1 inside a NAT64/);
    expect(blockedAddressReason('8.8.8.8')).toBeUndefined();
  });
});

describe('checkProviderUrl', () => {
  it.each([
    ['http://api.openai.com/v1', /plain http/],
    ['file:///etc/passwd', /scheme "file:"/],
    ['gopher://example.com:70/_x', /scheme "gopher:"/],
    ['ftp://example.com/', /scheme "ftp:"/],
    ['data:text/plain,hi', /scheme "data:"/],
    ['javascript:alert(1)', /scheme "javascript:"/],
    ['not a url', /not a valid URL/],
    ['', /not a valid URL/],
    ['https://127.0.0.1', /loopback/],
    ['https://127.0.0.1:8443/v1', /loopback/],
    ['https://[::1]', /loopback/],
    ['https://[::1]:443/v1', /loopback/],
    ['https://169.254.169.254/latest/meta-data', /link-local/],
    ['https://[::ffff:127.0.0.1]', /IPv4-mapped/],
    ['https://[::ffff:169.254.169.254]/latest', /metadata/],
    ['https://[0:0:0:0:0:ffff:7f00:1]', /IPv4-mapped/],
    ['https://10.1.2.3', /private/],
    ['https://172.16.0.1', /private/],
    ['https://172.31.1.1', /private/],
    ['https://192.168.1.1', /private/],
    ['https://100.64.1.1', /CGNAT/],
    ['https://[fd00::1]', /unique-local/],
    ['https://[fd00:ec2::254]/latest/meta-data', /AWS metadata/],
    ['https://[fe80::1]', /link-local/],
    ['https://0.0.0.0', /this network/],
    ['https://0', /this network/], // WHATWG: 0.0.0.0
    ['https://[::]', /unspecified/],
    ['https://224.0.0.1', /multicast/],
    ['https://255.255.255.255', /broadcast/],
    ['https://localhost', /local-network name/],
    ['https://localhost:8080/v1', /local-network name/],
    ['https://LOCALHOST.', /local-network name/],
    ['https://api.localhost', /local-network name/],
    ['https://metadata.google.internal/computeMetadata/v1', /local-network name \(\.internal\)/],
    ['https://instance-data.ec2.internal', /\.internal/],
    ['https://metadata', /single-label/],
    ['https://kubernetes', /single-label/],
    ['https://metadata.goog', /metadata service name/],
    ['https://printer.local', /\.local/],
    ['https://router.home.arpa', /\.arpa/],
    ['https://user:pass@example.com', /user name or password/],
    ['https://user@example.com', /user name or password/],
    ['https://:pass@example.com', /user name or password/],
    // The WHATWG parser turns these into 127.0.0.1 before we look at them.
    ['https://2130706433', /127\.0\.0\.1.*loopback/],
    ['https://0x7f000001', /127\.0\.0\.1.*loopback/],
    ['https://0177.0.0.1', /127\.0\.0\.1.*loopback/],
    ['https://0x7f.1', /127\.0\.0\.1.*loopback/],
    ['https://127.1', /127\.0\.0\.1.*loopback/],
    ['https://%31%32%37.0.0.1', /127\.0\.0\.1.*loopback/],
    ['https://017700000001', /127\.0\.0\.1.*loopback/],
    ['https://[64:ff9b::7f00:1]', /NAT64/],
    ['https://[2002:7f00:1::]', /6to4/],
    ['https://[2002:a9fe:a9fe::]', /6to4/],
  ])('refuses %s', (url, message) => {
    expect(() => checkProviderUrl(url, STRICT)).toThrow(SsrfError);
    expect(() => checkProviderUrl(url, STRICT)).toThrow(message);
  });

  it('normalises numeric IPv4 forms the way we assume', () => {
    for (const u of ['https://2130706433', 'https://0x7f000001', 'https://0177.0.0.1', 'https://127.1']) {
      expect(new URL(u).hostname).toBe('127.0.0.1');
    }
    expect(new URL('https://[::ffff:127.0.0.1]').hostname).toBe('[::ffff:7f00:1]');
  });

  it.each([
    'https://api.openai.com/v1',
    'https://example.com:8443/v1',
    'https://API.OpenAI.com./v1',
    'https://8.8.8.8/v1',
    'https://[2606:4700:4700::1111]/v1',
    'https://my-resource.openai.azure.com/openai/deployments/x',
  ])('accepts %s', (url) => {
    expect(checkProviderUrl(url, STRICT)).toBeInstanceOf(URL);
  });

  it('returns the parsed URL', () => {
    const u = checkProviderUrl('https://example.com:8443/v1', STRICT);
    expect(u.hostname).toBe('example.com');
    expect(u.port).toBe('8443');
    expect(u.pathname).toBe('/v1');
  });

  it('messages say what to do', () => {
    expect(() => checkProviderUrl('http://api.openai.com/v1', STRICT)).toThrow(/Use the provider's https endpoint/);
    expect(() => checkProviderUrl('https://10.0.0.1', STRICT)).toThrow(/Use the provider's public host name/);
    expect(() => checkProviderUrl('https://u:p@example.com', STRICT)).toThrow(/Remove them from the URL/);
  });

  it('never echoes credentials', () => {
    try {
      checkProviderUrl('https://user:hunter2@example.com', STRICT);
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain('hunter2');
    }
  });

  it('allows http only with allowHttp, and still applies the address rules', () => {
    const httpOk: SsrfPolicy = { allowHttp: true, allowlist: [] };
    expect(checkProviderUrl('http://example.com/v1', httpOk).protocol).toBe('http:');
    expect(() => checkProviderUrl('http://127.0.0.1:8080', httpOk)).toThrow(/loopback/);
    expect(() => checkProviderUrl('file:///etc/passwd', httpOk)).toThrow(/scheme/);
  });

  it('lets allowlisted hosts, IPs and CIDRs through', () => {
    const p = parseSsrfPolicy('127.0.0.1, 10.0.0.0/8, localhost, [::1], fd00::/8, models.internal', true);
    expect(checkProviderUrl('http://127.0.0.1:4010/v1', p).port).toBe('4010');
    expect(checkProviderUrl('https://10.20.30.40/v1', p).hostname).toBe('10.20.30.40');
    expect(checkProviderUrl('http://localhost:4010', p).hostname).toBe('localhost');
    expect(checkProviderUrl('http://[::1]:4010', p).hostname).toBe('[::1]');
    expect(checkProviderUrl('https://[fd12::5]', p).hostname).toBe('[fd12::5]');
    expect(checkProviderUrl('https://models.internal', p).hostname).toBe('models.internal');
    // ...and nothing beyond them.
    expect(() => checkProviderUrl('http://127.0.0.2', p)).toThrow(/loopback/);
    expect(() => checkProviderUrl('https://192.168.1.1', p)).toThrow(/private/);
    expect(() => checkProviderUrl('https://api.localhost', p)).toThrow(/local-network/);
    expect(() => checkProviderUrl('https://169.254.169.254', p)).toThrow(/link-local/);
  });

  it('keeps the scheme and credential rules for allowlisted hosts', () => {
    const p = parseSsrfPolicy('127.0.0.1');
    expect(() => checkProviderUrl('http://127.0.0.1:4010', p)).toThrow(/plain http/);
    expect(checkProviderUrl('https://127.0.0.1:4010', p).hostname).toBe('127.0.0.1');
    expect(() => checkProviderUrl('https://a:b@127.0.0.1', p)).toThrow(/user name or password/);
  });
});

describe('parseSsrfPolicy', () => {
  it('parses a comma-separated setting', () => {
    expect(parseSsrfPolicy(' 127.0.0.1 ,10.0.0.0/8,, localhost ', true)).toEqual({
      allowHttp: true,
      allowlist: ['127.0.0.1', '10.0.0.0/8', 'localhost'],
    });
  });

  it('defaults to https only and an empty allowlist', () => {
    expect(parseSsrfPolicy()).toEqual({ allowHttp: false, allowlist: [] });
    expect(parseSsrfPolicy('')).toEqual({ allowHttp: false, allowlist: [] });
  });

  it.each(['10.0.0.0/33', '10.0.0.0/x', 'fd00::/129', 'nothost/8', '127.0.0.1:8080', 'http://localhost', 'bad host'])(
    'rejects the malformed entry %s',
    (entry) => {
      expect(() => parseSsrfPolicy(entry)).toThrow(SsrfError);
      expect(() => parseSsrfPolicy(entry)).toThrow(/SSRF allowlist entry/);
    },
  );
});

describe('guardedFetch (connect-time checks on a loopback server)', () => {
  let server: Server;
  let port: number;
  let seen: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} host=${req.headers.host}`);
      if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end();
        return;
      }
      if (req.url?.endsWith('/embeddings')) {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const parsed = JSON.parse(body) as { model: string };
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              object: 'list',
              data: [{ object: 'embedding', index: 0, embedding: [0.25, 0.5] }],
              model: parsed.model,
              usage: { prompt_tokens: 1, total_tokens: 1 },
            }),
          );
        });
        return;
      }
      if (req.url === '/close') res.setHeader('connection', 'close');
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    seen = [];
  });

  const toLoopback = async (): Promise<string[]> => ['127.0.0.1'];
  const httpOnly: SsrfPolicy = { allowHttp: true, allowlist: [] };

  it('refuses a name that resolves to 127.0.0.1 at connect time; the server sees nothing', async () => {
    const f = guardedFetch(httpOnly, { resolve: toLoopback });
    const url = `http://rebind.example.com:${port}/`;
    expect(() => checkProviderUrl(url, httpOnly)).not.toThrow(); // passes the static check...
    const err = await f(url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SsrfError); // ...but not the connection
    expect(String(err)).toMatch(/rebind\.example\.com" resolves to 127\.0\.0\.1, which is loopback/);
    expect(seen).toEqual([]);
  });

  it('refuses when any one of several resolved addresses is blocked', async () => {
    const f = guardedFetch(httpOnly, { resolve: async () => ['93.184.216.34', '127.0.0.1'] });
    await expect(f(`http://mixed.example.com:${port}/`)).rejects.toThrow(/resolves to 127\.0\.0\.1/);
    expect(seen).toEqual([]);
  });

  it.each(['::ffff:127.0.0.1', '169.254.169.254', '10.0.0.1', 'fd00:ec2::254', 'not-an-ip'])(
    'refuses a name resolving to %s',
    async (addr) => {
      const f = guardedFetch(httpOnly, { resolve: async () => [addr] });
      await expect(f(`http://evil.example.com:${port}/`)).rejects.toBeInstanceOf(SsrfError);
      expect(seen).toEqual([]);
    },
  );

  it('checks again on every new connection, so a later rebind is caught', async () => {
    let answer = '127.0.0.1';
    const f = guardedFetch({ allowHttp: true, allowlist: ['127.0.0.1'] }, { resolve: async () => [answer] });
    const ok = await f(`http://flip.example.com:${port}/close`); // the server closes: next request reconnects
    expect(await ok.text()).toBe('hello');
    answer = '127.0.0.2';
    await expect(f(`http://flip.example.com:${port}/second`)).rejects.toThrow(/resolves to 127\.0\.0\.2/);
    expect(seen).toEqual([`GET /close host=flip.example.com:${port}`]);
  });

  it('lets the same call through when 127.0.0.1 is allowlisted', async () => {
    const f = guardedFetch({ allowHttp: true, allowlist: ['127.0.0.1'] }, { resolve: toLoopback });
    const res = await f(`http://rebind.example.com:${port}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello');
    expect(seen).toEqual([`GET /hello host=rebind.example.com:${port}`]);
  });

  it('lets an allowlisted CIDR through', async () => {
    const f = guardedFetch(parseSsrfPolicy('127.0.0.0/8', true), { resolve: toLoopback });
    expect((await f(`http://svc.example.com:${port}/`)).status).toBe(200);
  });

  it('trusts wherever an allowlisted host name resolves', async () => {
    const f = guardedFetch(parseSsrfPolicy('models.internal', true), { resolve: toLoopback });
    expect((await f(`http://models.internal:${port}/`)).status).toBe(200);
  });

  it('uses the system resolver by default (localhost allowlisted)', async () => {
    const f = guardedFetch(parseSsrfPolicy('localhost,127.0.0.1,::1', true));
    expect((await f(`http://localhost:${port}/`)).status).toBe(200);
  });

  it('applies the static rules to each request: literal IPs never reach the resolver', async () => {
    let resolved = 0;
    const f = guardedFetch(httpOnly, {
      resolve: async () => {
        resolved++;
        return ['8.8.8.8'];
      },
    });
    await expect(f(`http://127.0.0.1:${port}/`)).rejects.toThrow(/loopback/);
    await expect(f(`http://localhost:${port}/`)).rejects.toThrow(/local-network name/);
    await expect(f(new URL(`http://[::ffff:7f00:1]:${port}/`))).rejects.toThrow(/IPv4-mapped/);
    await expect(f(`file:///etc/passwd`)).rejects.toThrow(/scheme/);
    await expect(guardedFetch(STRICT)(`http://example.com:${port}/`)).rejects.toThrow(/plain http/);
    expect(resolved).toBe(0);
    expect(seen).toEqual([]);
  });

  it('refuses to follow redirects', async () => {
    const f = guardedFetch(parseSsrfPolicy('127.0.0.1', true));
    await expect(f(`http://127.0.0.1:${port}/redirect`)).rejects.toThrow(/302 with a redirect to http:\/\/169\.254\.169\.254/);
    await expect(f(`http://127.0.0.1:${port}/redirect`, { redirect: 'follow' })).rejects.toBeInstanceOf(SsrfError);
    expect(seen).toEqual([`GET /redirect host=127.0.0.1:${port}`, `GET /redirect host=127.0.0.1:${port}`]);
  });

  it('accepts a Request object', async () => {
    const f = guardedFetch(parseSsrfPolicy('127.0.0.1', true));
    const res = await f(new Request(`http://127.0.0.1:${port}/req`, { method: 'POST', body: 'x' }));
    expect(res.status).toBe(200);
    expect(seen).toEqual([`POST /req host=127.0.0.1:${port}`]);
  });

  it('works as the fetch of the openai client', async () => {
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${port}/v1`,
      apiKey: 'sk-test',
      maxRetries: 0,
      fetch: guardedFetch(parseSsrfPolicy('127.0.0.1', true)),
    });
    const out = await client.embeddings.create({ model: 'm', input: 'hi', encoding_format: 'float' });
    expect(out.data[0]?.embedding).toEqual([0.25, 0.5]);
    expect(seen).toEqual([`POST /v1/embeddings host=127.0.0.1:${port}`]);
  });

  it('stops the openai client at connect time, with the SsrfError as the cause', async () => {
    const client = new OpenAI({
      baseURL: `http://rebind.example.com:${port}/v1`,
      apiKey: 'sk-test',
      maxRetries: 0,
      fetch: guardedFetch(httpOnly, { resolve: toLoopback }),
    });
    const err = await client.embeddings.create({ model: 'm', input: 'hi' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    expect((err as Error).cause).toBeInstanceOf(SsrfError);
    expect(seen).toEqual([]);
  });
});
