// PollSchedule: when the poller asks the upstream again. The pace the provider recommends
// (UPSTREAM.md: every 5-10 s while queued, 10-15 s while in progress); when seed 003's estimated_time
// says how long is left, just after that runs out (sooner or later than the pace, up to a cap); and
// capped exponential backoff with +-20% jitter
// while the upstream is in trouble, never sooner than its Retry-After (or seed 003's suggested
// 60 s for 429 and 30 s for 503 when it gives none). Every case runs with a fixed or seeded `random`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { DEFAULT_POLL_SCHEDULE, PollSchedule, pollScheduleOptions, type PollScheduleOptions } from '../src/poller/poll-schedule.ts';

/** mulberry32: a small seeded generator, so a sweep draws the same numbers on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fixed = (value: number) => () => value;
/** A draw at the top of [0, 1), as Math.random may return (1 - 2^-53 would round back onto the bound). */
const ALMOST_ONE = 0.999_999;

/** Distinct, easy-to-read numbers, so that a value taken from the wrong option shows. */
const OPTIONS: PollScheduleOptions = {
  firstMs: 1_500,
  queuedMs: [5_000, 10_000],
  inProgressMs: [10_000, 15_000],
  minMs: 1_000,
  estimateMaxMs: 60_000,
  backoffBaseMs: 2_000,
  backoffMaxMs: 120_000,
  rateLimitedWaitMs: 60_000,
  unavailableWaitMs: 30_000,
};

/** Draws `n` values and returns their range. */
function sweep(n: number, draw: () => number): { min: number; max: number; values: number[] } {
  const values = Array.from({ length: n }, draw);
  return { min: Math.min(...values), max: Math.max(...values), values };
}

describe('PollSchedule.first', () => {
  it('polls a just-submitted task after firstMs, whatever the random draw', () => {
    for (const r of [0, 0.5, ALMOST_ONE]) assert.equal(new PollSchedule(OPTIONS, fixed(r)).first(), 1_500);
  });

  it('is sooner than the queued pace by default ("soon after submission")', () => {
    const schedule = new PollSchedule(DEFAULT_POLL_SCHEDULE, fixed(0));
    assert.ok(schedule.first() < DEFAULT_POLL_SCHEDULE.queuedMs[0]);
  });

  it('next() of a task still SUBMITTING is the first delay too', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0.7)).next('SUBMITTING', null), 1_500);
  });
});

describe('PollSchedule.next: the provider\'s pace', () => {
  it('maps the random draw linearly onto the queued range (jitter: min + r * (max - min))', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0)).next('QUEUED', null), 5_000);
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).next('QUEUED', null), 7_500);
    assert.equal(new PollSchedule(OPTIONS, fixed(0.25)).next('QUEUED', null), 6_250);
    const top = new PollSchedule(OPTIONS, fixed(ALMOST_ONE)).next('QUEUED', null);
    assert.ok(top < 10_000 && top > 9_999.99, String(top));
  });

  it('maps the random draw linearly onto the in-progress range', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0)).next('IN_PROGRESS', null), 10_000);
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).next('IN_PROGRESS', null), 12_500);
    const top = new PollSchedule(OPTIONS, fixed(ALMOST_ONE)).next('IN_PROGRESS', null);
    assert.ok(top < 15_000 && top > 14_999.99, String(top));
  });

  for (const [status, [lo, hi]] of [['QUEUED', OPTIONS.queuedMs], ['IN_PROGRESS', OPTIONS.inProgressMs]] as const) {
    it(`${status}: seeded draws stay within [${lo}, ${hi}) and spread over the whole range`, () => {
      const schedule = new PollSchedule(OPTIONS, seeded(42));
      const { min, max, values } = sweep(2_000, () => schedule.next(status, null));
      assert.ok(min >= lo && max < hi, `${min}..${max}`);
      // Jitter spans the range: both ends are reached within 2% and every tenth of it is used.
      const span = hi - lo;
      assert.ok(min < lo + 0.02 * span && max > hi - 0.02 * span, `${min}..${max}`);
      const deciles = new Set(values.map((v) => Math.floor(((v - lo) / span) * 10)));
      assert.equal(deciles.size, 10);
    });
  }

  it('uses the configured ranges, not built-in ones ("intervals configurable")', () => {
    const custom: PollScheduleOptions = { ...OPTIONS, queuedMs: [100, 200], inProgressMs: [300, 400], minMs: 10 };
    const schedule = new PollSchedule(custom, seeded(7));
    const queued = sweep(500, () => schedule.next('QUEUED', null));
    const running = sweep(500, () => schedule.next('IN_PROGRESS', null));
    assert.ok(queued.min >= 100 && queued.max < 200);
    assert.ok(running.min >= 300 && running.max < 400);
  });

  it('a degenerate range (min = max) gives exactly that interval', () => {
    const schedule = new PollSchedule({ ...OPTIONS, queuedMs: [8_000, 8_000] }, seeded(1));
    for (let i = 0; i < 20; i++) assert.equal(schedule.next('QUEUED', null), 8_000);
  });
});

describe('PollSchedule.next: estimated_time (seed 003)', () => {
  it('polls just after the estimate runs out when that is sooner than the pace: estimate + minMs', () => {
    // Pace draw 0.5 -> 12.5 s in progress; 3 s left -> ask after 3 s + 1 s.
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).next('IN_PROGRESS', 3), 4_000);
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).next('QUEUED', 2), 3_000);
  });

  it('never polls sooner than minMs, even when the task should already be done', () => {
    for (const estimate of [0, -5, 0.0001]) {
      for (const r of [0, 0.5, ALMOST_ONE]) {
        const delay = new PollSchedule(OPTIONS, fixed(r)).next('IN_PROGRESS', estimate);
        assert.ok(delay >= OPTIONS.minMs, `estimate ${estimate}, r ${r}: ${delay}`);
      }
    }
    assert.equal(new PollSchedule(OPTIONS, fixed(0.3)).next('IN_PROGRESS', 0), 1_000);
  });

  it('waits for the estimate when it runs out later than the pace: estimate + minMs', () => {
    // Pace draw 0.5 -> 12.5 s in progress, 7.5 s queued; 30 s and 20 s left -> ask after 31 s and 21 s.
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).next('IN_PROGRESS', 30), 31_000);
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).next('QUEUED', 20), 21_000);
  });

  it('waits at most estimateMaxMs, jittered down by up to 20%, however far off the estimate', () => {
    for (const estimate of [165, 3_600]) {
      assert.equal(new PollSchedule(OPTIONS, fixed(0)).next('IN_PROGRESS', estimate), 60_000);
      assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).next('IN_PROGRESS', estimate), 54_000);
      const bottom = new PollSchedule(OPTIONS, fixed(ALMOST_ONE)).next('QUEUED', estimate);
      assert.ok(bottom > 48_000 && bottom < 48_000.1, String(bottom));
    }
  });

  it('an estimate never lengthens the pace when estimateMaxMs is at or below it (0 turns the lengthening off)', () => {
    for (const estimateMaxMs of [0, OPTIONS.queuedMs[0]]) {
      const options = { ...OPTIONS, estimateMaxMs };
      assert.equal(new PollSchedule(options, fixed(0.5)).next('IN_PROGRESS', 165), 12_500);
      assert.equal(new PollSchedule(options, fixed(0.5)).next('QUEUED', 3_600), 7_500);
      // Shortening still applies.
      assert.equal(new PollSchedule(options, fixed(0.5)).next('IN_PROGRESS', 3), 4_000);
    }
  });

  it('without an estimate (toapis models) the pace is kept, whatever estimateMaxMs says', () => {
    assert.equal(new PollSchedule({ ...OPTIONS, estimateMaxMs: 600_000 }, fixed(0.5)).next('IN_PROGRESS', null), 12_500);
  });

  it('over seeded draws the delay follows the estimate down, within [minMs, min(estimate + minMs, estimateMaxMs)]', () => {
    const schedule = new PollSchedule(OPTIONS, seeded(99));
    let previous = Infinity;
    for (const estimate of [3_600, 165, 60, 40, 20, 12, 8, 5, 3, 1, 0]) {
      const delays = sweep(200, () => schedule.next('IN_PROGRESS', estimate));
      assert.ok(delays.min >= OPTIONS.minMs, `estimate ${estimate}: ${delays.min}`);
      assert.ok(delays.max <= Math.min(estimate * 1000 + OPTIONS.minMs, OPTIONS.estimateMaxMs), `estimate ${estimate}: ${delays.max}`);
      assert.ok(delays.max <= previous);
      previous = delays.max;
    }
  });
});

describe('PollSchedule.backoff', () => {
  /** The un-jittered backoff: base * 2^(failures-1), capped. */
  const exponential = (failures: number) => Math.min(OPTIONS.backoffMaxMs, OPTIONS.backoffBaseMs * 2 ** (failures - 1));

  it('doubles with each consecutive failure from the base (draw 0.5: no jitter)', () => {
    const schedule = new PollSchedule(OPTIONS, fixed(0.5));
    const delays = [1, 2, 3, 4, 5, 6].map((f) => schedule.backoff(f, 500, null));
    assert.deepEqual(delays, [2_000, 4_000, 8_000, 16_000, 32_000, 64_000]);
  });

  it('is capped at backoffMaxMs, however many failures', () => {
    const schedule = new PollSchedule(OPTIONS, fixed(0.5));
    for (const f of [7, 8, 20, 60, 1_000]) assert.equal(schedule.backoff(f, null, null), 120_000);
    // Capped before the jitter: the worst case is 1.2 x the cap.
    assert.ok(new PollSchedule(OPTIONS, fixed(ALMOST_ONE)).backoff(1_000, null, null) <= 1.2 * 120_000);
  });

  it('treats a first call with 0 failures like the first failure (never below the base band)', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).backoff(0, null, null), 2_000);
  });

  it('jitters by +-20%: draw 0 gives 0.8x, a draw near 1 gives just under 1.2x', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0)).backoff(3, null, null), 0.8 * 8_000);
    const top = new PollSchedule(OPTIONS, fixed(ALMOST_ONE)).backoff(3, null, null);
    assert.ok(top < 1.2 * 8_000 && top > 1.2 * 8_000 - 0.01, String(top));
  });

  it('over seeded draws every delay is within [0.8, 1.2) of the exponential and the jitter spans that band', () => {
    const schedule = new PollSchedule(OPTIONS, seeded(2024));
    for (const failures of [1, 2, 4, 7, 12]) {
      const { min, max } = sweep(1_000, () => schedule.backoff(failures, 502, null) / exponential(failures));
      assert.ok(min >= 0.8 && max < 1.2, `failures ${failures}: ${min}..${max}`);
      assert.ok(min < 0.81 && max > 1.19, `failures ${failures}: ${min}..${max}`);
    }
  });

  it('transport failures (no HTTP status) and other 5xx back off the same way', () => {
    for (const status of [null, 500, 502, 504]) {
      assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).backoff(2, status, null), 4_000, String(status));
    }
  });

  it('honours Retry-After as a floor: a longer Retry-After wins over the backoff', () => {
    const schedule = new PollSchedule(OPTIONS, fixed(ALMOST_ONE));
    assert.equal(schedule.backoff(1, 429, 90), 90_000);
    assert.equal(schedule.backoff(1, 503, 45), 45_000);
    // Any status: a 500 that says Retry-After is believed too.
    assert.equal(schedule.backoff(1, 500, 10), 10_000);
  });

  it('a Retry-After shorter than the backoff does not shorten it', () => {
    const schedule = new PollSchedule(OPTIONS, fixed(0.5));
    assert.equal(schedule.backoff(6, 429, 1), 64_000);
    assert.equal(schedule.backoff(3, 503, 2), 8_000);
  });

  it('over seeded draws the delay is never below Retry-After, nor below 0.8x the exponential', () => {
    const schedule = new PollSchedule(OPTIONS, seeded(5));
    const random = seeded(6);
    for (let i = 0; i < 2_000; i++) {
      const failures = 1 + Math.floor(random() * 10);
      const retryAfter = Math.floor(random() * 120);
      const status = [429, 503, 500][Math.floor(random() * 3)]!;
      const delay = schedule.backoff(failures, status, retryAfter);
      assert.ok(delay >= retryAfter * 1000, `${failures} ${status} ${retryAfter}: ${delay}`);
      assert.ok(delay >= 0.8 * exponential(failures));
      assert.ok(delay <= Math.max(retryAfter * 1000, 1.2 * exponential(failures)));
    }
  });

  it('a 429 without Retry-After waits at least rateLimitedWaitMs (seed 003: "retry after 60 seconds")', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0)).backoff(1, 429, null), 60_000);
    assert.equal(new PollSchedule(OPTIONS, fixed(ALMOST_ONE)).backoff(2, 429, null), 60_000);
    // Beyond it, the backoff keeps growing: the suggestion is a floor, not a fixed wait.
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).backoff(7, 429, null), 120_000);
  });

  it('a 503 without Retry-After waits at least unavailableWaitMs (seed 003: "retry after 30 seconds")', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0)).backoff(1, 503, null), 30_000);
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).backoff(6, 503, null), 64_000);
  });

  it('the suggested waits apply only to 429 and 503', () => {
    for (const status of [500, 502, null]) {
      assert.equal(new PollSchedule(OPTIONS, fixed(0)).backoff(1, status, null), 1_600, String(status));
    }
  });

  it('an explicit Retry-After replaces the suggested wait, even when shorter (Retry-After: 0 means "now")', () => {
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).backoff(1, 429, 5), 5_000);
    assert.equal(new PollSchedule(OPTIONS, fixed(0.5)).backoff(1, 503, 0), 2_000);
  });
});

describe('pollScheduleOptions', () => {
  it('the defaults are UPSTREAM.md\'s pace (5-10 s queued, 10-15 s in progress) and seed 003\'s waits (60 s / 30 s)', () => {
    const options = pollScheduleOptions(loadConfig({}));
    assert.deepEqual(options.queuedMs, [5_000, 10_000]);
    assert.deepEqual(options.inProgressMs, [10_000, 15_000]);
    assert.equal(options.rateLimitedWaitMs, 60_000);
    assert.equal(options.unavailableWaitMs, 30_000);
    // Soon after submission: well before the first queued poll would be.
    assert.ok(options.firstMs > 0 && options.firstMs < options.queuedMs[0], String(options.firstMs));
    assert.ok(options.minMs > 0 && options.minMs <= options.queuedMs[0]);
    // An estimate may set a wait well beyond the in-progress pace: that is where the requests are saved.
    assert.ok(options.estimateMaxMs >= 2 * options.inProgressMs[1], String(options.estimateMaxMs));
    assert.ok(options.backoffBaseMs > 0 && options.backoffBaseMs <= options.backoffMaxMs);
    assert.deepEqual(options, DEFAULT_POLL_SCHEDULE, 'the config defaults and the schedule\'s own defaults agree');
  });

  it('a default schedule (Math.random) paces within the documented ranges', () => {
    const schedule = new PollSchedule();
    for (let i = 0; i < 200; i++) {
      const queued = schedule.next('QUEUED', null);
      const running = schedule.next('IN_PROGRESS', null);
      assert.ok(queued >= 5_000 && queued < 10_000, String(queued));
      assert.ok(running >= 10_000 && running < 15_000, String(running));
    }
  });

  it('takes every interval from the environment', () => {
    const options = pollScheduleOptions(loadConfig({
      POLL_FIRST_MS: '100',
      POLL_QUEUED_MIN_MS: '200',
      POLL_QUEUED_MAX_MS: '300',
      POLL_IN_PROGRESS_MIN_MS: '400',
      POLL_IN_PROGRESS_MAX_MS: '500',
      POLL_MIN_MS: '50',
      POLL_ESTIMATE_MAX_MS: '650',
      POLL_BACKOFF_BASE_MS: '60',
      POLL_BACKOFF_MAX_MS: '700',
      POLL_RATE_LIMITED_WAIT_MS: '800',
      POLL_UNAVAILABLE_WAIT_MS: '900',
    }));
    assert.deepEqual(options, {
      firstMs: 100,
      queuedMs: [200, 300],
      inProgressMs: [400, 500],
      minMs: 50,
      estimateMaxMs: 650,
      backoffBaseMs: 60,
      backoffMaxMs: 700,
      rateLimitedWaitMs: 800,
      unavailableWaitMs: 900,
    });
  });
});
