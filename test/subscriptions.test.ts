// Live progress: a client creates a task and watches it become a video, over WebSocket and SSE.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startHarness, type Harness } from './support/harness.ts';

const WATCH = `subscription($id: ID!) { videoTaskUpdated(id: $id) { id status progress videoUrl upstreamStatus archive { status } } }`;
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }`;

interface TaskEvent { id: string; status: string; progress: number; videoUrl: string | null; archive: { status: string } | null }

async function createTask(h: Harness, prompt = 'A calm sunrise', model = 'seedance-2-fast'): Promise<string> {
  const { data } = await h.gql(CREATE, { input: { model, prompt } });
  assert.deepEqual(data.createVideoTask.userErrors, []);
  return data.createVideoTask.task.id;
}

function wsClient(h: Harness, extra: Partial<Parameters<typeof createClient>[0]> = {}): Client {
  return createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, ...extra });
}

/** Collects every event of one subscription until it completes. */
function collect(client: Client, query: string, variables: Record<string, unknown>): Promise<TaskEvent[]> {
  return new Promise((resolve, reject) => {
    const events: TaskEvent[] = [];
    client.subscribe<{ videoTaskUpdated: TaskEvent }>({ query, variables }, {
      next: (result) => {
        if (result.errors) reject(new Error(JSON.stringify(result.errors)));
        else events.push(result.data!.videoTaskUpdated);
      },
      error: reject,
      complete: () => resolve(events),
    });
  });
}

/** Reads a graphql-sse "distinct connections" stream (Yoga's SSE) until `complete`. */
async function collectSse(url: string, query: string, variables: Record<string, unknown>, signal?: AbortSignal): Promise<TaskEvent[]> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal,
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
  const events: TaskEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(message)?.[1];
      const data = /^data: (.*)$/m.exec(message)?.[1];
      if (event === 'complete') return events;
      if (event === 'next' && data) {
        const payload = JSON.parse(data);
        if (payload.errors) throw new Error(JSON.stringify(payload.errors));
        events.push(payload.data.videoTaskUpdated);
      }
    }
  }
  return events;
}

/**
 * The lifecycle a watcher must see: QUEUED first, then IN_PROGRESS with rising progress, then COMPLETED;
 * the subscription stays open until the result is archived, and ends on the archived copy's URL.
 */
function assertLifecycle(events: TaskEvent[]): void {
  const statuses = events.map((e) => e.status);
  assert.ok(['QUEUED', 'IN_PROGRESS'].includes(statuses[0]!), `first event: ${statuses[0]}`);
  assert.ok(statuses.includes('QUEUED'), `saw QUEUED: ${statuses.join(',')}`);
  const inProgress = events.filter((e) => e.status === 'IN_PROGRESS');
  assert.ok(inProgress.length >= 2, `saw progress while IN_PROGRESS: ${statuses.join(',')}`);
  assert.ok(inProgress.at(-1)!.progress > inProgress[0]!.progress, 'progress rose');
  const progress = events.map((e) => e.progress);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never went backwards');
  const last = events.at(-1)!;
  assert.equal(last.status, 'COMPLETED');
  assert.equal(last.progress, 100);
  const firstDone = statuses.indexOf('COMPLETED');
  assert.ok(statuses.slice(firstDone).every((s) => s === 'COMPLETED'), 'nothing after COMPLETED but the archive landing');
  assert.equal(events[firstDone]!.archive?.status, 'PENDING', 'the archive starts when the task completes');
  assert.equal(last.archive?.status, 'ARCHIVED', 'the subscription ends once the archive lands');
  assert.match(last.videoUrl ?? '', /^https?:\/\/.+\/media\/archives\/.+\/video\.mp4\?expires=\d+&signature=/);
}

async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('videoTaskUpdated', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { WS_KEEPALIVE_MS: '100', WS_CONNECTION_INIT_TIMEOUT_MS: '300' } });
  });
  after(async () => { await h.stop(); });

  it('over graphql-ws: current state first, QUEUED -> IN_PROGRESS with rising progress -> COMPLETED with a videoUrl, then completes', async () => {
    const client = wsClient(h);
    try {
      const id = await createTask(h);
      assertLifecycle(await collect(client, WATCH, { id }));
    } finally {
      await client.dispose();
    }
  });

  it('over SSE: the same lifecycle, then the stream completes', async () => {
    const id = await createTask(h, 'Waves over SSE');
    assertLifecycle(await collectSse(h.url, WATCH, { id }));
  });

  it('a finished task yields its final state once and completes', async () => {
    const id = await createTask(h);
    const client = wsClient(h);
    try {
      await collect(client, WATCH, { id });
      const again = await collect(client, WATCH, { id });
      assert.deepEqual(again.map((e) => [e.status, e.archive?.status]), [['COMPLETED', 'ARCHIVED']]);
    } finally {
      await client.dispose();
    }
  });

  it('refuses an unknown task with NOT_FOUND', async () => {
    const client = wsClient(h);
    try {
      const unknown = Buffer.from('VideoTask:nope').toString('base64');
      await assert.rejects(collect(client, WATCH, { id: unknown }), /NOT_FOUND|No such task/);
    } finally {
      await client.dispose();
    }
  });

  it('leaks no listener when a WebSocket client goes away mid-subscription', async () => {
    const id = await createTask(h, 'Abandoned over WebSocket', 'doubao-seedance-1-0-pro-quality');
    const client = wsClient(h);
    const first = new Promise<void>((resolve) => {
      client.subscribe({ query: WATCH, variables: { id } }, { next: () => resolve(), error: () => undefined, complete: () => undefined });
    });
    await first;
    assert.ok(h.app.events.listenerCount() >= 1);
    await client.dispose();
    await eventually(() => h.app.events.listenerCount() === 0, 'the listener is gone');
    await eventually(() => h.app.webSocketConnections() === 0, 'the socket is gone');
  });

  it('leaks no listener when an SSE client goes away mid-subscription', async () => {
    const id = await createTask(h, 'Abandoned over SSE', 'doubao-seedance-1-0-pro-quality');
    const abort = new AbortController();
    const stream = collectSse(h.url, WATCH, { id }, abort.signal).catch(() => []);
    await eventually(() => h.app.events.listenerCount() >= 1, 'the SSE subscription is listening');
    abort.abort();
    await stream;
    await eventually(() => h.app.events.listenerCount() === 0, 'the listener is gone');
  });

  it('pings an idle connection to keep it alive', async () => {
    const socket = new WebSocket(`${h.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await new Promise<void>((resolve) => socket.once('ping', () => resolve()));
    socket.close();
  });

  it('ends a connection that stops answering pings, and releases its subscription', async () => {
    const id = await createTask(h, 'Watched by a silent client', 'doubao-seedance-1-0-pro-quality');
    const listeners = h.app.events.listenerCount();
    const socket = new WebSocket(`${h.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', { autoPong: false });
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await new Promise((resolve) => socket.once('message', resolve));
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { id } } }));
    await eventually(() => h.app.events.listenerCount() === listeners + 1, 'the subscription listens');
    const code = await new Promise<number>((resolve) => socket.once('close', (c) => resolve(c)));
    assert.equal(code, 1006, 'terminated, without a closing handshake');
    await eventually(() => h.app.events.listenerCount() === listeners, 'the listener is gone');
  });

  it('closes a connection that never initialises (4408)', async () => {
    const socket = new WebSocket(`${h.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const code = await new Promise<number>((resolve) => socket.once('close', (c) => resolve(c)));
    assert.equal(code, 4408);
  });
});

describe('videoTasksUpdated', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(async () => { await h.stop(); });

  it('streams every change to matching tasks, and only those', async () => {
    const client = wsClient(h);
    const seen: { id: string; model: string; status: string }[] = [];
    const unsubscribe = client.subscribe<{ videoTasksUpdated: { id: string; model: string; status: string } }>({
      query: `subscription { videoTasksUpdated(filter: { model: ["seedance-2"] }) { id model status } }`,
    }, { next: (r) => seen.push(r.data!.videoTasksUpdated), error: () => undefined, complete: () => undefined });
    try {
      await eventually(() => h.app.events.listenerCount() === 1, 'subscribed');
      const wanted = await createTask(h, 'wanted', 'seedance-2');
      const other = await createTask(h, 'other', 'seedance-2-fast');
      await eventually(() => seen.some((e) => e.id === wanted && e.status === 'COMPLETED'), 'the wanted task completes', 10_000);
      assert.ok(seen.every((e) => e.model === 'seedance-2'));
      assert.ok(!seen.some((e) => e.id === other));
    } finally {
      unsubscribe();
      await client.dispose();
    }
  });
});

describe('cancelVideoTask', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(async () => { await h.stop(); });

  const CANCEL = `mutation($id: ID!) { cancelVideoTask(id: $id) { task { id status } upstreamCancelled message userErrors { code } } }`;

  it('ends an unfinished task CANCELLED, tells subscribers, stops polling, and says the upstream was not told', async () => {
    const id = await createTask(h, 'Cancel me', 'doubao-seedance-1-0-pro-quality');
    const client = wsClient(h);
    try {
      const watching = collect(client, WATCH, { id });
      await eventually(() => h.app.events.listenerCount() === 1, 'subscribed');
      const { data } = await h.gql(CANCEL, { id });
      assert.equal(data.cancelVideoTask.task.status, 'CANCELLED');
      assert.equal(data.cancelVideoTask.upstreamCancelled, false);
      assert.match(data.cancelVideoTask.message, /may still finish/);
      const events = await watching;
      assert.equal(events.at(-1)!.status, 'CANCELLED');

      // A poll already in flight when the task was cancelled may still reach the upstream (its answer is
      // then ignored); after that, none.
      await new Promise((r) => setTimeout(r, 150));
      const queries = h.sandbox!.stats().requests.query;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(h.sandbox!.stats().requests.query, queries, 'no poll after cancellation');

      const again = await h.gql(CANCEL, { id });
      assert.deepEqual(again.data.cancelVideoTask.userErrors.map((e: { code: string }) => e.code), ['ALREADY_FINISHED']);
    } finally {
      await client.dispose();
    }
  });
});

describe('GraphiQL', () => {
  it('is served at /graphql to browsers, set to run subscriptions over WebSocket', async () => {
    const h = await startHarness();
    try {
      const page = await (await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } })).text();
      assert.match(page, /graphiql/i);
      assert.match(page, /"subscriptionsProtocol":"WS"/);
    } finally {
      await h.stop();
    }
  });
});
