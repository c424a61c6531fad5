// Shared by the subscription benchmarks (fanout, memory) and their child processes: the app as the
// benchmarks build it, the subscription every client runs, and the marker each driven event carries.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App, type AppDeps } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { ANONYMOUS_OWNER } from '../../src/storage/schema.ts';
import { TaskStore } from '../../src/storage/task-store.ts';
import { validateCreateVideoTask } from '../../src/tasks/validation.ts';

/** What every subscriber runs: the fields a progress bar needs, plus upstreamStatus, which carries the marker. */
export const WATCH_TASK = 'subscription Watch($id: ID!) { videoTaskUpdated(id: $id) { id status progress upstreamStatus } }';

/** The GraphQL id of a task row (Relay global id, as the schema exposes it). */
export const globalTaskId = (rowId: string) => Buffer.from(`VideoTask:${rowId}`).toString('base64');

/**
 * Milliseconds of CLOCK_MONOTONIC (process.hrtime), which is one clock for every process on the
 * machine: timestamps taken in different benchmark processes compare to the microsecond. (Not
 * performance.timeOrigin + now(): each process fixes its origin from the wall clock at start, and the
 * origins of two processes differ by a millisecond or more.)
 */
export const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

/** A clock running faster than real time, shared by the poller benchmark's processes. */
export interface CompressedClock {
  /** When it starts: monotonicMs() then, and the epoch ms it reads then. */
  originMonotonicMs: number;
  originEpochMs: number;
  /** Real seconds per clock second: 0.2 runs five times faster than real time. */
  scale: number;
}

export const newCompressedClock = (scale: number): CompressedClock => ({ originMonotonicMs: monotonicMs(), originEpochMs: Date.now(), scale });

/** The compressed clock's reading (ms since the epoch) at a real time (monotonicMs). */
export const compressedClock = ({ originMonotonicMs, originEpochMs, scale }: CompressedClock) =>
  (realMs = monotonicMs()) => originEpochMs + (realMs - originMonotonicMs) / scale;

/**
 * Each driven event's upstream status word: its sequence number within the task and when it was due.
 * The subscriber reads lateness, loss and order from it; no side channel is needed.
 */
export const eventMarker = (seq: number, dueAtMs: number) => `bench:${seq}:${dueAtMs.toFixed(3)}`;

export function readMarker(upstreamStatus: string | null | undefined): { seq: number; dueAtMs: number } | null {
  if (!upstreamStatus?.startsWith('bench:')) return null;
  const [, seq, due] = upstreamStatus.split(':');
  return { seq: Number(seq), dueAtMs: Number(due) };
}

/** Limits that would refuse a benchmark's own load are lifted; everything else is as configured by default. */
export const BENCH_ENV: Record<string, string> = {
  PORT: '0',
  LOG_LEVEL: 'silent',
  RATE_LIMIT_REQUESTS_PER_MINUTE: '100000000',
  RATE_LIMIT_TASKS_PER_MINUTE: '100000000',
  MAX_UNFINISHED_TASKS_PER_KEY: '100000000',
  WS_MAX_CONNECTIONS_PER_KEY: '100000000',
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '100000',
  GRAPHIQL: 'false',
};

export interface BenchApp {
  app: App;
  url: string;
  close(): Promise<void>;
}

/**
 * Where the benchmarks keep SQLite: tmpfs when there is one. The service commits with synchronous=FULL,
 * one fsync per write transaction, and on this kind of virtual disk that costs milliseconds (see
 * fsyncCostMs): on disk, these benchmarks would measure the disk, not the code.
 */
export const BENCH_DATA_ROOT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** The whole service (buildApp, as main.ts builds it) on port 0 with its SQLite file in a temp dir. */
export async function startBenchApp(env: Record<string, string> = {}, deps: Partial<AppDeps> = {}, dataRoot = BENCH_DATA_ROOT): Promise<BenchApp> {
  const dir = mkdtempSync(join(dataRoot, 'seedance-bench-'));
  const config = loadConfig({ ...BENCH_ENV, DATABASE_URL: join(dir, 'tasks.sqlite'), MEDIA_DIR: join(dir, 'media'), ...env });
  const app = buildApp({ config, logger: createLogger(config.LOG_LEVEL), ...deps });
  const url = await app.start(0, '127.0.0.1');
  return {
    app,
    url,
    async close() {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `count` tasks IN_PROGRESS with no next poll, written straight to the table in one transaction: setup
 * only (the service would submit each to an upstream first). Every change the benchmark then makes goes
 * through the task service. Returns the row ids.
 */
export function seedRunningTasks(app: App, count: number): string[] {
  const validated = validateCreateVideoTask({ model: 'seedance-2-fast', prompt: 'A benchmark of subscribers' });
  if (!validated.ok) throw new Error('the seed request is invalid');
  const store = new TaskStore(app.db);
  const now = new Date();
  const ids: string[] = [];
  store.transaction(() => {
    for (let i = 0; i < count; i++) {
      const id = `bench-task-${i}`;
      store.insert({
        id,
        model: validated.model.id,
        provider: 'sandbox',
        request: validated.request,
        prompt: validated.request.prompt,
        upstreamTaskId: `bench-upstream-${i}`,
        status: 'IN_PROGRESS',
        upstreamStatus: 'in_progress',
        progress: 0,
        createdAt: now,
        updatedAt: now,
        nextPollAt: null,
        ownerId: ANONYMOUS_OWNER,
      });
      ids.push(id);
    }
  });
  return ids;
}

/** Milliseconds per one-row write transaction with the service's pragmas (openDatabase), in a temp dir under `root`. */
export function writeTransactionMs(root: string, writes = 200): number {
  const dir = mkdtempSync(join(root, 'seedance-fsync-'));
  try {
    const db = openDatabase(join(dir, 'probe.sqlite'));
    const sqlite = db.$client;
    sqlite.exec('CREATE TABLE probe (id INTEGER PRIMARY KEY, value TEXT)');
    sqlite.prepare('INSERT INTO probe VALUES (1, ?)').run('');
    const update = sqlite.prepare('UPDATE probe SET value = ? WHERE id = 1');
    const started = performance.now();
    for (let i = 0; i < writes; i++) sqlite.transaction(() => update.run(String(i))).immediate();
    const ms = (performance.now() - started) / writes;
    sqlite.close();
    return ms;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Percentile of a sorted array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface ProfileFrame { frame: string; selfMs: number; share: number }

/** Starts V8's sampling profiler in this process; the returned function stops it and lists the top frames by self time. */
export async function startProfile(): Promise<(top: number) => Promise<ProfileFrame[]>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async (top) => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    return topFrames(profile, top);
  };
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }

/** Self time per function (name and file:line), largest first; shares are of the busy time (idle left out). */
function topFrames(profile: { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[] }, top: number): ProfileFrame[] {
  const busy = profile.nodes.filter((node) => node.callFrame.functionName !== '(idle)');
  const allHits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const totalHits = busy.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const totalMs = ((profile.endTime - profile.startTime) / 1000) * (totalHits / (allHits || 1));
  const byFrame = new Map<string, number>();
  for (const node of busy) {
    if (!node.hitCount) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const path = url.replace(/^file:\/\//, '');
    const file = path.includes('/node_modules/') ? path.replace(/^.*\/node_modules\//, '') : path.replace(/^.*\/(src|bench)\//, '$1/');
    const frame = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + node.hitCount);
  }
  return [...byFrame.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, hits]) => ({ frame, selfMs: (hits / totalHits) * totalMs, share: hits / totalHits }));
}
