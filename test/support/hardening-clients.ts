// Small clients for the hardening tests (auth, isolation, limits): GraphQL over HTTP with or without
// an API key, SSE streams, raw graphql-transport-ws sockets (to see close codes), graphql-ws clients,
// and an app built like the harness's but with a logger that writes to memory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createClient, type Client } from 'graphql-ws';
import pino, { type Logger } from 'pino';
import WebSocket from 'ws';
import { buildApp, type App } from '../../src/app.ts';
import type { Config } from '../../src/config.ts';
import { startSandboxServer, type SandboxOptions, type SandboxUpstream } from '../../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY, sandboxAccounts } from '../../src/upstream/providers.ts';
import { testConfig } from './test-env.ts';

export interface GqlError { message: string; extensions?: Record<string, any> }
export interface GqlBody<T = any> { data?: T; errors?: GqlError[] }
export interface HttpResult<T = any> { status: number; headers: Headers; body: GqlBody<T>; text: string }

export interface RequestOptions {
  /** The API key, sent as `Authorization: Bearer <key>`; a full header value when it has a space. */
  key?: string;
  accept?: string;
}

function authHeaders(key: string | undefined): Record<string, string> {
  if (key === undefined) return {};
  return { authorization: key.includes(' ') ? key : `Bearer ${key}` };
}

function parse(text: string): GqlBody {
  try {
    return JSON.parse(text) as GqlBody;
  } catch {
    return {};
  }
}

/** POST /graphql with JSON. */
export async function post<T = any>(url: string, query: string, variables?: Record<string, unknown>, options: RequestOptions = {}): Promise<HttpResult<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: options.accept ?? 'application/graphql-response+json', ...authHeaders(options.key) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: parse(text), text };
}

/** GET /graphql?query=... */
export async function get<T = any>(url: string, query: string, options: RequestOptions = {}): Promise<HttpResult<T>> {
  const response = await fetch(`${url}/graphql?query=${encodeURIComponent(query)}`, {
    headers: { accept: options.accept ?? 'application/graphql-response+json', ...authHeaders(options.key) },
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: parse(text), text };
}

export interface SseResult {
  status: number;
  headers: Headers;
  /** The `data` of every `next` event, parsed. */
  results: GqlBody[];
  /** Everything the stream carried, for "never contains" checks. */
  text: string;
}

/**
 * POST with `accept: text/event-stream` (Yoga's "distinct connections" SSE); reads until `complete`,
 * or until `stopAfter` results, or until the signal aborts.
 */
export async function sse(url: string, query: string, variables: Record<string, unknown> = {}, options: { key?: string; stopAfter?: number; signal?: AbortSignal } = {}): Promise<SseResult> {
  const controller = new AbortController();
  options.signal?.addEventListener('abort', () => controller.abort());
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...authHeaders(options.key) },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  const results: GqlBody[] = [];
  let text = '';
  let buffer = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body!) {
      const piece = decoder.decode(chunk as Uint8Array, { stream: true });
      text += piece;
      buffer += piece;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(message)?.[1];
        const data = /^data: (.*)$/m.exec(message)?.[1];
        if (event === 'complete') return { status: response.status, headers: response.headers, results, text };
        if (event === 'next' && data) {
          results.push(JSON.parse(data) as GqlBody);
          if (options.stopAfter !== undefined && results.length >= options.stopAfter) {
            controller.abort();
            return { status: response.status, headers: response.headers, results, text };
          }
        }
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
  return { status: response.status, headers: response.headers, results, text };
}

export const wsUrl = (url: string) => `${url.replace(/^http/, 'ws')}/graphql`;

export interface RawConnection {
  socket: WebSocket;
  /** Whether the server acknowledged connection_init. */
  acked: boolean;
  /** Set when the server closed the socket before acknowledging. */
  code?: number;
  reason?: string;
  /** Resolves with the close code once the socket is closed. */
  closed: Promise<number>;
}

/** Opens a graphql-transport-ws socket and sends connection_init with these params (none: no init). */
export async function rawConnect(url: string, params?: Record<string, unknown> | null, options: { maxPayload?: number } = {}): Promise<RawConnection> {
  const socket = new WebSocket(wsUrl(url), 'graphql-transport-ws', options.maxPayload ? { maxPayload: options.maxPayload } : {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  if (params === undefined) return { socket, acked: false, closed: closed.then((c) => c.code) };
  socket.send(JSON.stringify({ type: 'connection_init', ...(params === null ? {} : { payload: params }) }));
  const outcome = await Promise.race([
    new Promise<'acked'>((resolve) => {
      socket.on('message', (data) => {
        if (JSON.parse(String(data)).type === 'connection_ack') resolve('acked');
      });
    }),
    closed,
  ]);
  if (outcome === 'acked') return { socket, acked: true, closed: closed.then((c) => c.code) };
  return { socket, acked: false, code: outcome.code, reason: outcome.reason, closed: closed.then((c) => c.code) };
}

/** A graphql-ws client with `{ authorization: 'Bearer <key>' }` (or the given params), no retries. */
export function wsClient(url: string, key?: string | Record<string, unknown>): Client {
  const connectionParams = key === undefined ? undefined : typeof key === 'string' ? { authorization: `Bearer ${key}` } : key;
  return createClient({ url: wsUrl(url), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams });
}

export interface WsOutcome<T = any> {
  results: GqlBody<T>[];
  /** The graphql-ws `error` message's errors (the operation was refused). */
  errors?: GqlError[];
  /** A close event (or other failure) that ended the operation. */
  failure?: { code?: number; reason?: string; message?: string };
  completed: boolean;
}

/** Runs one operation to its end (complete, error, or the socket closing). */
export function wsRun<T = any>(client: Client, query: string, variables?: Record<string, unknown>): Promise<WsOutcome<T>> {
  return new Promise((resolve) => {
    const results: GqlBody<T>[] = [];
    client.subscribe<T>({ query, variables }, {
      next: (result) => { results.push(result as GqlBody<T>); },
      error: (error: unknown) => {
        if (Array.isArray(error)) resolve({ results, errors: error as GqlError[], completed: false });
        else {
          const e = error as { code?: number; reason?: string; message?: string };
          resolve({ results, failure: { code: e.code, reason: e.reason, message: e.message }, completed: false });
        }
      },
      complete: () => resolve({ results, completed: true }),
    });
  });
}

export interface LiveSubscription<T = any> {
  results: GqlBody<T>[];
  errors?: GqlError[];
  done: Promise<WsOutcome<T>>;
  stop(): void;
}

/** Starts a subscription and keeps collecting until stopped. */
export function wsSubscribe<T = any>(client: Client, query: string, variables?: Record<string, unknown>): LiveSubscription<T> {
  const results: GqlBody<T>[] = [];
  let stop = () => {};
  const live: LiveSubscription<T> = { results, done: Promise.resolve({ results, completed: false }), stop: () => stop() };
  live.done = new Promise((resolve) => {
    stop = client.subscribe<T>({ query, variables }, {
      next: (result) => { results.push(result as GqlBody<T>); },
      error: (error: unknown) => {
        if (Array.isArray(error)) live.errors = error as GqlError[];
        resolve({ results, errors: live.errors, completed: false });
      },
      complete: () => resolve({ results, completed: true }),
    });
  });
  return live;
}

export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pino logger writing JSON lines to memory. */
export function memoryLogger(level: string): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      pending += String(chunk);
      let end: number;
      while ((end = pending.indexOf('\n')) >= 0) {
        lines.push(pending.slice(0, end));
        pending = pending.slice(end + 1);
      }
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** The harness's settings (fast poller, temp SQLite file), for apps built here with their own logger. */
export { testConfig };

export interface LoggedApp {
  url: string;
  app: App;
  config: Config;
  sandbox: SandboxUpstream;
  /** Every log line written so far (JSON text). */
  lines: string[];
  stop(): Promise<void>;
}

/**
 * Builds the app as the harness does, with a logger writing to memory at `level`, against a sandbox
 * started with `providerKey` (the app's provider accounts carry the same key).
 */
export async function startLoggedApp(options: {
  env?: Record<string, string>;
  level?: string;
  providerKey?: string;
  sandbox?: Partial<SandboxOptions>;
  host?: string;
} = {}): Promise<LoggedApp> {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-hardening-'));
  const config = testConfig(dir, options.env);
  const { logger, lines } = memoryLogger(options.level ?? 'info');
  const providerKey = options.providerKey ?? SANDBOX_API_KEY;
  const sandboxServer = await startSandboxServer({ apiKey: providerKey, timeScale: 0.01, port: 0, allowInternalCallbacks: true, ...options.sandbox });
  const accounts = sandboxAccounts(sandboxServer.url, { allowsInternalCallbacks: true }).map((account) => ({ ...account, apiKey: providerKey }));
  const app = buildApp({ config, logger, accounts });
  const url = await app.start(0, options.host ?? '127.0.0.1');
  return {
    url,
    app,
    config,
    sandbox: sandboxServer.sandbox,
    lines,
    async stop() {
      await app.stop();
      await sandboxServer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
