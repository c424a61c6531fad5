// The poller benchmark's upstream: the sandbox (both providers' APIs) in its own pinned process, on a
// compressed clock shared with the service (see compressedClock), with each task's length drawn from
// the benchmark's range rather than the catalog's, and the exact moment each task finished on record.
import { SANDBOX_API_KEY } from '../../src/upstream/providers.ts';
import { startSandboxServer } from '../../src/sandbox/sandbox-upstream.ts';
import type { SandboxTask } from '../../src/sandbox/sandbox-task.ts';
import { childOptions, serveChild } from './child-process.ts';
import { compressedClock, monotonicMs, type CompressedClock } from './subscribers-common.ts';

export interface SandboxChildOptions { clock: CompressedClock }

export type SandboxCommand =
  /** Tasks created from now on last between minSeconds and maxSeconds of clock time (seeded, in creation order). */
  | { op: 'plan'; minSeconds: number; maxSeconds: number; seed: number }
  /** The tasks created since the last `plan`: when each was created and finished (clock ms), and the requests served. */
  | { op: 'report' }
  /** This process's CPU time and the real time (ms), to tell whether the sandbox keeps up. */
  | { op: 'cpu' };

export interface SandboxReport {
  /** Each task created since `plan`: when it was created and finished (clock ms), and how often it was asked about. */
  tasks: { upstreamTaskId: string; createdAtMs: number; finishedAtMs: number; queries: number }[];
  requests: { create: number; query: number; media: number };
}

/** Share of a task spent queued, as the sandbox plans it (sandbox-task.ts). */
const QUEUED_SHARE = 0.2;

serveChild(async () => {
  const { clock } = childOptions<SandboxChildOptions>();
  const server = await startSandboxServer({
    apiKey: SANDBOX_API_KEY, timeScale: 1, now: compressedClock(clock), allowInternalCallbacks: true, port: 0,
  });
  let plan = { minSeconds: 10, maxSeconds: 120, random: seeded(1) };
  let created: SandboxTask[] = [];
  let since = server.sandbox.stats().requests;

  // The sandbox draws a task's length from the model's typical range (40-300 s): each new task is
  // re-planned as it is stored, before its first answer is computed. (A bench-only reach into the
  // sandbox's private map: the service cannot tell, it only sees the upstream's answers.)
  const taskById = (server.sandbox as unknown as { taskById: Map<string, SandboxTask> }).taskById;
  taskById.set = function set(id: string, task: SandboxTask) {
    const { minSeconds, maxSeconds, random } = plan;
    task.totalMs = Math.round((minSeconds + random() * (maxSeconds - minSeconds)) * 1000);
    task.queuedMs = Math.round(task.totalMs * QUEUED_SHARE);
    created.push(task);
    return Map.prototype.set.call(this, id, task) as Map<string, SandboxTask>;
  };

  // Queries per task: the request paths end with the upstream task id.
  const queries = new Map<string, number>();
  const handle = server.sandbox.handle.bind(server.sandbox);
  server.sandbox.handle = (req, res) => {
    if (req.method === 'GET') {
      const id = decodeURIComponent((req.url ?? '').split('?')[0]!.split('/').at(-1) ?? '');
      queries.set(id, (queries.get(id) ?? 0) + 1);
    }
    return handle(req, res);
  };

  return {
    ready: { url: server.url, pid: process.pid },
    handle(body: unknown) {
      const command = body as SandboxCommand;
      if (command.op === 'cpu') {
        const usage = process.cpuUsage();
        return { cpuMs: (usage.user + usage.system) / 1000, atMs: monotonicMs() };
      }
      if (command.op === 'plan') {
        plan = { minSeconds: command.minSeconds, maxSeconds: command.maxSeconds, random: seeded(command.seed) };
        created = [];
        queries.clear();
        since = server.sandbox.stats().requests;
        return null;
      }
      const now = server.sandbox.stats().requests;
      return {
        tasks: created.map((task) => ({
          upstreamTaskId: task.id, createdAtMs: task.createdAtMs, finishedAtMs: task.createdAtMs + task.totalMs, queries: queries.get(task.id) ?? 0,
        })),
        requests: { create: now.create - since.create, query: now.query - since.query, media: now.media - since.media },
      } satisfies SandboxReport;
    },
    stop: () => server.close(),
  };
});

/** mulberry32: the same lengths in every round and for every schedule. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
