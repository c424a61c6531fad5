// HTTP load from a real tool: autocannon, run in its own process pinned to the load core (see
// load-worker.ts for how it is driven at a fixed offered rate and how latency is recorded).
import { startChild, type ChildHandle } from './processes.ts';

/** One request of the rotation; autocannon's connections loop over the list, each from its own place. */
export interface LoadRequest {
  method?: 'GET' | 'POST';
  path?: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface LoadOptions {
  /** Origin of the server, e.g. http://127.0.0.1:4000 (paths come from `requests`). */
  url: string;
  requests: LoadRequest[];
  /** Headers for every request. */
  headers?: Record<string, string>;
  connections: number;
  durationSeconds: number;
  /** A fixed offered rate in requests per second over all connections; absent or null: as fast as answered. */
  rate?: number | null;
  timeoutSeconds?: number;
}

export interface LoadResult {
  /** Answers received (any status). */
  requests: number;
  durationSeconds: number;
  /** Answers per second. */
  throughput: number;
  offeredRate: number | null;
  /** Of 2xx answers; at a fixed rate, counted from when each request was due (see load-worker.ts). */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  firstStatusError: string | null;
}

export interface LoadGenerator {
  run(options: LoadOptions): Promise<LoadResult>;
  close(): Promise<void>;
}

/** Starts the load generator process on `cpu` (BenchContext.loadCpu); reuse it for every run of a benchmark. */
export async function startLoadGenerator(cpu: string | null): Promise<LoadGenerator> {
  const child: ChildHandle = await startChild('bench/lib/load-worker.ts', { cpu, name: 'load generator' });
  return {
    run: (options) => child.call<LoadResult>(options),
    close: () => child.stop(),
  };
}

/** Throws when a run had errors, timeouts or non-2xx answers: a benchmark of failures measures nothing. */
export function assertClean(result: LoadResult, what: string): LoadResult {
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${what}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx (${JSON.stringify(result.statusCodes)})`);
  }
  return result;
}
