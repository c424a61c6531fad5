// Seed 003's completion callbacks, end to end: with PUBLIC_URL set, submissions of the odkkk model
// carry a callback_url with an unguessable per-task token; the sandbox upstream calls it back as the
// seed describes; a callback is authenticated by that token and applied through the same update path
// as a poll (idempotent, out-of-order safe); and the poller still completes a task whose callbacks
// never arrive.
//
// PUBLIC_URL must name the running service, so the service is built here (as test/support/harness.ts
// does) on a port chosen before it starts, with its sandbox upstream on a port of its own.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { buildApp, type App } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { FAIL_MARKER } from '../src/sandbox/sandbox-task.ts';
import { startSandboxServer, type SandboxOptions, type SandboxUpstream } from '../src/sandbox/sandbox-upstream.ts';
import type { VideoTaskRow } from '../src/storage/schema.ts';
import { isTerminal } from '../src/tasks/status.ts';
import { SANDBOX_API_KEY, SANDBOX_MOUNTS, sandboxAccounts } from '../src/upstream/providers.ts';
import { startHarness } from './support/harness.ts';
import { COMPRESSED_PACE } from './support/test-env.ts';

const ODKKK = 'doubao-seedance-1.0-pro-fast';
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }`;

/** The harness's compressed pace (test/support/harness.ts), with patient upstream timeouts. */
const PACE: Record<string, string> = {
  ...COMPRESSED_PACE,
  // Generous: a slow machine must not turn a create into an unconfirmed submission.
  UPSTREAM_TIMEOUT_MS: '10000',
  POLL_LEASE_MS: '12000',
  SQLITE_BUSY_TIMEOUT_MS: '1000',
};

/** The poller effectively off: no task is polled within a minute of its submission. */
const POLLER_OFF: Record<string, string> = {
  POLL_FIRST_MS: '60000',
  POLL_QUEUED_MIN_MS: '60000',
  POLL_QUEUED_MAX_MS: '60000',
  POLL_IN_PROGRESS_MIN_MS: '60000',
  POLL_IN_PROGRESS_MAX_MS: '60000',
};

interface Service {
  /** The service's own base URL. */
  url: string;
  /** What PUBLIC_URL was set to: by default `url`. */
  publicUrl: string;
  /** The sandbox upstream's base URL. */
  sandboxUrl: string;
  app: App;
  config: Config;
  sandbox: SandboxUpstream;
  create(model: string, prompt?: string): Promise<string>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface ServiceOptions {
  env?: Record<string, string>;
  /** PUBLIC_URL from the service's own URL; by default that URL itself. */
  publicUrl?: (serviceUrl: string) => string;
  sandbox?: Partial<SandboxOptions>;
}

/**
 * The app with PUBLIC_URL = its own address, its providers on a separate sandbox that may call back
 * to loopback over plain HTTP. Another process may take the chosen port between the probe and the
 * listen: then it tries again with another one.
 */
async function startService(options: ServiceOptions = {}): Promise<Service> {
  const sandboxServer = await startSandboxServer({
    apiKey: SANDBOX_API_KEY, timeScale: 0.01, port: 0, allowInternalCallbacks: true, ...options.sandbox,
  });
  try {
    for (let attempt = 1; ; attempt++) {
      const started = await startAppOnFreePort(options, sandboxServer);
      if (started === 'port taken' && attempt < 5) continue;
      if (started === 'port taken') throw new Error('no free port found');
      return started;
    }
  } catch (error) {
    // Nothing may stay open, or the test process would never end.
    await sandboxServer.close();
    throw error;
  }
}

async function startAppOnFreePort(options: ServiceOptions, sandboxServer: Awaited<ReturnType<typeof startSandboxServer>>): Promise<Service | 'port taken'> {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-callback-test-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const publicUrl = options.publicUrl ? options.publicUrl(url) : url;
  let app: App | null = null;
  try {
    const config = loadConfig({
      PORT: String(port),
      DATABASE_URL: join(dir, 'tasks.sqlite'),
      MEDIA_DIR: join(dir, 'media'),
      LOG_LEVEL: 'silent',
      PUBLIC_URL: publicUrl,
      ...PACE,
      ...options.env,
    });
    app = buildApp({ config, logger: createLogger('silent'), accounts: sandboxAccounts(sandboxServer.url, { allowsInternalCallbacks: true }) });
    await app.start(port, '127.0.0.1');
    const started = app;
    return {
      url,
      publicUrl,
      sandboxUrl: sandboxServer.url,
      app: started,
      config,
      sandbox: sandboxServer.sandbox,
      async create(model, prompt = 'A cat playing piano') {
        const response = await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
          body: JSON.stringify({ query: CREATE, variables: { input: { model, prompt } } }),
        });
        const { data, errors } = await response.json() as { data: any; errors?: unknown };
        assert.equal(errors, undefined);
        assert.deepEqual(data.createVideoTask.userErrors, []);
        return Buffer.from(data.createVideoTask.task.id, 'base64').toString('utf8').replace(/^VideoTask:/, '');
      },
      async stop() {
        await started.stop();
        await sandboxServer.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await app?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    if ((error as { code?: string }).code === 'EADDRINUSE') return 'port taken';
    throw error;
  }
}

async function eventually(check: () => boolean, what: string | (() => string), timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting until ${typeof what === 'string' ? what : what()}`);
    await sleep(10);
  }
}

/** The callback URL the sandbox was given for a task (its submission body), split into its parts. */
function callbackOf(service: Service, task: VideoTaskRow): { url: string; token: string } {
  const submitted = service.sandbox.tasks().find((t) => t.id === task.upstreamTaskId);
  assert.ok(submitted, 'the sandbox has the task');
  const url = submitted.body.callback_url;
  assert.equal(typeof url, 'string');
  const token = (url as string).split('/').at(-1)!;
  return { url: url as string, token };
}

/** The sandbox's callback attempts for a task (seed 003: the first, then up to 3 retries). */
function callbackAttempts(service: Service, task: VideoTaskRow): { taskId: string; attempt: number; status: number | null }[] {
  const all = service.sandbox.report().callbacks as { taskId: string; attempt: number; status: number | null }[];
  return all.filter((a) => a.taskId === task.upstreamTaskId);
}

/** Every change published for one task, from now on. */
async function recordEvents(app: App, taskId: string): Promise<{ seen: VideoTaskRow[]; stop(): Promise<void> }> {
  const seen: VideoTaskRow[] = [];
  const listeners = app.events.listenerCount();
  const events = app.events.subscribeTask(taskId);
  const reading = (async () => {
    for await (const row of events) seen.push(row);
  })();
  await eventually(() => app.events.listenerCount() > listeners, 'the recorder listens');
  return {
    seen,
    async stop() {
      await events.return?.();
      await reading;
    },
  };
}

const postJson = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Seed 003's task object (`video.generation.task`), as a callback body. */
function odkkkTask(id: string, status: string, progress: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    object: 'video.generation.task',
    model: ODKKK,
    status,
    progress,
    created: Math.floor(Date.now() / 1000) - 10,
    type: 'video',
    task_info: { can_cancel: status === 'pending' || status === 'processing', estimated_time: status === 'completed' ? 0 : 30, video_duration: 5 },
    usage: { billing_rule: 'per_call', credits_reserved: 5, user_group: 'default' },
    ...extra,
  };
}

const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

/** Finished, and its result archived or given up: nothing more will change the row by itself. */
async function settled(app: App, id: string): Promise<VideoTaskRow> {
  await eventually(() => {
    const row = app.tasks.get(id)!;
    return isTerminal(row.status) && row.archiveStatus !== 'PENDING' && row.leaseOwner === null;
  }, () => `task ${id} settles: ${JSON.stringify(app.tasks.get(id))}`);
  return app.tasks.get(id)!;
}

// The groups run side by side, each with its own service and sandbox. Within the first two, tests run
// in order: the first counts the sandbox's queries (which the replay test's own query would disturb),
// the second's build on one another.
describe('upstream callbacks', { concurrency: true }, () => {
  describe('upstream callbacks (PUBLIC_URL set, poller effectively off)', { concurrency: false }, () => {
    let service: Service;
    before(async () => { service = await startService({ env: POLLER_OFF }); });
    after(async () => { await service?.stop(); });

    it('the odkkk model\'s submission carries callback_url = PUBLIC_URL/webhooks/upstream/<taskId>/<token>; other models\' do not', async () => {
      const first = await service.create(ODKKK);
      const second = await service.create(ODKKK);
      const others = await Promise.all(['doubao-seedance-1-0-pro-fast', 'seedance-2-fast'].map((model) => service.create(model)));

      const tokens = [first, second].map((id) => {
        const task = service.app.tasks.get(id)!;
        const { url, token } = callbackOf(service, task);
        assert.equal(url, `${service.publicUrl}/webhooks/upstream/${id}/${token}`);
        // 32 random bytes, base64url: unguessable; only its hash is kept.
        assert.match(token, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(task.callbackTokenHash, sha256Hex(token));
        assert.ok(!JSON.stringify(task).includes(token), 'the token itself is not stored');
        return token;
      });
      assert.notEqual(tokens[0], tokens[1], 'one token per task');

      for (const id of others) {
        const task = service.app.tasks.get(id)!;
        const submitted = service.sandbox.tasks().find((t) => t.id === task.upstreamTaskId)!;
        assert.equal('callback_url' in submitted.body, false, `${task.model} takes no callback_url`);
        assert.equal(task.callbackTokenHash, null);
      }
    });

    it('the sandbox\'s callback completes the task, with no poll at all', async () => {
      const queriesBefore = service.sandbox.stats().requests.query;
      const id = await service.create(ODKKK, 'Completed by callback');
      const events = await recordEvents(service.app, id);
      await eventually(() => service.app.tasks.get(id)!.status === 'COMPLETED', 'the task completes');
      await events.stop();
      const task = service.app.tasks.get(id)!;
      assert.equal(task.progress, 100);
      assert.equal(task.upstreamStatus, 'completed');
      assert.match(task.videoUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/files\/.+video\.mp4\?/);
      assert.ok(task.expiresAt);
      // Straight to COMPLETED, published as such (later events only report the result's archiving).
      assert.ok(events.seen.length >= 1);
      assert.ok(events.seen.every((e) => e.status === 'COMPLETED' && e.progress === 100), JSON.stringify(events.seen.map((e) => e.status)));
      assert.equal(service.sandbox.stats().requests.query, queriesBefore, 'the poller never asked');
      // The sandbox logs an attempt once it has read the answer, which may be after the task changed here.
      await eventually(() => callbackAttempts(service, task).length > 0, 'the sandbox logged its callback');
      // Its first retry would come 1 s (scaled: 10 ms) after a failure: none comes.
      await sleep(100);
      const attempts = callbackAttempts(service, task);
      assert.deepEqual(attempts.map((a) => a.status), [204], `delivered at the first attempt: ${JSON.stringify(attempts)}`);
    });

    it('a failed generation is called back too, and ends the task FAILED with the upstream\'s error', async () => {
      const id = await service.create(ODKKK, `This one fails ${FAIL_MARKER}`);
      await eventually(() => service.app.tasks.get(id)!.status === 'FAILED', 'the task fails');
      const task = service.app.tasks.get(id)!;
      assert.equal(task.errorCode, 'generation_failed');
      assert.equal(task.errorType, 'upstream_error');
      assert.match(task.errorMessage ?? '', /could not be generated/);
    });

    it('replaying the same callback changes nothing: no event, same version', async () => {
      const id = await service.create(ODKKK, 'Replayed');
      const task = await settled(service.app, id);
      assert.equal(task.status, 'COMPLETED');
      const { url } = callbackOf(service, task);
      // The body the sandbox sent: the task object as its query shows it now that it is finished.
      const upstream = await fetch(`${service.sandboxUrl}${SANDBOX_MOUNTS.odkkk}/v1/videos/generations/${encodeURIComponent(task.upstreamTaskId!)}`, {
        headers: { authorization: `Bearer ${SANDBOX_API_KEY}` },
      });
      const body = await upstream.json() as Record<string, unknown>;
      assert.equal(body.status, 'completed');
      const events = await recordEvents(service.app, id);
      for (let i = 0; i < 3; i++) {
        const response = await postJson(url, body);
        assert.equal(response.status, 204);
      }
      await events.stop();
      assert.deepEqual(events.seen, []);
      const again = service.app.tasks.get(id)!;
      assert.equal(again.version, task.version);
      assert.deepEqual(again, task);
    });
  });

  describe('refused and out-of-order callbacks (the sandbox would call back only after 40-165 s)', { concurrency: false }, () => {
    let service: Service;
    let task: VideoTaskRow;
    let callback: { url: string; token: string };
    let webhookBase: string;
    before(async () => {
      service = await startService({ env: POLLER_OFF, sandbox: { timeScale: 1 } });
      const id = await service.create(ODKKK, 'Driven by hand');
      task = service.app.tasks.get(id)!;
      callback = callbackOf(service, task);
      webhookBase = `${service.url}/webhooks/upstream`;
    });
    after(async () => { await service?.stop(); });

    /** Runs `request` and checks it is answered `status` and that the task did not change at all. */
    async function refused(request: () => Promise<Response>, status: number): Promise<Response> {
      const before = service.app.tasks.get(task.id)!;
      const events = await recordEvents(service.app, task.id);
      const response = await request();
      assert.equal(response.status, status);
      await events.stop();
      assert.deepEqual(events.seen, [], 'nothing published');
      assert.deepEqual(service.app.tasks.get(task.id), before, 'the row is unchanged');
      return response;
    }

    const completedBody = () => odkkkTask(task.upstreamTaskId!, 'completed', 100, {
      completed_at: Math.floor(Date.now() / 1000),
      expires_at: Math.floor(Date.now() / 1000) + 86_400,
      video_url: 'https://cdn.example.com/v.mp4',
    });

    it('refuses a wrong token (404)', async () => {
      const wrong = randomBytes(32).toString('base64url');
      await refused(() => postJson(`${webhookBase}/${task.id}/${wrong}`, completedBody()), 404);
      // A token of the right shape but cut short, and one that is not a token at all.
      await refused(() => postJson(`${webhookBase}/${task.id}/${callback.token.slice(0, 20)}`, completedBody()), 404);
      await refused(() => postJson(`${webhookBase}/${task.id}/short`, completedBody()), 404);
    });

    it('refuses an unknown task, and another task\'s token (404, indistinguishable from a wrong token)', async () => {
      const response = await refused(() => postJson(`${webhookBase}/${randomUUID()}/${callback.token}`, completedBody()), 404);
      assert.deepEqual(await response.json(), { error: 'not found' });
      const otherId = await service.create(ODKKK, 'Another task');
      const other = callbackOf(service, service.app.tasks.get(otherId)!);
      await refused(() => postJson(`${webhookBase}/${task.id}/${other.token}`, completedBody()), 404);
    });

    it('refuses methods other than POST (405, Allow: POST)', async () => {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const response = await refused(() => fetch(callback.url, { method }), 405);
        assert.equal(response.headers.get('allow'), 'POST');
      }
    });

    it('refuses a body that is not JSON, or not a task object (400)', async () => {
      await refused(() => fetch(callback.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'status=completed' }), 400);
      await refused(() => fetch(callback.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id": "cut' }), 400);
      await refused(() => postJson(callback.url, { hello: 'world' }), 400);
      await refused(() => postJson(callback.url, [1, 2, 3]), 400);
    });

    it('ignores a callback about another upstream task', async () => {
      const before = service.app.tasks.get(task.id)!;
      const response = await postJson(callback.url, odkkkTask('task-unified-1-someoneelse', 'completed', 100));
      assert.equal(response.status, 204);
      assert.deepEqual(service.app.tasks.get(task.id), before);
    });

    it('applies callbacks through the poll\'s update path: forward only, idempotent, out of order safe', async () => {
      const events = await recordEvents(service.app, task.id);
      const send = async (body: unknown) => assert.equal((await postJson(callback.url, body)).status, 204);
      const id = task.upstreamTaskId!;

      await send(odkkkTask(id, 'processing', 70));
      assert.equal(service.app.tasks.get(task.id)!.status, 'IN_PROGRESS');
      assert.equal(service.app.tasks.get(task.id)!.progress, 70);
      // An older one, late: progress does not go back, nothing is published.
      await send(odkkkTask(id, 'processing', 30));
      assert.equal(service.app.tasks.get(task.id)!.progress, 70);
      assert.equal(service.app.tasks.get(task.id)!.status, 'IN_PROGRESS');

      const completed = completedBody();
      await send(completed);
      assert.equal(service.app.tasks.get(task.id)!.status, 'COMPLETED');
      const done = await settled(service.app, task.id);
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.progress, 100);
      await events.stop();
      // Each step forward published once (the result's archiving may add COMPLETED events of its own).
      const steps = events.seen.map((e) => `${e.status} ${e.progress}`).filter((step, i, all) => step !== all[i - 1]);
      assert.deepEqual(steps, ['IN_PROGRESS 70', 'COMPLETED 100']);
      assert.equal(events.seen[0]!.version, task.version + 1);
      const late = await recordEvents(service.app, task.id);

      // The in-progress callback that was overtaken, then a replay: the task stays as it is.
      await send(odkkkTask(id, 'processing', 40));
      await send(completed);
      await send(odkkkTask(id, 'failed', 100, { error: { code: 'late', message: 'a late failure', type: 'upstream_error' } }));
      const after = service.app.tasks.get(task.id)!;
      assert.deepEqual(after, done, 'a terminal task never changes');
      await late.stop();
      assert.deepEqual(late.seen, [], 'nothing published for late or repeated callbacks');
    });

    // Known gap (reported): applyUpstream keeps the status from moving back but still records the stale
    // answer's status word (and estimate), so the row says IN_PROGRESS / "pending" and a new version is
    // published for a message older than what the task already knows.
    it('a stale status word (pending after processing) leaves the task exactly as it was', async () => {
      const otherId = await service.create(ODKKK, 'Stale word');
      const other = service.app.tasks.get(otherId)!;
      const { url } = callbackOf(service, other);
      assert.equal((await postJson(url, odkkkTask(other.upstreamTaskId!, 'processing', 70))).status, 204);
      const before = service.app.tasks.get(otherId)!;
      assert.equal((await postJson(url, odkkkTask(other.upstreamTaskId!, 'pending', 0, { task_info: { estimated_time: 90 } }))).status, 204);
      const afterwards = service.app.tasks.get(otherId)!;
      assert.equal(afterwards.status, 'IN_PROGRESS');
      assert.equal(afterwards.progress, 70);
      assert.equal(afterwards.upstreamStatus, 'processing');
      assert.equal(afterwards.version, before.version);
    });
  });

  describe('the poller as a safety net', () => {
    it('completes a task whose callbacks all fail (PUBLIC_URL names a path the service does not serve)', async () => {
      const service = await startService({ publicUrl: (url) => `${url}/not-here` });
      try {
        const id = await service.create(ODKKK, 'Callbacks go nowhere');
        const task = service.app.tasks.get(id)!;
        assert.match(callbackOf(service, task).url, /\/not-here\/webhooks\/upstream\//);
        await eventually(() => service.app.tasks.get(id)!.status === 'COMPLETED', 'the poller completes the task');
        assert.ok(service.sandbox.stats().requests.query > 0, 'it was polled');
        // Seed 003: the first attempt and 3 retries (after 1, 2, 4 s, scaled like the sandbox's clock).
        const attempts = () => callbackAttempts(service, task);
        await eventually(() => attempts().length === 4, () => `four callback attempts: ${JSON.stringify(attempts())}`);
        assert.ok(attempts().every((a) => a.status === null || a.status < 200 || a.status > 299), JSON.stringify(attempts()));
        const done = service.app.tasks.get(id)!;
        assert.equal(done.progress, 100);
        assert.ok(done.videoUrl);
      } finally {
        await service.stop();
      }
    });

    it('completes a task whose callback target refuses connections', async () => {
      const closedPort = await freePort();
      // PUBLIC_URL points at a port nobody listens on; the service itself runs elsewhere.
      const service = await startService({ publicUrl: () => `http://127.0.0.1:${closedPort}` });
      try {
        const id = await service.create(ODKKK, 'Nobody answers');
        const task = service.app.tasks.get(id)!;
        assert.ok(callbackOf(service, task).url.startsWith(`http://127.0.0.1:${closedPort}/webhooks/upstream/`));
        await eventually(() => service.app.tasks.get(id)!.status === 'COMPLETED', 'the poller completes the task');
        const attempts = () => callbackAttempts(service, task);
        await eventually(() => attempts().length === 4, () => `four callback attempts: ${JSON.stringify(attempts())}`);
        assert.ok(attempts().every((a) => a.status === null));
      } finally {
        await service.stop();
      }
    });
  });

  describe('without PUBLIC_URL', () => {
    it('sends no callback_url, keeps no token, and the poller completes the odkkk task', async () => {
      const h = await startHarness();
      try {
        const { data } = await h.gql(CREATE, { input: { model: ODKKK, prompt: 'No callback' } });
        const id = Buffer.from(data.createVideoTask.task.id, 'base64').toString('utf8').replace(/^VideoTask:/, '');
        const task = h.app.tasks.get(id)!;
        assert.equal(task.callbackTokenHash, null);
        const submitted = h.sandbox!.tasks().find((t) => t.id === task.upstreamTaskId)!;
        assert.equal('callback_url' in submitted.body, false);
        await eventually(() => h.app.tasks.get(id)!.status === 'COMPLETED', 'the poller completes the task');
        assert.deepEqual(h.sandbox!.report().callbacks, []);
      } finally {
        await h.stop();
      }
    });
  });
});
