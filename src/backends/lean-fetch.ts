import { Agent, request } from 'undici';

/** A provider's answer, read whole: what the provider clients need of it. */
export interface RawReply {
  status: number;
  /** A response header by lower-case name (the first value when repeated). */
  header(name: string): string | undefined;
  text: string;
}

/** One POST with a body, read whole. The transport every provider call goes through (providers/http.ts). */
export type RawPost = (url: string, init: { headers: Record<string, string>; body: string; signal: AbortSignal }) => Promise<RawReply>;

/** The POST for each fetch: leanFetch's own request(), or one over the fetch, made once. */
const POSTS = new WeakMap<typeof fetch, RawPost>();

/**
 * A `fetch` built on undici's request(): no web streams, the body read whole (an embeddings
 * response is at most a few MB). Redirects are not followed: an API answers where it is asked.
 * Provider calls do not even build its Response: `rawPostOf` hands them the request() below
 * directly (the openai SDK over this fetch cost ~820 µs of CPU per call; bench notes in
 * bench/README.md).
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
  const post: RawPost = async (url, init) => {
    const res = await request(url, { method: 'POST', headers: init.headers, body: init.body, signal: init.signal, dispatcher: agent });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      header: (name) => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] : v;
      },
      text,
    };
  };
  const lean = f as typeof fetch;
  POSTS.set(lean, post);
  return lean;
}

/**
 * The POST to use over a provider's fetch: leanFetch's own request() when it is one, else the
 * fetch itself (a tenant's SSRF-guarded fetch stays the only way out for its calls).
 */
export function rawPostOf(f: typeof fetch): RawPost {
  let post = POSTS.get(f);
  if (!post) {
    post = async (url, init) => {
      const res = await f(url, { method: 'POST', headers: init.headers, body: init.body, signal: init.signal });
      const text = await res.text();
      return { status: res.status, header: (name) => res.headers.get(name) ?? undefined, text };
    };
    POSTS.set(f, post);
  }
  return post;
}

function toRecord(h: HeadersInit | undefined): Record<string, string> {
  if (!h) return {};
  if (h instanceof Headers) return Object.fromEntries(h.entries());
  if (Array.isArray(h)) return Object.fromEntries(h);
  return h as Record<string, string>;
}
