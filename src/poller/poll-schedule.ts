// When to ask the upstream again: at the pace the provider recommends; when it says how long the task
// has left (seed 003's estimated_time), just after that runs out, however far off (up to a cap); and
// further apart (exponentially, capped, with jitter) while it is in trouble.
import type { Config } from '../config.ts';
import type { VideoTaskStatus } from '../tasks/status.ts';

export interface PollScheduleOptions {
  /** First poll after submission. */
  firstMs: number;
  /** UPSTREAM.md: toapis recommends every 5-10 s while queued and 10-15 s while in progress. */
  queuedMs: [min: number, max: number];
  inProgressMs: [min: number, max: number];
  /**
   * Never poll sooner than this, even when the estimate says the task is about to finish; also the
   * margin after the estimate runs out (the estimate is whole seconds: the end falls within it).
   */
  minMs: number;
  /**
   * The longest wait an estimate may set (jittered down by up to 20%): a task is still asked about at
   * least this often, so an estimate that is far too long costs at most this much detection, and the
   * progress shown moves at least this often. At or below the pace, an estimate only ever shortens it.
   */
  estimateMaxMs: number;
  /** Backoff after failures: base * 2^(failures-1), capped, with +-20% jitter. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Seed 003's suggested waits when a 429 or 503 comes without Retry-After. */
  rateLimitedWaitMs: number;
  unavailableWaitMs: number;
}

export const DEFAULT_POLL_SCHEDULE: PollScheduleOptions = {
  firstMs: 2_000,
  queuedMs: [5_000, 10_000],
  inProgressMs: [10_000, 15_000],
  minMs: 1_000,
  estimateMaxMs: 30_000,
  backoffBaseMs: 2_000,
  backoffMaxMs: 120_000,
  rateLimitedWaitMs: 60_000,
  unavailableWaitMs: 30_000,
};

export class PollSchedule {
  constructor(readonly options: PollScheduleOptions = DEFAULT_POLL_SCHEDULE, private readonly random: () => number = Math.random) {}

  /** Delay before the first poll of a task just submitted: soon, to show it moving. */
  first(): number {
    return this.options.firstMs;
  }

  /**
   * Delay before the next poll of a healthy task. With no estimate, the provider's pace. With one, just
   * after it runs out: polling at the pace in between would only learn what the estimate already says
   * (bench/poller.ts: 7 requests per task at the pace, 2-3 aimed at the estimate). If the task is not
   * done by then, its new estimate (0 or a little) brings the next poll after minMs.
   */
  next(status: VideoTaskStatus, estimatedSecondsLeft: number | null): number {
    const { queuedMs, inProgressMs, minMs, firstMs, estimateMaxMs } = this.options;
    if (status === 'SUBMITTING') return firstMs;
    const [min, max] = status === 'IN_PROGRESS' ? inProgressMs : queuedMs;
    const draw = this.random();
    const paced = min + draw * (max - min);
    if (estimatedSecondsLeft === null) return paced;
    const longest = Math.max(paced, estimateMaxMs * (1 - 0.2 * draw));
    return Math.max(minMs, Math.min(longest, estimatedSecondsLeft * 1000 + minMs));
  }

  /**
   * Delay after the `failures`-th consecutive failure. A 429/503 waits at least what the upstream
   * asked for (Retry-After), or the seed's suggestion when it did not say.
   */
  backoff(failures: number, httpStatus: number | null, retryAfterSeconds: number | null): number {
    const { backoffBaseMs, backoffMaxMs, rateLimitedWaitMs, unavailableWaitMs } = this.options;
    const exponential = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.max(0, failures - 1));
    const jittered = exponential * (0.8 + 0.4 * this.random());
    let floor = 0;
    if (retryAfterSeconds !== null) floor = retryAfterSeconds * 1000;
    else if (httpStatus === 429) floor = rateLimitedWaitMs;
    else if (httpStatus === 503) floor = unavailableWaitMs;
    return Math.max(floor, jittered);
  }
}

export function pollScheduleOptions(config: Config): PollScheduleOptions {
  return {
    firstMs: config.POLL_FIRST_MS,
    queuedMs: [config.POLL_QUEUED_MIN_MS, config.POLL_QUEUED_MAX_MS],
    inProgressMs: [config.POLL_IN_PROGRESS_MIN_MS, config.POLL_IN_PROGRESS_MAX_MS],
    minMs: config.POLL_MIN_MS,
    estimateMaxMs: config.POLL_ESTIMATE_MAX_MS,
    backoffBaseMs: config.POLL_BACKOFF_BASE_MS,
    backoffMaxMs: config.POLL_BACKOFF_MAX_MS,
    rateLimitedWaitMs: config.POLL_RATE_LIMITED_WAIT_MS,
    unavailableWaitMs: config.POLL_UNAVAILABLE_WAIT_MS,
  };
}
