// When to ask the upstream again: at the pace the provider recommends, sooner when it says the task
// is nearly done, and further apart (exponentially, capped, with jitter) while it is in trouble.
import type { Config } from '../config.ts';
import type { VideoTaskStatus } from '../tasks/status.ts';

export interface PollScheduleOptions {
  /** First poll after submission. */
  firstMs: number;
  /** UPSTREAM.md: toapis recommends every 5-10 s while queued and 10-15 s while in progress. */
  queuedMs: [min: number, max: number];
  inProgressMs: [min: number, max: number];
  /** Never poll sooner than this, even when the estimate says the task is about to finish. */
  minMs: number;
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

  /** Delay before the next poll of a healthy task. */
  next(status: VideoTaskStatus, estimatedSecondsLeft: number | null): number {
    const { queuedMs, inProgressMs, minMs, firstMs } = this.options;
    if (status === 'SUBMITTING') return firstMs;
    const [min, max] = status === 'IN_PROGRESS' ? inProgressMs : queuedMs;
    const paced = min + this.random() * (max - min);
    if (estimatedSecondsLeft === null) return paced;
    // Ask just after the estimate runs out, so a finished video is noticed early.
    return Math.max(minMs, Math.min(paced, estimatedSecondsLeft * 1000 + minMs));
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
    backoffBaseMs: config.POLL_BACKOFF_BASE_MS,
    backoffMaxMs: config.POLL_BACKOFF_MAX_MS,
    rateLimitedWaitMs: config.POLL_RATE_LIMITED_WAIT_MS,
    unavailableWaitMs: config.POLL_UNAVAILABLE_WAIT_MS,
  };
}
