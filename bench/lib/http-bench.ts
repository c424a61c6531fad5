// The two measurements every HTTP benchmark makes of its subjects: peak throughput (closed loop, as
// fast as the server answers), and latency at one fixed offered rate for all (open loop, see
// load-worker.ts), so that a subject that falls behind shows it in its tail.
import { assertClean, type LoadGenerator, type LoadRequest, type LoadResult } from './load.ts';
import { interleavedRounds, type Rows } from './measure.ts';
import { cpuSeconds } from './processes.ts';
import type { BenchContext } from './types.ts';

export interface HttpSubject {
  name: string;
  /** Origin, e.g. http://127.0.0.1:4000. */
  url: string;
  requests: LoadRequest[];
  headers?: Record<string, string>;
  /** The server's process id: its CPU time per request is recorded with the throughput. */
  pid?: number;
}

export const THROUGHPUT = 'throughput';
export const CPU_PER_REQUEST = 'server CPU per request';
export const P99_CLOSED_LOOP = 'p99 at that throughput';
export const P50_AT_RATE = 'p50 at fixed rate';
export const P99_AT_RATE = 'p99 at fixed rate';
export const ACHIEVED_RATE = 'achieved at fixed rate';

/**
 * Rows `throughput` (req/s) and, where the pid is known, `server CPU per request` (µs) per subject, over
 * `connections` concurrent connections; with `latency`, also the p99 of those closed-loop requests.
 */
export async function measureThroughput(
  ctx: BenchContext, load: LoadGenerator, subjects: readonly HttpSubject[], rows: Rows,
  { connections = 50, latency = false }: { connections?: number; latency?: boolean } = {},
): Promise<void> {
  const options = (subject: HttpSubject, durationSeconds: number) => ({
    url: subject.url, requests: subject.requests, headers: subject.headers, connections, durationSeconds,
  });
  await interleavedRounds(ctx, subjects, async (subject, round) => {
    const cpuBefore = subject.pid === undefined ? null : cpuSeconds(subject.pid);
    const result = assertClean(await load.run(options(subject, ctx.durationSeconds)), `${subject.name} throughput`);
    const cpuAfter = subject.pid === undefined ? null : cpuSeconds(subject.pid);
    rows.add(subject.name, THROUGHPUT, 'req/s', result.throughput);
    const cpuMicros = cpuBefore !== null && cpuAfter !== null ? ((cpuAfter - cpuBefore) * 1e6) / result.requests : null;
    if (cpuMicros !== null) rows.add(subject.name, CPU_PER_REQUEST, 'µs', cpuMicros);
    if (latency) rows.add(subject.name, P99_CLOSED_LOOP, 'ms', result.latencyMs.p99);
    ctx.log(`  round ${round} ${subject.name}: ${Math.round(result.throughput)} req/s, ${cpuMicros === null ? '?' : Math.round(cpuMicros)} µs CPU/request (p99 ${result.latencyMs.p99.toFixed(2)} ms at ${connections} connections)`);
  }, async (subject) => {
    assertClean(await load.run(options(subject, ctx.warmupSeconds)), `${subject.name} warm-up`);
  });
}

/** load-worker.ts's answer: LoadResult plus each request's latencies (not imported: that module runs the worker). */
type LoadResultByRequest = LoadResult & { latencyMsByRequest: { p50: number; p99: number; count: number }[] };

/**
 * Rows `p50/p99 at fixed rate` (ms) and the rate achieved, per subject, at `rate` req/s. A group of
 * subjects (an array; one server, one request each) is measured together: their requests alternate on
 * the same connections, `rate` in all, for as many times longer as there are subjects, so each gets as
 * many samples as alone, and a stall of the server or the machine (a GC, a neighbour's burst) falls
 * on all of them alike. Compare tails within a group: measured one after another, at this length
 * (thousands of requests, the p99 is the ~30th slowest), whichever subject ran during a stall of a few
 * tens of ms showed it as its p99, and a ratio of two such p99s measured the stall's timing.
 */
export async function measureLatencyAtRate(
  ctx: BenchContext, load: LoadGenerator, subjects: readonly (HttpSubject | readonly HttpSubject[])[], rows: Rows, rate: number, connections = 32,
): Promise<void> {
  const groups = subjects.map((subject) => (isGroup(subject) ? subject : [subject]));
  for (const group of groups) {
    if (group.length > 1 && group.some((s) => s.url !== group[0]!.url || s.requests.length !== 1 || JSON.stringify(s.headers) !== JSON.stringify(group[0]!.headers))) {
      throw new Error(`${group.map((s) => s.name).join(', ')}: subjects measured together need one server, the same headers and one request each`);
    }
  }
  const name = (group: readonly HttpSubject[]) => group.map((s) => s.name).join(' + ');
  const run = (group: readonly HttpSubject[], durationSeconds: number) => load.run({
    url: group[0]!.url, requests: group.length === 1 ? group[0]!.requests : group.map((s) => s.requests[0]!), headers: group[0]!.headers,
    connections: Math.min(connections, Math.ceil(rate)), durationSeconds, rate,
  }) as Promise<LoadResultByRequest>;
  ctx.log(`  latency at a fixed ${Math.round(rate)} req/s`);
  // Each round starts with a second at the rate, not recorded: a server left idle while the others
  // were measured has had its heap shrunk by V8 and shows it in the first second's tail.
  const settleSeconds = 1;
  await interleavedRounds(ctx, groups.map((group) => ({ name: name(group), group })), async ({ group }, round) => {
    assertClean(await run(group, settleSeconds), `${name(group)} settling at ${Math.round(rate)} req/s`);
    const result = assertClean(await run(group, Math.max(1, ctx.durationSeconds - settleSeconds) * group.length), `${name(group)} at ${Math.round(rate)} req/s`) as LoadResultByRequest;
    group.forEach((subject, i) => {
      const latency = group.length === 1 ? result.latencyMs : result.latencyMsByRequest[i]!;
      const achieved = group.length === 1 ? result.throughput : result.throughput * (result.latencyMsByRequest[i]!.count / Math.max(1, result.latencyMsByRequest.reduce((sum, r) => sum + r.count, 0)));
      rows.add(subject.name, P50_AT_RATE, 'ms', latency.p50);
      rows.add(subject.name, P99_AT_RATE, 'ms', latency.p99);
      rows.add(subject.name, ACHIEVED_RATE, 'req/s', achieved);
      ctx.log(`  round ${round} ${subject.name}: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms, ${Math.round(achieved)} req/s${group.length > 1 ? ` (with ${group.filter((s) => s !== subject).map((s) => s.name).join(', ')})` : ''}`);
    });
  });
}

function isGroup(subject: HttpSubject | readonly HttpSubject[]): subject is readonly HttpSubject[] {
  return Array.isArray(subject);
}

/** POSTs `body` and returns the parsed JSON answer (for checking a subject answers what the others do). */
export async function fetchJson(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<unknown> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as unknown;
}
