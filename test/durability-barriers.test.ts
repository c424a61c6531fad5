// Where the service waits for its commits to be durable (the database commits without waiting for the
// disk: see openGroupCommitDatabase): a submission's row before its request leaves, and a mutation's
// writes before its answer, over HTTP and WebSocket. A held durability stands in for a slow disk, and
// the specifications watch what happens, or does not, until it is released.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'graphql-ws';
import { createSchema, createYoga } from 'graphql-yoga';
import pino from 'pino';
import WebSocket from 'ws';
import { ANONYMOUS } from '../src/auth/principal.ts';
import { InProcessTaskEvents } from '../src/events/task-events.ts';
import { useDurableMutations } from '../src/graphql/durable-mutations.ts';
import { attachWebSocketTransport } from '../src/http/graphql-ws.ts';
import { handleUpstreamWebhook } from '../src/http/upstream-webhook.ts';
import { PollSchedule } from '../src/poller/poll-schedule.ts';
import { startSandboxServer } from '../src/sandbox/sandbox-upstream.ts';
import { openGroupCommitDatabase, type Db } from '../src/storage/database.ts';
import type { Durability } from '../src/storage/durability.ts';
import { TaskStore } from '../src/storage/task-store.ts';
import { VideoTaskService } from '../src/tasks/task-service.ts';
import { validateCreateVideoTask } from '../src/tasks/validation.ts';
import { SANDBOX_API_KEY, sandboxAccounts, ProviderDirectory } from '../src/upstream/providers.ts';
import { UpstreamClient } from '../src/upstream/upstream-client.ts';
import { waitFor } from './support/hardening.ts';

const MODEL = 'doubao-seedance-1-0-pro-fast';

/** A durability whose syncs wait until the test releases them (then sync the real one). */
function heldDurability(real: Durability) {
  let release!: () => void;
  let gate = new Promise<void>((resolve) => { release = resolve; });
  const held = {
    calls: 0,
    durability: {
      sync: async () => {
        held.calls++;
        await gate;
        await real.sync();
      },
      close: () => real.close(),
      healthy: () => real.healthy(),
    } satisfies Durability,
    release() {
      release();
    },
    /** Holds the syncs that start from now on. */
    hold() {
      gate = new Promise<void>((resolve) => { release = resolve; });
    },
  };
  return held;
}

/** A moment for anything that should not happen to have a chance to. */
const aMoment = () => sleep(100);

describe('a submission leaves only once its row is durable', () => {
  let dir: string;
  let db: Db;
  let real: Durability;
  let sandbox: Awaited<ReturnType<typeof startSandboxServer>>;
  let upstream: UpstreamClient;
  let held: ReturnType<typeof heldDurability>;
  let service: VideoTaskService;
  let store: TaskStore;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seedance-barriers-'));
    ({ db, durability: real } = openGroupCommitDatabase(join(dir, 'tasks.sqlite')));
    sandbox = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: 0.01, port: 0 });
    upstream = new UpstreamClient({ timeoutMs: 2000 });
    held = heldDurability(real);
    store = new TaskStore(db);
    service = new VideoTaskService({
      store,
      durability: held.durability,
      upstream,
      providers: new ProviderDirectory(sandboxAccounts(sandbox.url)),
      events: new InProcessTaskEvents(),
      schedule: new PollSchedule(),
      logger: pino({ level: 'silent' }),
      owner: 'barriers',
      leaseMs: 5000,
    });
  });
  after(async () => {
    held.release();
    await upstream.close();
    await sandbox.close();
    await real.close();
    db.$client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const submissions = () => sandbox.sandbox.stats().requests.create;

  it('createVideoTask: the SUBMITTING row, its attempt recorded, is synced before the POST; nothing reaches the provider until then', async () => {
    held.hold();
    const before = submissions();
    const creating = service.create(ANONYMOUS, { model: MODEL, prompt: 'held before the POST' });
    await waitFor('a sync', () => held.calls > 0, 5000);
    const row = db.$client.prepare('SELECT status, submission_attempted_at FROM video_tasks WHERE prompt = ?').get('held before the POST') as
      { status: string; submission_attempted_at: number | null } | undefined;
    assert.equal(row?.status, 'SUBMITTING');
    assert.notEqual(row?.submission_attempted_at, null, 'the attempt is part of what is synced');
    await aMoment();
    assert.equal(submissions(), before, 'no submission while the sync is held');

    held.release();
    const result = await creating;
    assert.deepEqual(result.userErrors, []);
    assert.equal(result.task?.status, 'QUEUED');
    assert.ok(result.task?.upstreamTaskId);
    assert.equal(submissions(), before + 1);
  });

  it('a resumed submission (a row whose request never left): the attempt is synced before the request, the upstream id after the answer', async () => {
    const validation = validateCreateVideoTask({ model: MODEL, prompt: 'never sent' }, { trustedUrls: [] });
    assert.ok(validation.ok);
    const now = new Date();
    const row = store.insert({
      id: 'never-sent', model: MODEL, provider: 'sandbox', request: validation.request, prompt: 'never sent',
      status: 'SUBMITTING', progress: 0, createdAt: now, updatedAt: now, nextPollAt: now, ownerId: ANONYMOUS.ownerId,
    });
    held.hold();
    const callsBefore = held.calls;
    const before = submissions();
    const resuming = service.resumeSubmission(row, new Date(now.getTime() + 60_000));
    await waitFor('a sync', () => held.calls > callsBefore, 5000);
    assert.notEqual(store.get('never-sent')?.submissionAttemptedAt, null);
    await aMoment();
    assert.equal(submissions(), before, 'no submission while the sync is held');

    held.release();
    await waitFor('the submission', () => submissions() > before, 5000);
    await resuming;
    assert.equal(held.calls, callsBefore + 2, 'one sync before the request, one after the answer was recorded');
    assert.ok(store.get('never-sent')?.upstreamTaskId);
  });
});

describe('a mutation is answered only once its writes are durable (useDurableMutations), over HTTP and WebSocket', () => {
  let server: Server;
  let url: string;
  let real: Durability;
  let held: ReturnType<typeof heldDurability>;
  let failing = false;
  let transport: ReturnType<typeof attachWebSocketTransport>;
  const logged: unknown[] = [];

  before(async () => {
    real = { sync: async () => { if (failing) throw new Error('EIO: i/o error, fsync'); }, close: async () => {}, healthy: () => !failing };
    held = heldDurability(real);
    let counter = 0;
    const yoga = createYoga({
      schema: createSchema({
        typeDefs: 'type Query { count: Int! } type Mutation { increment: Int! }',
        resolvers: { Query: { count: () => counter }, Mutation: { increment: () => ++counter } },
      }),
      plugins: [useDurableMutations(held.durability, (error) => logged.push(error)) as never],
      logging: false,
    });
    server = createServer(yoga);
    transport = attachWebSocketTransport(server, yoga as never, {
      keepAliveMs: 12_000, connectionInitTimeoutMs: 5000, maxPayloadBytes: 100_000,
      maxSubscriptionsPerConnection: 10, maxConnectionsPerKey: 10,
      authenticate: () => ANONYMOUS, logger: pino({ level: 'silent' }),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });
  after(async () => {
    held.release();
    await transport.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const post = async (query: string) => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    return response.json() as Promise<{ data?: Record<string, number> | null; errors?: { message: string; extensions?: { code?: string } }[] }>;
  };

  /** Settles a promise's state for inspection without awaiting it. */
  const track = <T>(promise: Promise<T>) => {
    const state: { done: boolean; value?: T } = { done: false };
    void promise.then((value) => { state.done = true; state.value = value; });
    return state;
  };

  it('over HTTP: the mutation waits for the sync; a query does not sync at all', async () => {
    held.hold();
    const callsBefore = held.calls;
    const mutation = track(post('mutation { increment }'));
    await waitFor('a sync', () => held.calls > callsBefore, 5000);
    assert.deepEqual(await post('{ count }'), { data: { count: 1 } }, 'the write happened; a query is answered meanwhile');
    assert.equal(held.calls, callsBefore + 1, 'the query asked for no sync');
    await aMoment();
    assert.equal(mutation.done, false, 'no answer before the sync');
    held.release();
    await waitFor('the answer', () => mutation.done, 5000);
    assert.deepEqual(mutation.value, { data: { increment: 1 } });
  });

  it('over WebSocket (graphql-ws runs the same envelop): the mutation waits for the sync', async () => {
    held.hold();
    const client = createClient({ url: url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    try {
      const callsBefore = held.calls;
      const answer = track(new Promise((resolve, reject) => {
        let result: unknown;
        client.subscribe({ query: 'mutation { increment }' }, { next: (value) => { result = value; }, error: reject, complete: () => resolve(result) });
      }));
      await waitFor('a sync', () => held.calls > callsBefore, 5000);
      await aMoment();
      assert.equal(answer.done, false, 'no answer before the sync');
      held.release();
      await waitFor('the answer', () => answer.done, 5000);
      assert.deepEqual(answer.value, { data: { increment: 2 } });
    } finally {
      await client.dispose();
    }
  });

  it('a sync that fails turns the answer into a NOT_DURABLE error rather than claiming the change', async () => {
    held.release();
    failing = true;
    try {
      const answer = await post('mutation { increment }');
      assert.equal(answer.data, undefined);
      assert.deepEqual(answer.errors?.map((e) => e.extensions?.code), ['NOT_DURABLE']);
      assert.equal(logged.length, 1);
    } finally {
      failing = false;
    }
  });
});

describe('an upstream callback is acknowledged only once its write is durable', () => {
  // The handler's own rule, with the service reduced to the one call it makes: a callback may be the
  // only record of an upstream task, and a provider that gets no 2xx calls again.
  let server: Server;
  let url: string;
  let applied = 0;
  let failSync = false;
  let release!: () => void;
  let gate = Promise.resolve();
  const durability: Durability = {
    sync: async () => {
      await gate;
      if (failSync) throw new Error('fsync failed');
    },
    close: async () => undefined,
    healthy: () => !failSync,
  };
  const tasks = { applyCallback: () => { applied++; return 'applied' as const; } } as unknown as VideoTaskService;
  const track = <T>(promise: Promise<T>) => {
    const state: { done: boolean; value?: T } = { done: false };
    void promise.then((value) => { state.done = true; state.value = value; });
    return state;
  };

  before(async () => {
    server = createServer((req, res) => {
      if (!handleUpstreamWebhook(req, res, tasks, durability, pino({ level: 'silent' }))) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/upstream/task-1/${'t'.repeat(43)}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers 204 after the sync, not before', async () => {
    gate = new Promise<void>((resolve) => { release = resolve; });
    const answer = track(fetch(url, { method: 'POST', body: JSON.stringify({ id: 'cgt-1', status: 'succeeded' }) }));
    await waitFor('the callback applied', () => applied === 1, 5000);
    await aMoment();
    assert.equal(answer.done, false, 'no answer before the sync');
    release();
    await waitFor('the answer', () => answer.done, 5000);
    assert.equal((answer.value as Response).status, 204);
  });

  it('answers 500 when the sync fails, so the provider calls again', async () => {
    gate = Promise.resolve();
    failSync = true;
    const answer = await fetch(url, { method: 'POST', body: JSON.stringify({ id: 'cgt-1', status: 'succeeded' }) });
    assert.equal(answer.status, 500);
  });
});
