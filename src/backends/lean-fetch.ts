import { Agent, request } from 'undici';

/**
 * A `fetch` for the openai client built on undici's request(): no web streams, the body read
 * whole (an embeddings response is at most a few MB). Measured against the fake upstream, the
 * openai client's call dropped from ~1 260 to ~820 µs with it (bench notes in bench/README.md).
 * Redirects are not followed: an API answers where it is asked.
 */
export function leanFetch(opts: { connections?: number } = {}): typeof fetch {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: opts.connections ?? 128 });
  const f = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const res = await request(url, {
      method: (init.method ?? 'GET') as 'GET',
      headers: toRecord(init.headers),
      body: init.body as string | Buffer | Uint8Array | null | undefined,
      signal: init.signal ?? undefined,
      dispatcher: agent,
    });
    const body = res.statusCode === 204 || res.statusCode === 304 ? null : Buffer.from(await res.body.arrayBuffer());
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const x of v) headers.append(k, x);
      else if (v !== undefined) headers.set(k, v);
    }
    return new Response(body, { status: res.statusCode, headers });
  };
  return f as typeof fetch;
}

function toRecord(h: HeadersInit | undefined): Record<string, string> {
  if (!h) return {};
  if (h instanceof Headers) return Object.fromEntries(h.entries());
  if (Array.isArray(h)) return Object.fromEntries(h);
  return h as Record<string, string>;
}
