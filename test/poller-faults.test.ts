// The poller riding out upstream trouble, end to end over real HTTP: against the sandbox upstream's
// fault switches (429 and 503 bursts with Retry-After, 5xx, timeouts, malformed JSON, dropped
// connections) and against a small scripted upstream written here (errors without Retry-After,
// unknown status words, bodies that are no task, progress going backwards, terminal answers changing).
//
// Every sandbox scenario checks three things:
//   1. every task still completes;
//   2. pacing, request by request: after a healthy answer the next poll of that task comes no sooner
//      than the shortest healthy interval, and after its k-th consecutive failure no sooner than the
//      backoff's lower edge 0.8 * min(cap, base * 2^(k-1)), or the Retry-After (or seed 003's suggested
//      wait) when the upstream asked for longer (see minBackoffMs);
//   3. the number of query requests stays within the bound derived from that backoff (see "The bound").
// Only lower bounds on waits and upper bounds on request counts are asserted: nothing about our speed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { buildApp, type App } from '../src/app.ts';
import { ANONYMOUS } from '../src/auth/principal.ts';
import type { Config } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { matchEndpoint } from '../src/sandbox/endpoints.ts';
import type { SandboxUpstream } from '../src/sandbox/sandbox-upstream.ts';
import type { VideoTaskRow } from '../src/storage/schema.ts';
import type { ProviderAccount } from '../src/upstream/providers.ts';
import { readTaskObject } from '../src/upstream/task-response.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { testConfig } from './support/test-env.ts';

// ---------------------------------------------------------------------------------------------
// Helpers: creating tasks, waiting, and a request log at the sandbox.

/** Seedance 1.0 Pro Fast on toapis: 40-90 s upstream, 0.4-0.9 s at the harness's time scale 0.01. */
const MODEL = 'doubao-seedance-1-0-pro-fast';
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }`;

/** The row id behind a VideoTask global id (Relay: base64 of "VideoTask:<id>"). */
function rowId(globalId: string): string {
  const [type, id] = Buffer.from(globalId, 'base64').toString('utf8').split(':');
  assert.equal(type, 'VideoTask');
  return id!;
}

async function createTasks(h: Harness, count: number, model = MODEL): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, async (_, i) => {
    const { data, errors } = await h.gql(CREATE, { input: { model, prompt: `Fault test ${i}` } });
    assert.equal(errors, undefined);
    assert.deepEqual(data.createVideoTask.userErrors, []);
    return rowId(data.createVideoTask.task.id);
  }));
}

async function eventually(check: () => boolean, what: string | (() => string), timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting until ${typeof what === 'string' ? what : what()}`);
    await sleep(10);
  }
}

const rows = (app: App, ids: readonly string[]) => ids.map((id) => app.tasks.get(id)!);
const describeRows = (app: App, ids: readonly string[]) =>
  rows(app, ids).map((r) => `${r.status} failures=${r.pollFailures} (${r.lastPollError ?? ''})`).join('; ');

async function allEnd(app: App, ids: readonly string[], status: VideoTaskRow['status'] = 'COMPLETED'): Promise<VideoTaskRow[]> {
  await eventually(() => rows(app, ids).every((row) => row.status === status), () => `every task is ${status}: ${describeRows(app, ids)}`);
  return rows(app, ids);
}

interface LoggedQuery {
  upstreamId: string;
  /** Arrival at the upstream (Date.now(), the same clock as the poller's). */
  at: number;
  /** The HTTP status sent, or null when no answer was completed (dropped, or the client gave up). */
  status: number | null;
  /** A 200 whose body is not JSON. */
  malformed: boolean;
}

interface RequestLog {
  queries: LoggedQuery[];
  /** Most query requests in progress at the upstream at once. */
  maxInFlight(): number;
}

/** Logs every query request the sandbox receives, with what it answered; creates are left alone. */
function logQueries(sandbox: SandboxUpstream): RequestLog {
  const queries: LoggedQuery[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const handle = sandbox.handle.bind(sandbox);
  sandbox.handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const match = matchEndpoint(new URL(req.url ?? '/', 'http://sandbox.invalid').pathname);
    if (match?.kind === 'query') {
      const entry: LoggedQuery = { upstreamId: match.taskId, at: Date.now(), status: null, malformed: false };
      queries.push(entry);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      res.end = ((...args: unknown[]) => {
        const body = args[0];
        if ((typeof body === 'string' || Buffer.isBuffer(body)) && res.statusCode === 200) {
          try {
            JSON.parse(body.toString());
          } catch {
            entry.malformed = true;
          }
        }
        return end(...args);
      }) as ServerResponse['end'];
      res.once('close', () => {
        inFlight -= 1;
        if (res.writableFinished) entry.status = res.statusCode;
      });
    }
    return handle(req, res);
  };
  return { queries, maxInFlight: () => maxInFlight };
}

const failed = (q: LoggedQuery) => q.status !== 200 || q.malformed;

// ---------------------------------------------------------------------------------------------
// The bound. With b = POLL_BACKOFF_BASE_MS, c = POLL_BACKOFF_MAX_MS and jitter at most -20%, the
// poller waits at least w(k) = max(floor, 0.8 * min(c, b * 2^(k-1))) after a task's k-th consecutive
// failure, where floor is the Retry-After (or seed 003's suggested wait for a 429/503 without one).
// After a healthy answer it waits at least g = min(POLL_QUEUED_MIN_MS, POLL_IN_PROGRESS_MIN_MS)
// (toapis models report no estimated_time, so POLL_MIN_MS never shortens it), and the first poll
// comes POLL_FIRST_MS (f0) after submission.
//
// Failures: a run of n consecutive failed polls of one task all arriving inside a fault window of
// W ms needs w(1) + ... + w(n-1) <= W, so n <= N(W) = the largest n with that sum within W. With
// the harness's b = 50 ms that is 5 for W = 1 s (waits 40, 80, 160, 320 ms), where polling on at
// the healthy pace would fail W / g = 25 times.
// Healthy polls: all of a task's polls fall between its creation and the write that completed it
// (D = updatedAt - createdAt); that span holds f0, the waits after its F failures (at least
// w(1) + ... + w(F), each run counted from 1), and a gap >= g after every healthy poll but the
// last, so healthy <= 1 + floor((D - f0 - sum w) / g).
// Queries of one task = F + healthy <= N(W) + 1 + floor(D / g).

function minBackoffMs(config: Config, k: number, floorMs: number): number {
  return Math.max(floorMs, 0.8 * Math.min(config.POLL_BACKOFF_MAX_MS, config.POLL_BACKOFF_BASE_MS * 2 ** (k - 1)));
}

/** N(W): the most consecutive failures one task can have inside a window of `windowMs`. */
function maxFailuresInWindow(config: Config, windowMs: number, floorMs = 0): number {
  let n = 1;
  let elapsed = 0;
  // Whole milliseconds, as the poller stores next_poll_at.
  while (elapsed + Math.floor(minBackoffMs(config, n, floorMs)) <= windowMs) {
    elapsed += Math.floor(minBackoffMs(config, n, floorMs));
    n += 1;
  }
  return n;
}

/** g for a toapis model (no estimated_time). */
function healthyGapMs(config: Config): number {
  return Math.min(config.POLL_QUEUED_MIN_MS, config.POLL_IN_PROGRESS_MIN_MS);
}

function pollsOf(log: RequestLog, task: VideoTaskRow): LoggedQuery[] {
  return log.queries.filter((q) => q.upstreamId === task.upstreamTaskId).sort((a, b) => a.at - b.at);
}

/** The shortest waits the backoff owes after each failed poll of the task: w(k) per run, summed. */
function owedWaitsMs(config: Config, polls: readonly LoggedQuery[], floorMs: (q: LoggedQuery) => number): number {
  let owed = 0;
  let consecutive = 0;
  for (const poll of polls) {
    consecutive = failed(poll) ? consecutive + 1 : 0;
    if (consecutive > 0) owed += minBackoffMs(config, consecutive, floorMs(poll));
  }
  return owed;
}

/**
 * Checks every gap between two consecutive polls of each task against the minimum wait (see above).
 * `floorMs` gives the wait the upstream asked for after a failed answer (0 when none). Gaps are
 * compared in whole milliseconds: the poller stores next_poll_at as an integer.
 */
function assertPacing(config: Config, log: RequestLog, tasks: readonly VideoTaskRow[], floorMs: (q: LoggedQuery) => number): void {
  for (const task of tasks) {
    const polls = pollsOf(log, task);
    assert.ok(polls.length > 0, `task ${task.id} was polled`);
    assert.ok(polls[0]!.at - task.createdAt.getTime() >= config.POLL_FIRST_MS - 1, 'first poll no sooner than POLL_FIRST_MS');
    let consecutive = 0;
    for (let i = 1; i < polls.length; i++) {
      const previous = polls[i - 1]!;
      const gap = polls[i]!.at - previous.at;
      if (failed(previous)) {
        consecutive += 1;
        const wait = Math.floor(minBackoffMs(config, consecutive, floorMs(previous)));
        assert.ok(gap >= wait, `task ${task.id}: poll ${i} came ${gap} ms after failure #${consecutive} (${previous.status}); backoff requires >= ${wait} ms`);
      } else {
        consecutive = 0;
        assert.ok(gap >= healthyGapMs(config), `task ${task.id}: poll ${i} came ${gap} ms after a healthy answer`);
      }
    }
  }
}

/**
 * Checks, per task, failures <= `failureBound` and healthy polls <= 1 + (D - f0 - owed waits) / g,
 * hence queries <= failureBound + 1 + D / g; and the sandbox's own count against the sum of those.
 */
function assertQueryBound(h: Harness, log: RequestLog, tasks: readonly VideoTaskRow[], failureBound: number, floorMs: (q: LoggedQuery) => number): void {
  const { config } = h;
  let total = 0;
  for (const task of tasks) {
    const polls = pollsOf(log, task);
    const failures = polls.filter(failed).length;
    assert.ok(failures <= failureBound, `task ${task.id}: ${failures} failed polls, bound ${failureBound}`);
    const lifetime = task.updatedAt.getTime() - task.createdAt.getTime();
    const healthyBound = 1 + Math.floor((lifetime - config.POLL_FIRST_MS - owedWaitsMs(config, polls, floorMs)) / healthyGapMs(config));
    assert.ok(polls.length - failures <= healthyBound, `task ${task.id}: ${polls.length - failures} healthy polls in ${lifetime} ms, bound ${healthyBound}`);
    const bound = failureBound + 1 + Math.floor(lifetime / healthyGapMs(config));
    assert.ok(polls.length <= bound, `task ${task.id}: ${polls.length} queries, bound ${bound}`);
    total += bound;
  }
  const queries = h.sandbox!.stats().requests.query;
  assert.equal(queries, log.queries.length, 'the log saw every query the sandbox counted');
  assert.ok(queries <= total, `${queries} queries in all, bound ${total}`);
}

/**
 * The sandbox's clock, which a test can hold still: the sandbox's tasks do not advance while it is
 * held, so none can finish before or during a fault window however slowly the machine runs.
 */
class HeldClock {
  private offset = 0;
  private heldAt: number | null = null;
  readonly now = (): number => (this.heldAt ?? Date.now()) - this.offset;
  hold(): void {
    if (this.heldAt === null) this.heldAt = Date.now();
  }
  release(): void {
    if (this.heldAt === null) return;
    this.offset += Date.now() - this.heldAt;
    this.heldAt = null;
  }
}

/**
 * Runs `fault` over a window: `setUp` switches it on, `recorded` is awaited (the failures show in
 * the rows), the window is held for at least `minWindowMs`, then `tearDown` switches it off.
 * Returns the window's real length: every failed request arrived inside it.
 */
async function faultWindow(setUp: () => void, tearDown: () => void, minWindowMs: number, recorded: () => boolean, what: () => string): Promise<number> {
  const start = Date.now();
  setUp();
  await eventually(recorded, what);
  const left = start + minWindowMs - Date.now();
  if (left > 0) await sleep(left);
  tearDown();
  return Date.now() - start;
}

// ---------------------------------------------------------------------------------------------
// A scripted upstream (the toapis `videos` family: POST/GET /v1/videos/generations[/{id}]) for what
// the sandbox does not do: answers chosen per poll.

interface StubAnswer {
  http?: number;
  /** A JSON body, or a string sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** What the n-th query (0-based) of the task with this upstream id is answered with. */
type Script = (n: number, id: string) => StubAnswer;

interface StubQuery { upstreamId: string; at: number; answer: StubAnswer }

const CREATE_PATH = '/v1/videos/generations';

/** A toapis task object (seed 000). */
function toapisTask(id: string, status: string, progress: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, object: 'generation.task', model: MODEL, status, progress, created_at: Math.floor(Date.now() / 1000), metadata: {}, ...extra };
}

const completed = (id: string) => toapisTask(id, 'completed', 100, {
  completed_at: Math.floor(Date.now() / 1000),
  expires_at: Math.floor(Date.now() / 1000) + 86_400,
  result: { type: 'video', url: `https://cdn.example.com/${id}.mp4` },
});

class StubUpstream {
  readonly queries: StubQuery[] = [];
  /** Scripts for the next tasks created, in order; later ones get `fallback`. */
  readonly scripts: Script[] = [];
  private readonly byId = new Map<string, Script>();
  private created = 0;
  private server!: Server;
  url = '';

  constructor(private readonly fallback: Script = (n) => ({ body: n < 2 ? 'in_progress' : 'completed' })) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  queriesOf(upstreamId: string): StubQuery[] {
    return this.queries.filter((q) => q.upstreamId === upstreamId);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      if (req.method === 'POST' && path === CREATE_PATH) {
        const id = `task_vid_stub${String(++this.created).padStart(4, '0')}`;
        this.byId.set(id, this.scripts.shift() ?? this.fallback);
        return this.send(res, { body: toapisTask(id, 'queued', 0) }, id);
      }
      const id = req.method === 'GET' && path.startsWith(CREATE_PATH + '/') ? decodeURIComponent(path.slice(CREATE_PATH.length + 1)) : null;
      const script = id ? this.byId.get(id) : undefined;
      if (!id || !script) return this.send(res, { http: 404, body: { error: { code: 404, message: 'Task not found', type: 'not_found_error' } } }, id ?? '');
      const answer = script(this.queriesOf(id).length, id);
      this.queries.push({ upstreamId: id, at: Date.now(), answer });
      this.send(res, answer, id);
    });
  }

  private send(res: ServerResponse, answer: StubAnswer, id: string): void {
    // A bare status word stands for a task object in that status.
    const body = typeof answer.body === 'string' && /^[a-z_]+$/.test(answer.body)
      ? (answer.body === 'completed' ? completed(id) : toapisTask(id, answer.body, 50))
      : answer.body;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(answer.http ?? 200, { 'content-type': 'application/json', ...answer.headers }).end(text);
  }
}

/** The app as harness.ts builds it (same compressed pace), with its provider pointed at a stub. */
async function startWithStub(stub: StubUpstream, env: Record<string, string> = {}): Promise<{ app: App; config: Config; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-poller-test-'));
  const config = testConfig(dir, {
    // An estimate may set a wait beyond the pace (40-80 ms), up to this (the default is 30 s).
    POLL_ESTIMATE_MAX_MS: '1500',
    // Generous: a slow machine must not turn a create into an unconfirmed submission.
    UPSTREAM_TIMEOUT_MS: '10000',
    POLL_LEASE_MS: '12000',
    ...env,
  });
  const accounts: ProviderAccount[] = [{ name: 'stub', kind: 'toapis', baseUrl: stub.url, apiKey: 'stub-key' }];
  const app = buildApp({ config, logger: createLogger('silent'), accounts });
  await app.start(0, '127.0.0.1');
  return {
    app,
    config,
    async stop() {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function createOn(app: App, prompt = 'A scripted task'): Promise<VideoTaskRow> {
  const { task, userErrors } = await app.tasks.create(ANONYMOUS, { model: MODEL, prompt });
  assert.deepEqual(userErrors, []);
  return task!;
}

// ---------------------------------------------------------------------------------------------

// The two groups run side by side (each sandbox scenario has its own service and sandbox); the
// scripted group's tests share one stub and run in order.
describe('poller', { concurrency: true }, () => {
  // Four at a time: enough to keep the file short, few enough not to starve a small machine.
  describe('against the sandbox upstream\'s faults', { concurrency: 4 }, () => {
    const TASKS = 5;
    // Generous upstream timeouts, so that a slow machine (or the scenarios running alongside) cannot
    // turn a create into an unconfirmed submission; the timeout scenario sets its own.
    const PATIENT = { UPSTREAM_TIMEOUT_MS: '10000', POLL_LEASE_MS: '12000' };
    /** A harness whose sandbox runs on a clock the test holds still until its fault window is over. */
    const startHeld = async (env: Record<string, string> = PATIENT) => {
      const clock = new HeldClock();
      clock.hold();
      return { clock, h: await startHarness({ env, sandbox: { now: clock.now } }) };
    };
    const noneFinished = (h: Harness, ids: readonly string[]) =>
      assert.ok(rows(h.app, ids).every((r) => r.completedAt === null), `no task finished before the window: ${describeRows(h.app, ids)}`);

    for (const status of [429, 503] as const) {
      it(`a burst of ${status}s with Retry-After: 1 on queries: no task is asked again within 1 s, and every task completes`, async () => {
        const h = await startHarness({ env: PATIENT });
        try {
          const log = logQueries(h.sandbox!);
          // Twice as many errors as tasks: most tasks meet two in a row.
          const burst = 2 * TASKS;
          h.sandbox!.queueErrors('query', status, burst, 1);
          const ids = await createTasks(h, TASKS);
          const done = await allEnd(h.app, ids);
          assert.equal(h.sandbox!.stats().byStatus[String(status)], burst, 'the whole burst was served');
          // Retry-After: 1 is the floor after each of them, whatever the backoff says.
          const retryAfter = (q: LoggedQuery) => (q.status === status ? 1_000 : 0);
          assertPacing(h.config, log, done, retryAfter);
          for (const task of done) {
            const polls = pollsOf(log, task).sort((a, b) => a.at - b.at);
            for (const [i, poll] of polls.entries()) {
              if (poll.status !== status) continue;
              const next = polls[i + 1];
              assert.ok(next, 'a task that met a burst error was asked again');
              assert.ok(next.at - poll.at >= 1_000, `asked again ${next.at - poll.at} ms after a ${status} with Retry-After: 1`);
            }
          }
          // Failures: the burst is shared, so a task meets at most all of it; each meeting costs >= 1 s.
          assertQueryBound(h, log, done, burst, retryAfter);
          const failures = done.map((task) => pollsOf(log, task).filter(failed).length);
          assert.equal(failures.reduce((a, b) => a + b, 0), burst);
          for (const task of done) {
            const f = pollsOf(log, task).filter(failed).length;
            // Each failure holds the task back >= 1 s, so its lifetime covers them all.
            assert.ok(task.updatedAt.getTime() - task.createdAt.getTime() >= f * 1_000);
            assert.equal(task.pollFailures, 0, 'the failure count resets after a healthy answer');
            assert.equal(task.lastPollError, null);
          }
        } finally {
          await h.stop();
        }
      });
    }

    it('5xx on every query for a window: exponential backoff, the failures are recorded, every task completes', async () => {
      const { clock, h } = await startHeld();
      try {
        const log = logQueries(h.sandbox!);
        const ids = await createTasks(h, TASKS);
        noneFinished(h, ids);
        // 503 is left out: the sandbox sends it with Retry-After: 30 (seed 003's suggestion), tried above.
        const windowMs = await faultWindow(
          () => h.sandbox!.setFaults({ errorRate: { query: 1 }, errorStatuses: [500, 502, 504] }),
          () => {
            h.sandbox!.setFaults({ errorRate: { query: 0 } });
            clock.release();
          },
          1_000,
          () => rows(h.app, ids).every((r) => r.pollFailures >= 2 && /upstream answered 50[024]/.test(r.lastPollError ?? '')),
          () => `every task has recorded two failed polls: ${describeRows(h.app, ids)}`,
        );
        const done = await allEnd(h.app, ids);
        assertPacing(h.config, log, done, () => 0);
        const bound = maxFailuresInWindow(h.config, windowMs);
        assertQueryBound(h, log, done, bound, () => 0);
      } finally {
        await h.stop();
      }
    });

    it('timeouts (latency above UPSTREAM_TIMEOUT_MS) for a window, then normal: every task completes', async () => {
      // The harness's 2 s: creates share the client and its timeout, and must not time out on a slow
      // machine. Polls meet 3 s of latency until every task has timed out once.
      const { clock, h } = await startHeld({ UPSTREAM_TIMEOUT_MS: '2000', POLL_LEASE_MS: '4000' });
      try {
        const log = logQueries(h.sandbox!);
        const ids = await createTasks(h, TASKS);
        noneFinished(h, ids);
        const windowMs = await faultWindow(
          () => h.sandbox!.setFaults({ latencyMs: 3_000 }),
          () => {
            h.sandbox!.setFaults({ latencyMs: 0 });
            clock.release();
          },
          1_000,
          () => rows(h.app, ids).every((r) => r.pollFailures >= 1 && /timed out/.test(r.lastPollError ?? '')),
          () => `every task has recorded a timed-out poll: ${describeRows(h.app, ids)}`,
        );
        const done = await allEnd(h.app, ids);
        assert.ok(log.queries.some((q) => q.status === null), 'some queries were abandoned by the client');
        assertPacing(h.config, log, done, () => 0);
        // A timed-out poll also spends UPSTREAM_TIMEOUT_MS before its backoff starts: N(W) is generous here.
        const bound = maxFailuresInWindow(h.config, windowMs);
        assertQueryBound(h, log, done, bound, () => 0);
      } finally {
        await h.stop();
      }
    });

    it('malformed JSON (a 200 cut mid-object) for a window: recorded on the task, retried, every task completes', async () => {
      const { clock, h } = await startHeld();
      try {
        const log = logQueries(h.sandbox!);
        const ids = await createTasks(h, TASKS);
        noneFinished(h, ids);
        const windowMs = await faultWindow(
          () => h.sandbox!.setFaults({ malformedRate: 1 }),
          () => {
            h.sandbox!.setFaults({ malformedRate: 0 });
            clock.release();
          },
          600,
          () => rows(h.app, ids).every((r) => r.pollFailures >= 1 && /answer is not JSON/.test(r.lastPollError ?? '')),
          () => `every task has recorded the malformed answer: ${describeRows(h.app, ids)}`,
        );
        const done = await allEnd(h.app, ids);
        assert.ok(log.queries.filter((q) => q.malformed).length >= TASKS);
        assertPacing(h.config, log, done, () => 0);
        const bound = maxFailuresInWindow(h.config, windowMs);
        assertQueryBound(h, log, done, bound, () => 0);
        // The loop kept going for everyone: each task was polled again after its malformed answer.
        for (const task of done) {
          const polls = pollsOf(log, task);
          assert.ok(polls.findIndex((q) => q.malformed) < polls.length - 1);
        }
      } finally {
        await h.stop();
      }
    });

    it('dropped connections on queries for a window: recorded, retried, every task completes', async () => {
      const { clock, h } = await startHeld();
      try {
        const log = logQueries(h.sandbox!);
        const ids = await createTasks(h, TASKS);
        noneFinished(h, ids);
        const windowMs = await faultWindow(
          () => h.sandbox!.setFaults({ dropRate: 1 }),
          () => {
            h.sandbox!.setFaults({ dropRate: 0 });
            clock.release();
          },
          600,
          () => rows(h.app, ids).every((r) => r.pollFailures >= 1 && /failed/.test(r.lastPollError ?? '')),
          () => `every task has recorded a dropped connection: ${describeRows(h.app, ids)}`,
        );
        const done = await allEnd(h.app, ids);
        assert.ok(log.queries.filter((q) => q.status === null).length >= TASKS);
        // No hidden retries either: a drop is followed by the backoff, not by an immediate second request.
        assertPacing(h.config, log, done, () => 0);
        const bound = maxFailuresInWindow(h.config, windowMs);
        assertQueryBound(h, log, done, bound, () => 0);
      } finally {
        await h.stop();
      }
    });

    it('errors that will not heal (401, 403, 404 of the task) end it FAILED with the upstream\'s error, and polling stops', async () => {
      const h = await startHarness({ env: PATIENT });
      try {
        const expected = {
          401: { type: 'authentication_error', message: 'Invalid or expired token' },
          403: { type: 'permission_error', message: 'Access denied' },
          404: { type: 'not_found_error', message: 'Resource not found' },
        } as const;
        for (const [status, error] of Object.entries(expected)) {
          // Queued before the task exists: its first poll is the one that meets it.
          h.sandbox!.queueErrors('query', Number(status), 1);
          const [id] = await createTasks(h, 1);
          const [task] = await allEnd(h.app, [id!], 'FAILED');
          assert.equal(task!.errorCode, status, 'the upstream\'s own code');
          assert.equal(task!.errorType, error.type);
          assert.equal(task!.errorMessage, error.message);
          assert.equal(task!.nextPollAt, null);
          const { data } = await h.gql(`query($id: ID!) { node(id: $id) { ... on VideoTask { status error { code type message } } } }`,
            { id: Buffer.from(`VideoTask:${id}`).toString('base64') });
          assert.deepEqual(data.node, { status: 'FAILED', error: { code: status, ...error } });
        }
        const queries = h.sandbox!.stats().requests.query;
        assert.equal(queries, 3, 'one query each, no retry');
        await sleep(300);
        assert.equal(h.sandbox!.stats().requests.query, queries, 'no poll after the task ended');
      } finally {
        await h.stop();
      }
    });

    it('a task past TASK_DEADLINE_MS ends FAILED with code TIMEOUT, and polling stops', async () => {
      // Time scale 1: the sandbox takes 40-90 s, far past the 1 s deadline.
      const h = await startHarness({ env: { ...PATIENT, TASK_DEADLINE_MS: '1000' }, sandbox: { timeScale: 1 } });
      try {
        const ids = await createTasks(h, 2);
        const done = await allEnd(h.app, ids, 'FAILED');
        for (const task of done) {
          assert.equal(task.errorCode, 'TIMEOUT');
          assert.equal(task.errorType, 'deadline_exceeded');
          assert.ok(task.completedAt!.getTime() - task.createdAt.getTime() >= 1_000, 'not before the deadline');
          assert.equal(task.nextPollAt, null);
        }
        const queries = h.sandbox!.stats().requests.query;
        await sleep(300);
        assert.equal(h.sandbox!.stats().requests.query, queries, 'no poll after the deadline');
      } finally {
        await h.stop();
      }
    });

    it('polls at most POLL_CONCURRENCY_PER_PROVIDER tasks of one provider at once', async () => {
      const h = await startHarness({ env: { ...PATIENT, POLL_CONCURRENCY_PER_PROVIDER: '2' } });
      try {
        const log = logQueries(h.sandbox!);
        const ids = await createTasks(h, 6);
        // Slow answers keep polls in flight, so that more than two tasks are due at once.
        h.sandbox!.setFaults({ latencyMs: 100 });
        await allEnd(h.app, ids);
        assert.equal(log.maxInFlight(), 2, 'two polls overlapped, never more');
        assert.ok(log.queries.length >= 6);
      } finally {
        await h.stop();
      }
    });
  });

  describe('against a scripted upstream', { concurrency: false }, () => {
    const stub = new StubUpstream();
    let app: App;
    let config: Config;
    let stop: (() => Promise<void>) | undefined;
    before(async () => {
      await stub.start();
      ({ app, config, stop } = await startWithStub(stub));
    });
    after(async () => {
      try {
        await stop?.();
      } finally {
        await stub.close();
      }
    });

    it('an unknown status word is recorded, the task stays where it was, and polling goes on', async () => {
      // One task says "rendering" forever; another says it three times, then moves on and completes.
      stub.scripts.push(() => ({ body: 'rendering' }));
      stub.scripts.push((n) => ({ body: n === 0 ? 'queued' : n <= 3 ? 'rendering' : n === 4 ? 'in_progress' : 'completed' }));
      const stuck = await createOn(app, 'stuck');
      const moving = await createOn(app, 'moving');
      await allEnd(app, [moving.id]);
      const seen = stub.queriesOf(stuck.upstreamTaskId!).length;
      await eventually(() => stub.queriesOf(stuck.upstreamTaskId!).length >= seen + 3, 'the stuck task is still being polled');
      const row = app.tasks.get(stuck.id)!;
      assert.equal(row.status, 'QUEUED', 'kept as it was');
      assert.equal(row.upstreamStatus, 'rendering', 'the word is recorded');
      assert.equal(row.lastPollError, 'unknown upstream status "rendering"');
      const done = app.tasks.get(moving.id)!;
      assert.equal(done.upstreamStatus, 'completed');
      assert.equal(done.lastPollError, null, 'a known word clears the record');
      app.tasks.cancel(ANONYMOUS, stuck.id);
    });

    it('a 200 whose body is not a task (HTML, no id, no status, an array) is recorded and retried', async () => {
      const bodies: unknown[] = ['<html>502 Bad Gateway</html>', { status: 'queued' }, { id: 'x' }, []];
      stub.scripts.push((n) => (n < bodies.length ? { body: bodies[n] } : { body: n < bodies.length + 1 ? 'in_progress' : 'completed' }));
      const task = await createOn(app);
      // What the row says after each failed poll, as it goes.
      const errors = new Set<string>();
      await eventually(() => {
        const row = app.tasks.get(task.id)!;
        if (row.lastPollError) errors.add(row.lastPollError.replace(/^GET \S+: /, ''));
        return row.status === 'COMPLETED';
      }, 'the task completes');
      const done = app.tasks.get(task.id);
      assert.ok([...errors].some((e) => /not JSON/.test(e)), [...errors].join(' | '));
      assert.ok([...errors].some((e) => /no id|no status|not a JSON object/.test(e)), [...errors].join(' | '));
      assert.equal(done!.pollFailures, 0);
      // Each of the four was followed by a backoff, not an immediate retry.
      const polls = stub.queriesOf(task.upstreamTaskId!);
      for (let k = 1; k <= bodies.length; k++) {
        const gap = polls[k]!.at - polls[k - 1]!.at;
        assert.ok(gap >= Math.floor(minBackoffMs(config, k, 0)), `gap after failure ${k}: ${gap} ms`);
      }
    });

    for (const [status, floorKey] of [[429, 'POLL_RATE_LIMITED_WAIT_MS'], [503, 'POLL_UNAVAILABLE_WAIT_MS']] as const) {
      it(`a ${status} without Retry-After waits at least seed 003's suggested wait (${floorKey}), then the task completes`, async () => {
        const error = { error: { code: status, message: 'busy', type: status === 429 ? 'rate_limit_error' : 'service_unavailable_error' } };
        stub.scripts.push((n) => (n < 2 ? { http: status, body: error } : { body: n < 3 ? 'in_progress' : 'completed' }));
        const task = await createOn(app);
        await allEnd(app, [task.id]);
        const polls = stub.queriesOf(task.upstreamTaskId!);
        const floor = config[floorKey];
        for (const k of [1, 2]) {
          const gap = polls[k]!.at - polls[k - 1]!.at;
          assert.ok(gap >= floor, `gap after ${status} #${k}: ${gap} ms, suggested wait ${floor} ms`);
        }
      });
    }

    it('an estimated_time sets the next poll just after it runs out, beyond the pace, and at most POLL_ESTIMATE_MAX_MS ahead', async () => {
      const estimating = (id: string, seconds: number) =>
        toapisTask(id, 'in_progress', 30, { task_info: { can_cancel: true, estimated_time: seconds, video_duration: 5 } });
      // Both are done when next asked: one says 1 s is left, the other an hour.
      stub.scripts.push((n, id) => ({ body: n === 0 ? estimating(id, 1) : 'completed' }));
      stub.scripts.push((n, id) => ({ body: n === 0 ? estimating(id, 3_600) : 'completed' }));
      const near = await createOn(app, 'one second left');
      const far = await createOn(app, 'an hour left');
      await eventually(() => app.tasks.get(far.id)!.estimatedTimeSeconds === 3_600, 'the far task\'s estimate is recorded');
      const row = app.tasks.get(far.id)!;
      const ahead = row.nextPollAt!.getTime() - row.updatedAt.getTime();
      const cap = config.POLL_ESTIMATE_MAX_MS;
      assert.ok(ahead <= cap && ahead >= 0.8 * cap - 50, `next poll ${ahead} ms ahead, cap ${cap} ms jittered down by up to 20%`);
      assert.ok(ahead > config.POLL_IN_PROGRESS_MAX_MS, 'beyond the pace');
      await allEnd(app, [near.id, far.id]);
      const polls = stub.queriesOf(near.upstreamTaskId!);
      assert.equal(polls.length, 2, 'asked once more, when the estimate ran out, not at the pace in between');
      assert.ok(polls[1]!.at - polls[0]!.at >= 1_000, `${polls[1]!.at - polls[0]!.at} ms: not before the estimate ran out`);
      assert.equal(stub.queriesOf(far.upstreamTaskId!).length, 2);
    });

    it('a 429 with an HTTP-date Retry-After is honoured too', async () => {
      const error = { error: { code: 429, message: 'slow down', type: 'rate_limit_error' } };
      // Two seconds ahead, at whole-second precision: the wait is at least one second.
      stub.scripts.push((n) => (n === 0
        ? { http: 429, body: error, headers: { 'retry-after': new Date(Date.now() + 2_000).toUTCString() } }
        : { body: 'completed' }));
      const task = await createOn(app);
      await allEnd(app, [task.id]);
      const polls = stub.queriesOf(task.upstreamTaskId!);
      assert.ok(polls[1]!.at - polls[0]!.at >= 1_000, `${polls[1]!.at - polls[0]!.at} ms`);
    });

    it('progress never goes backwards, and a terminal status never changes, whatever the upstream says later', async () => {
      stub.scripts.push((n, id) => ({ body: [toapisTask(id, 'in_progress', 60), toapisTask(id, 'in_progress', 40), completed(id)][n] ?? 'in_progress' }));
      const task = await createOn(app);
      const upstreamId = task.upstreamTaskId!;
      const events: VideoTaskRow[] = [];
      const watching = (async () => {
        for await (const row of app.tasks.watch(ANONYMOUS, task.id)) events.push(row);
      })();
      await allEnd(app, [task.id]);
      await watching;
      const polls = stub.queriesOf(upstreamId);
      assert.ok(polls.length >= 3, 'the 40 after the 60 was answered');
      const progress = events.map((e) => e.progress);
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b), `progress never went backwards: ${progress.join(',')}`);
      assert.ok(progress.includes(60));
      assert.ok(!progress.includes(40));
      // Once COMPLETED, always COMPLETED (later events only report the result's archiving).
      const statuses = events.map((e) => e.status);
      const completedAt = statuses.indexOf('COMPLETED');
      assert.ok(completedAt >= 0, statuses.join(','));
      assert.ok(statuses.slice(completedAt).every((s) => s === 'COMPLETED'), statuses.join(','));
      assert.ok(events.slice(completedAt).every((e) => e.progress === 100));

      // The watch ended once the task was settled (finished, its result archived or given up), so the
      // row stays still from here on. The poller leaves a finished task alone...
      const asked = stub.queriesOf(upstreamId).length;
      await sleep(300);
      assert.equal(stub.queriesOf(upstreamId).length, asked, 'no poll after COMPLETED');
      // ...and a late, older answer through the same update path changes nothing.
      const before = app.tasks.get(task.id)!;
      const published: VideoTaskRow[] = [];
      const listeners = app.events.listenerCount();
      const all = app.events.subscribeAll();
      const listening = (async () => { for await (const row of all) published.push(row); })();
      await eventually(() => app.events.listenerCount() > listeners, 'listening to every task');
      for (const late of [toapisTask(upstreamId, 'in_progress', 30), toapisTask(upstreamId, 'failed', 100, { error: { message: 'late' } }), toapisTask(upstreamId, 'queued', 0)]) {
        app.tasks.applyUpstream(task.id, readTaskObject(late), 'poll');
      }
      const afterwards = app.tasks.get(task.id)!;
      assert.equal(afterwards.status, 'COMPLETED');
      assert.equal(afterwards.progress, 100);
      assert.equal(afterwards.version, before.version);
      assert.equal(afterwards.videoUrl, before.videoUrl);
      assert.equal(afterwards.errorMessage, null);
      await all.return?.();
      await listening;
      assert.deepEqual(published, [], 'nothing published');
    });

    it('a FAILED task stays FAILED when the upstream later says completed', async () => {
      stub.scripts.push((_n, id) => ({ body: toapisTask(id, 'failed', 0, { error: { code: 'content_policy', message: 'refused', type: 'invalid_request_error' } }) }));
      const task = await createOn(app);
      const [failedTask] = await allEnd(app, [task.id], 'FAILED');
      assert.equal(failedTask!.errorCode, 'content_policy');
      assert.equal(failedTask!.errorMessage, 'refused');
      app.tasks.applyUpstream(task.id, readTaskObject(completed(task.upstreamTaskId!)), 'poll');
      const row = app.tasks.get(task.id)!;
      assert.equal(row.status, 'FAILED');
      assert.equal(row.videoUrl, null);
      assert.equal(row.version, failedTask!.version);
    });
  });
});
