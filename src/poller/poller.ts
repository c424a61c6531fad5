// Asks the upstream how each unfinished task is doing, at the pace the schedule says, inside the
// service process. Which tasks are due lives in SQLite (next_poll_at, and a lease per task), so a
// restart resumes every task and two processes on one file never poll the same task at once.
import type { Logger } from 'pino';
import { requestContext } from '../observability/request-context.ts';
import type { VideoTaskRow } from '../storage/schema.ts';
import type { VideoTaskService } from '../tasks/task-service.ts';
import { UpstreamHttpError, UpstreamProtocolError, UpstreamTransportError } from '../upstream/errors.ts';
import type { ProviderDirectory } from '../upstream/providers.ts';
import type { UpstreamClient } from '../upstream/upstream-client.ts';
import type { PollSchedule } from './poll-schedule.ts';

export interface PollerOptions {
  /** How often to look for due tasks. */
  tickMs: number;
  /** At most this many upstream calls in flight per provider. */
  concurrencyPerProvider: number;
  /** A task not finished this long after creation ends FAILED with TIMEOUT. */
  deadlineMs: number;
}

export interface PollerDeps {
  tasks: VideoTaskService;
  providers: ProviderDirectory;
  upstream: UpstreamClient;
  schedule: PollSchedule;
  logger: Logger;
  options: PollerOptions;
  now?: () => Date;
  /** Told of each task claimed, with the time of claiming (poll lag metrics). */
  onClaimed?: (row: VideoTaskRow, now: Date) => void;
}

/** Errors that will not heal by asking again: the key, the permission, or the task itself is gone. */
const FINAL_HTTP_STATUSES = new Set([401, 403, 404]);

export class Poller {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly inFlight = new Map<string, number>();
  private readonly active = new Set<Promise<void>>();
  private readonly now: () => Date;
  private lastTickAt = 0;

  constructor(private readonly deps: PollerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops looking for work and waits for the polls in flight to be written. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.active]);
  }

  /** Polls in flight right now (for readiness and metrics). */
  get busy(): number {
    return this.active.size;
  }

  /** Running, and its loop has ticked recently (a stuck loop or a dead timer makes it unhealthy). */
  healthy(): boolean {
    const allowed = Math.max(10 * this.deps.options.tickMs, 5_000);
    return this.running && Date.now() - this.lastTickAt < allowed;
  }

  /** One pass: claim what is due for each provider, up to its free slots, and poll it. */
  tick(): void {
    const { tasks, providers, options, logger } = this.deps;
    this.lastTickAt = Date.now();
    for (const provider of providers.providerNames()) {
      const free = options.concurrencyPerProvider - (this.inFlight.get(provider) ?? 0);
      if (free <= 0) continue;
      let claimed: VideoTaskRow[];
      try {
        claimed = tasks.claimDue(provider, free);
      } catch (error) {
        // A locked or busy database heals; the next tick tries again.
        logger.error({ err: error, provider }, 'claiming due tasks failed');
        continue;
      }
      const now = this.now();
      for (const row of claimed) {
        this.deps.onClaimed?.(row, now);
        // Each poll runs in the context of the request that created the task: its logs and upstream
        // calls carry that request's id.
        const context = { requestId: row.requestId ?? `task-${row.id}`, taskId: row.id };
        this.track(provider, requestContext.run(context, () => this.pollOne(row)));
      }
    }
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.tick();
      this.schedule(this.deps.options.tickMs);
    }, delayMs);
  }

  private track(provider: string, work: Promise<void>): void {
    this.inFlight.set(provider, (this.inFlight.get(provider) ?? 0) + 1);
    const done = work.catch((error) => {
      this.deps.logger.error({ err: error }, 'poll crashed; the task stays due and is retried');
    }).finally(() => {
      this.inFlight.set(provider, (this.inFlight.get(provider) ?? 1) - 1);
      this.active.delete(done);
    });
    this.active.add(done);
  }

  /** Asks about one claimed task and records the answer, or the failure and when to try again. */
  async pollOne(row: VideoTaskRow): Promise<void> {
    const { tasks, providers, upstream, schedule, options, logger } = this.deps;
    const deadline = new Date(row.createdAt.getTime() + options.deadlineMs);
    if (this.now() >= deadline) {
      tasks.fail(row.id, {
        code: 'TIMEOUT',
        type: 'deadline_exceeded',
        message: `The task did not finish within ${options.deadlineMs >= 60_000 ? `${Math.round(options.deadlineMs / 60_000)} minutes` : `${Math.round(options.deadlineMs / 1000)} seconds`} of its creation.`,
        param: null,
        fallbackSuggestion: 'create the task again, or raise TASK_DEADLINE_MS',
      });
      return;
    }
    if (row.status === 'SUBMITTING') {
      await tasks.resumeSubmission(row, deadline);
      return;
    }
    const route = providers.route(row.model, row.provider);
    if (!route || !row.upstreamTaskId) {
      const reason = !route ? `provider "${row.provider}" is not configured` : 'the task has no upstream id';
      tasks.recordPollFailure(row.id, reason, schedule.backoff(row.pollFailures + 1, null, null));
      return;
    }
    try {
      const answer = await upstream.fetchTask(route, row.upstreamTaskId);
      tasks.applyUpstream(row.id, answer, 'poll');
    } catch (error) {
      if (error instanceof UpstreamHttpError && FINAL_HTTP_STATUSES.has(error.httpStatus)) {
        logger.warn({ taskId: row.id, httpStatus: error.httpStatus, upstreamError: error.body }, 'upstream refuses to report the task; it ends FAILED');
        tasks.fail(row.id, error.body);
        return;
      }
      if (!(error instanceof UpstreamHttpError || error instanceof UpstreamTransportError || error instanceof UpstreamProtocolError)) throw error;
      const failures = row.pollFailures + 1;
      const httpStatus = error instanceof UpstreamHttpError ? error.httpStatus : null;
      const retryAfter = error instanceof UpstreamHttpError ? error.retryAfterSeconds : null;
      const delay = schedule.backoff(failures, httpStatus, retryAfter);
      logger.warn({ taskId: row.id, failures, delayMs: Math.round(delay), err: error }, 'poll failed; backing off');
      tasks.recordPollFailure(row.id, error.message, delay);
    }
  }
}
