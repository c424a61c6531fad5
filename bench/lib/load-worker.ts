// The load generator process (started pinned by load.ts): runs autocannon's programmatic API, one job at
// a time, and answers with throughput and its own sub-millisecond latency percentiles.
//
// Three things are done around autocannon, all through its `setupClient` hook:
// - Latencies are recorded here, to the microsecond: autocannon's own histogram keeps whole
//   milliseconds, too coarse for sub-millisecond answers and for comparing two p99s within 20%.
//   They are also kept per request of the rotation (`latencyMsByRequest`), so that two requests
//   interleaved on the same connections, in the same seconds, can be compared with each other.
// - Each connection's first request, which opens it, is not recorded (see below).
// - A fixed offered rate is paced here, wrk2-style. autocannon's `overallRate`/`connectionRate` give each
//   connection a quota per second and release it at the top of the second, every connection at the
//   same instant: the server sees a burst at full concurrency, then silence, which measures latency at
//   peak load rather than at the stated rate. Instead, each connection sends at evenly spaced times
//   (connections staggered across the interval); when an answer comes back after the next send was
//   due, the next request goes at once and its latency is counted from when it was due, so a stalled
//   server shows in the tail instead of quietly lowering the offered rate (coordinated omission).
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { serveChild } from './child-process.ts';
import type { LoadOptions, LoadResult } from './load.ts';

interface AutocannonClient {
  destroyed: boolean;
  _doRequest(): void;
  requestIterator: { requests: unknown[]; currentRequestIndex: number; currentRequest: unknown };
  /** Set here: when the request in flight was sent, or was due to be sent. */
  benchStart?: number;
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}

type Autocannon = (options: Record<string, unknown>, callback: (error: Error | null, result: AutocannonResult) => void) => {
  on(event: 'response', listener: (client: AutocannonClient, statusCode: number, bytes: number, responseTime: number) => void): void;
  stop(): void;
};

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LatencySummary { p50: number; p90: number; p99: number; max: number; mean: number }

/** What this worker answers: load.ts's LoadResult, plus the latencies of each request of the rotation. */
export interface LoadResultByRequest extends LoadResult {
  /** Indexed as `requests`: each one's latencies (2xx only, measured requests only). */
  latencyMsByRequest: (LatencySummary & { count: number })[];
}

function summarize(latencies: number[]): LatencySummary {
  latencies.sort((a, b) => a - b);
  const pick = (p: number) => latencies.length === 0 ? Number.NaN : latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil(p * latencies.length) - 1))]!;
  const mean = latencies.length === 0 ? Number.NaN : latencies.reduce((sum, value) => sum + value, 0) / latencies.length;
  return { p50: pick(0.5), p90: pick(0.9), p99: pick(0.99), max: pick(1), mean };
}

function run(options: LoadOptions): Promise<LoadResultByRequest> {
  const requests = options.requests.map((request) => ({
    method: request.method ?? 'GET',
    path: request.path ?? '/',
    headers: { ...options.headers, ...request.headers },
    ...(request.body === undefined ? {} : { body: request.body }),
  }));
  const rate = options.rate ?? null;
  const connections = options.connections;
  // Each connection sends every `spacing` ms; connection i starts i/rate seconds after it opened.
  const spacing = rate ? (connections * 1000) / rate : 0;
  const latencies: number[] = [];
  const byRequest: number[][] = requests.map(() => []);
  let completed = 0;
  let clients = 0;
  let firstStatusError: string | null = null;

  return new Promise<LoadResultByRequest>((resolve, reject) => {
    const instance = autocannon({
      url: options.url,
      connections,
      duration: options.durationSeconds,
      timeout: options.timeoutSeconds ?? 10,
      requests,
      setupClient(client: AutocannonClient) {
        const index = clients++;
        // Spread the connections over the request list so they do not ask for the same rows in step. With
        // fewer requests than connections (a few requests compared side by side), neighbouring connections,
        // which send one after another at a fixed rate, start on neighbouring requests: a stall then falls
        // on the requests alike, where blocks of connections would hand it to one request.
        const iterator = client.requestIterator;
        const count = iterator.requests.length;
        const first = count < connections ? index % count : Math.floor((index * count) / connections) % count;
        iterator.currentRequestIndex = first;
        iterator.currentRequest = iterator.requests[first];
        const send = Object.getPrototypeOf(client)._doRequest as () => void;
        // Each connection's first request only opens it (its answer took ~200 ms here, whatever the
        // server): it is not recorded, and a fixed-rate schedule starts from that answer.
        let opened = false;
        if (!rate) {
          client._doRequest = function (this: AutocannonClient) {
            this.benchStart = opened ? performance.now() : undefined;
            opened = true;
            send.call(this);
          };
          return;
        }
        let due = Number.NaN;
        client._doRequest = function (this: AutocannonClient) {
          if (this.destroyed) return;
          const now = performance.now();
          if (!opened) {
            opened = true;
            this.benchStart = undefined;
            send.call(this);
            return;
          }
          // Connection i's first measured request goes i/rate seconds after its connection opened.
          if (Number.isNaN(due)) due = now + (index * 1000) / rate;
          if (now >= due) {
            // Late: the previous answer came after this one was due. Count from when it was due.
            this.benchStart = due;
            due += spacing;
            send.call(this);
            return;
          }
          setTimeout(() => {
            if (this.destroyed) return;
            this.benchStart = performance.now();
            due += spacing;
            send.call(this);
          }, due - now);
        };
      },
    }, (error, result) => {
      if (error) {
        reject(error);
        return;
      }
      resolve({
        requests: completed,
        durationSeconds: result.duration,
        throughput: completed / result.duration,
        offeredRate: rate,
        latencyMs: summarize(latencies),
        latencyMsByRequest: byRequest.map((values) => ({ ...summarize(values), count: values.length })),
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, stats]) => [code, stats.count])),
        firstStatusError,
      });
    });
    instance.on('response', (client, statusCode) => {
      completed += 1;
      if (statusCode >= 200 && statusCode < 300) {
        if (client.benchStart !== undefined) {
          const latency = performance.now() - client.benchStart;
          latencies.push(latency);
          // The iterator still points at the request answered: autocannon moves it on when it sends the next.
          byRequest[client.requestIterator.currentRequestIndex]?.push(latency);
        }
      } else {
        firstStatusError ??= `HTTP ${statusCode}`;
      }
    });
  });
}

serveChild(async () => ({
  ready: { pid: process.pid },
  handle: (body) => run(body as LoadOptions),
}));
