// The poller benchmark's service: the whole app in its own pinned process, polling the sandbox process,
// on the compressed clock (its `now`), with the poll schedule it is given through POLL_* as main.ts would
// read it. It records when each task's completion was published, on both clocks, and its CPU time.
import { InProcessTaskEvents } from '../../src/events/task-events.ts';
import type { VideoTaskRow } from '../../src/storage/schema.ts';
import { sandboxAccounts } from '../../src/upstream/providers.ts';
import { childOptions, serveChild } from './child-process.ts';
import { compressedClock, startBenchApp, startProfile, monotonicMs, type CompressedClock, type ProfileFrame } from './subscribers-common.ts';

export interface PollerServerOptions {
  sandboxUrl: string;
  clock: CompressedClock;
  /** POLL_* and the like, in clock milliseconds (POLL_TICK_MS, a real timer, in real ones). */
  env: Record<string, string>;
}

export type PollerServerCommand = { op: 'cpu' } | { op: 'completions' } | { op: 'listeners' } | { op: 'profile-start' } | { op: 'profile-stop'; top: number };

export interface Completion {
  taskId: string;
  upstreamTaskId: string;
  /** When the service published the COMPLETED change: clock ms, and real ms. */
  publishedAtMs: number;
  publishedAtRealMs: number;
  /** The poll that saw it: when it was due (next_poll_at) and when the poller claimed it, clock ms. */
  dueAtMs: number;
  claimedAtMs: number;
}

/** Publishes as InProcessTaskEvents does, noting the first COMPLETED change of each task. */
class RecordedEvents extends InProcessTaskEvents {
  readonly completions = new Map<string, Completion>();
  /** Each task's latest claim: when its poll was due, and when it was claimed (clock ms). */
  readonly claims = new Map<string, { dueAtMs: number; claimedAtMs: number }>();

  constructor(private readonly now: () => number) {
    super();
  }

  override publish(task: VideoTaskRow): void {
    if (task.status === 'COMPLETED' && !this.completions.has(task.id)) {
      const claim = this.claims.get(task.id);
      this.completions.set(task.id, {
        taskId: task.id, upstreamTaskId: task.upstreamTaskId ?? '', publishedAtMs: this.now(), publishedAtRealMs: monotonicMs(),
        dueAtMs: claim?.dueAtMs ?? Number.NaN, claimedAtMs: claim?.claimedAtMs ?? Number.NaN,
      });
    }
    super.publish(task);
  }
}

serveChild(async () => {
  const options = childOptions<PollerServerOptions>();
  const clock = compressedClock(options.clock);
  const events = new RecordedEvents(() => clock());
  const bench = await startBenchApp(options.env, {
    accounts: sandboxAccounts(options.sandboxUrl, { allowsInternalCallbacks: true }),
    events,
    now: () => new Date(clock()),
  });
  // Where detection time goes: the claim of each poll is noted (the poller holds this same service).
  const claimDue = bench.app.tasks.claimDue.bind(bench.app.tasks);
  bench.app.tasks.claimDue = (provider, limit) => {
    const claimed = claimDue(provider, limit);
    const at = clock();
    for (const row of claimed) events.claims.set(row.id, { dueAtMs: row.nextPollAt?.getTime() ?? at, claimedAtMs: at });
    return claimed;
  };
  let profiling: ((top: number) => Promise<ProfileFrame[]>) | null = null;
  return {
    ready: { url: bench.url, pid: process.pid },
    async handle(body: unknown) {
      const command = body as PollerServerCommand;
      if (command.op === 'profile-start') {
        profiling = await startProfile();
        return null;
      }
      if (command.op === 'profile-stop') return (await profiling?.(command.top)) ?? [];
      if (command.op === 'cpu') {
        const usage = process.cpuUsage();
        return { cpuMs: (usage.user + usage.system) / 1000, atMs: monotonicMs() };
      }
      if (command.op === 'listeners') return events.listenerCount();
      return [...events.completions.values()];
    },
    stop: () => bench.close(),
  };
});
