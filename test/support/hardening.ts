// Small helpers shared by the hardening tests (idempotency, URL policy, properties, crash, shutdown,
// observability): GraphQL over HTTP with custom headers, global id decoding, waiting, a seeded PRNG.
import { setTimeout as sleep } from 'node:timers/promises';

export interface GraphqlError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

export interface GraphqlResponse<T = any> {
  status: number;
  headers: Headers;
  /** The parsed body; `raw` holds the text when it is not JSON. */
  body: { data?: T; errors?: GraphqlError[] };
  raw: string;
}

/** One GraphQL request over HTTP POST; never throws on a non-2xx status (the status is returned). */
export async function postGraphql<T = any>(
  baseUrl: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphqlResponse<T>> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const raw = await response.text();
  let body: GraphqlResponse<T>['body'];
  try {
    body = JSON.parse(raw) as GraphqlResponse<T>['body'];
  } catch {
    body = {};
  }
  return { status: response.status, headers: response.headers, body, raw };
}

/** The row id behind a Relay global id (`base64("VideoTask:<id>")`). */
export function taskRowId(globalId: string): string {
  const text = Buffer.from(globalId, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0 || text.slice(0, colon) !== 'VideoTask') throw new Error(`not a VideoTask global id: ${globalId}`);
  return text.slice(colon + 1);
}

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs: number,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence, so a run can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed from the environment variable `name` (to replay a failure), else a fixed default. */
export function seedFrom(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got ${text}`);
  return value;
}
