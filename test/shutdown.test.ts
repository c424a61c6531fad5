// SIGTERM drains the real service (src/main.ts, a child process): it stops accepting connections at
// once, lets the request and the poll in flight finish (and writes the poll's answer), ends every
// subscription (SSE streams complete, WebSockets close with 1001 "going away"), folds the WAL into
// the database file, logs 'stopped' and exits 0. A second signal exits at once, without the drain.
//
// The sandbox's clock is the test's: tasks stand still (time scale 1: a generation takes 40+ s)
// until the test moves the clock on, so which answer a poll gets is decided by the test, not by luck.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startSandboxServer } from '../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY } from '../src/upstream/providers.ts';
import { postGraphql, taskRowId, waitFor } from './support/hardening.ts';
import { startServiceProcess, tempDatabase, type ServiceProcess } from './support/service-process.ts';

const MODEL = 'doubao-seedance-1-0-pro-fast';
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status upstreamTaskId } userErrors { code message } } }`;
const WATCH = `subscription($id: ID!) { videoTaskUpdated(id: $id) { id status progress } }`;
const WATCH_ALL = `subscription { videoTasksUpdated { id status progress } }`;
/** How long the sandbox sits on each request once the test turns latency on. */
const LATENCY_MS = 1500;

/** The first poll comes soon after submission; later ones only after a minute, so that only the polls the test arranges happen. */
const ENV = {
  POLL_FIRST_MS: '300',
  POLL_QUEUED_MIN_MS: '60000',
  POLL_QUEUED_MAX_MS: '60000',
  POLL_IN_PROGRESS_MIN_MS: '60000',
  POLL_IN_PROGRESS_MAX_MS: '60000',
  UPSTREAM_TIMEOUT_MS: '6000',
  POLL_LEASE_MS: '8000',
  SHUTDOWN_GRACE_MS: '10000',
};

interface Row {
  id: string;
  status: string;
  progress: number;
  upstream_task_id: string | null;
  upstream_status: string | null;
  lease_owner: string | null;
  next_poll_at: number | null;
  updated_at: number;
}

function readRow(file: string, id: string): Row | undefined {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT id, status, progress, upstream_task_id, upstream_status, lease_owner, next_poll_at, updated_at FROM video_tasks WHERE id = ?').get(id) as Row | undefined;
  } finally {
    db.close();
  }
}

/** Whether a new TCP connection to the service's port is accepted (true) or refused (false). */
function accepts(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

interface SseStream {
  events: { event: string; data: unknown }[];
  /** Settles when the server ends the stream, with whether a `complete` event came first. */
  ended: Promise<{ complete: boolean; at: number; error?: string }>;
  first: Promise<void>;
}

/** A graphql-sse "distinct connections" subscription (Yoga's SSE), read until the server ends it. */
async function openSse(url: string, query: string, variables: Record<string, unknown>): Promise<SseStream> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
  });
  assert.equal(response.status, 200);
  const events: SseStream['events'] = [];
  let gotFirst: () => void = () => {};
  const first = new Promise<void>((resolve) => { gotFirst = resolve; });
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    let complete = false;
    try {
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(message)?.[1];
          const data = /^data: (.*)$/m.exec(message)?.[1];
          if (!event) continue;
          events.push({ event, data: data ? JSON.parse(data) : null });
          if (event === 'next') gotFirst();
          if (event === 'complete') complete = true;
        }
      }
    } catch (error) {
      return { complete, at: Date.now(), error: String(error) };
    }
    return { complete, at: Date.now() };
  })();
  return { events, ended, first };
}

describe('graceful shutdown on SIGTERM', () => {
  let sandboxServer: Awaited<ReturnType<typeof startSandboxServer>>;
  /** The sandbox's clock runs this far ahead of the wall clock. */
  let clockOffsetMs = 0;
  const databases: ReturnType<typeof tempDatabase>[] = [];
  const processes: ServiceProcess[] = [];
  const clients: Client[] = [];

  before(async () => {
    sandboxServer = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: 1, port: 0, now: () => Date.now() + clockOffsetMs });
  });
  afterEach(() => {
    sandboxServer.sandbox.setFaults({ latencyMs: 0 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all(processes.map((p) => p.stop()));
    await sandboxServer?.close();
    for (const database of databases) database.remove();
  });

  async function start(): Promise<{ service: ServiceProcess; file: string }> {
    const database = tempDatabase();
    databases.push(database);
    const service = await startServiceProcess({ databaseFile: database.file, upstreamUrl: sandboxServer.url, env: ENV });
    processes.push(service);
    return { service, file: database.file };
  }

  async function create(service: ServiceProcess, prompt: string) {
    const response = await postGraphql(service.url, CREATE, { input: { model: MODEL, prompt } });
    assert.equal(response.status, 200, response.raw);
    assert.deepEqual(response.body.data.createVideoTask.userErrors, []);
    return response.body.data.createVideoTask.task as { id: string; status: string; upstreamTaskId: string };
  }

  it('drains: refuses new connections, finishes the request and the poll in flight, ends subscriptions (WS 1001), checkpoints, exits 0', async (t) => {
    const { service, file } = await start();
    const { sandbox } = sandboxServer;
    const tag = randomUUID().slice(0, 8);

    // B: the watched task. Its first poll (queued) comes and goes; the next is a minute away.
    const queriesBefore = sandbox.stats().requests.query;
    const b = await create(service, `shutdown ${tag} B: watched`);
    await waitFor('B\'s first poll to be written', () => {
      const row = readRow(file, taskRowId(b.id));
      return row && row.lease_owner === null && (row.next_poll_at ?? 0) > Date.now() + 30_000 && sandbox.stats().requests.query > queriesBefore;
    }, 5_000);

    // Subscriptions: over WebSocket, B and every task; over SSE, B.
    let wsClosed: { code: number; reason: string; at: number } | null = null;
    const client = createClient({
      url: `${service.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      // The socket's close is observed below (on.closed); graphql-ws would print it otherwise.
      onNonLazyError: () => {},
      on: { closed: (event) => { const e = event as { code: number; reason: string }; wsClosed = { code: e.code, reason: e.reason, at: Date.now() }; } },
    });
    clients.push(client);
    const wsEventsB: { status: string }[] = [];
    const wsEventsAll: { id: string; status: string }[] = [];
    const wsEnds: Promise<string>[] = [];
    const subscribe = (query: string, variables: Record<string, unknown>, sink: unknown[]) => {
      wsEnds.push(new Promise((resolve) => {
        client.subscribe<Record<string, unknown>>({ query, variables }, {
          next: (result) => sink.push(Object.values(result.data ?? {})[0]),
          error: (error) => resolve(`error: ${JSON.stringify(error instanceof Error ? error.message : error)}`),
          complete: () => resolve('complete'),
        });
      }));
    };
    subscribe(WATCH, { id: b.id }, wsEventsB);
    subscribe(WATCH_ALL, {}, wsEventsAll);
    const sse = await openSse(service.url, WATCH, { id: b.id });
    await sse.first;
    await waitFor('the WebSocket subscription\'s first event', () => wsEventsB.length >= 1, 5_000);

    // A: the task whose poll will be in flight at the signal. Its creation also shows that the
    // all-tasks subscription is open.
    const a = await create(service, `shutdown ${tag} A: polled during the drain`);
    await waitFor('A on the all-tasks subscription', () => wsEventsAll.some((e) => e.id === a.id), 5_000);
    const queriesAtA = sandbox.stats().requests.query;
    sandbox.setFaults({ latencyMs: LATENCY_MS });
    await waitFor('A\'s first poll to reach the sandbox', () => sandbox.stats().requests.query > queriesAtA, 5_000, 5);
    const pollStartedAt = Date.now();
    assert.equal(sandbox.stats().requests.query, queriesAtA + 1, 'exactly one poll in flight');
    // The generation is over by the time the sandbox answers that poll: the answer is COMPLETED.
    clockOffsetMs += 1_000_000;

    // C: a create whose upstream call is in flight at the signal.
    const createsBefore = sandbox.stats().requests.create;
    const slowCreate = postGraphql(service.url, CREATE, { input: { model: MODEL, prompt: `shutdown ${tag} C: in flight` } });
    await waitFor('C\'s create request to reach the sandbox', () => sandbox.stats().requests.create > createsBefore, 5_000, 5);

    const aBefore = readRow(file, taskRowId(a.id))!;
    assert.equal(aBefore.status, 'QUEUED');
    assert.match(aBefore.lease_owner ?? '', new RegExp(`:${service.pid}:`), 'A is held by its poll');
    const signalledAt = Date.now();
    service.kill('SIGTERM');

    // No new connections, at once.
    const refusedAt = await waitFor('new connections to be refused', async () => (await accepts(service.url)) ? null : Date.now(), 2_000, 10);
    t.diagnostic(`new connections refused ${refusedAt - signalledAt} ms after SIGTERM`);
    assert.ok(refusedAt - signalledAt < 1_000, `still accepting ${refusedAt - signalledAt} ms after SIGTERM`);

    // The request in flight is answered, in full.
    const answered = await slowCreate;
    const answeredAt = Date.now();
    assert.equal(answered.status, 200, answered.raw);
    assert.equal(answered.body.errors, undefined);
    const c = answered.body.data.createVideoTask;
    assert.deepEqual(c.userErrors, []);
    assert.ok(c.task.upstreamTaskId, 'C was submitted and answered');

    const exit = await service.exited;
    const exitedAt = Date.now();
    t.diagnostic(`poll in flight since ${signalledAt - pollStartedAt} ms before SIGTERM; C answered after ${answeredAt - signalledAt} ms; exit after ${exitedAt - signalledAt} ms`);
    assert.deepEqual(exit, { code: 0, signal: null }, service.output());

    // Subscriptions ended by the drain: the SSE stream completes, the WebSocket closes with 1001.
    const sseEnd = await sse.ended;
    assert.equal(sseEnd.error, undefined, `SSE stream broke: ${sseEnd.error}`);
    assert.equal(sseEnd.complete, true, `SSE stream ended without 'complete': ${JSON.stringify(sse.events)}`);
    assert.deepEqual(sse.events.filter((e) => e.event === 'next').map((e) => (e.data as { data: { videoTaskUpdated: { status: string } } }).data.videoTaskUpdated.status), ['QUEUED']);
    await waitFor('the WebSocket to be closed', () => wsClosed, 2_000);
    assert.equal(wsClosed!.code, 1001, `WebSocket closed with ${wsClosed!.code} ${wsClosed!.reason}`);
    const wsOutcomes = await Promise.all(wsEnds);
    t.diagnostic(`WebSocket subscriptions ended: ${wsOutcomes.join(', ')}; closed ${wsClosed!.code} "${wsClosed!.reason}"`);
    assert.deepEqual(wsEventsB.map((e) => e.status), ['QUEUED'], 'B never changed');

    // The log tells the story, ending with 'stopped'.
    const messages = service.logs.map((l) => l.msg);
    assert.ok(messages.includes('stopping'), 'logged stopping');
    assert.equal(messages.at(-1), 'stopped', `last log line: ${messages.at(-1)}`);

    // SQLite flushed: the WAL was checkpointed (truncated) before the file was closed.
    const wal = `${file}-wal`;
    assert.ok(!existsSync(wal) || statSync(wal).size === 0, `WAL left with ${existsSync(wal) ? statSync(wal).size : 0} bytes`);

    // The poll in flight at the signal was finished and its answer written: A is COMPLETED, released.
    const aAfter = readRow(file, taskRowId(a.id))!;
    assert.equal(aAfter.status, 'COMPLETED', JSON.stringify(aAfter));
    assert.equal(aAfter.progress, 100);
    assert.equal(aAfter.lease_owner, null, 'the lease was released with the write');
    assert.ok(aAfter.updated_at >= signalledAt, 'written after the signal, by the drain');
    assert.ok(exitedAt - pollStartedAt >= LATENCY_MS - 100, 'the process waited for the poll\'s answer');
    // No poll was started after the signal: the one in flight was the last.
    assert.equal(sandbox.stats().requests.query, queriesAtA + 1, 'no new poll during the drain');
    // The request in flight left its task as answered; B stays as it was, for the next process to poll.
    const cRow = readRow(file, taskRowId(c.task.id))!;
    assert.equal(cRow.upstream_task_id, c.task.upstreamTaskId);
    const bAfter = readRow(file, taskRowId(b.id))!;
    assert.equal(bAfter.status, 'QUEUED');
    assert.equal(bAfter.lease_owner, null);
  });

  it('a second signal during the drain exits at once, without waiting for it', async (t) => {
    const { service } = await start();
    const { sandbox } = sandboxServer;
    const slow = 5_000;
    await create(service, `shutdown ${randomUUID().slice(0, 8)}: second signal`);
    const queries = sandbox.stats().requests.query;
    sandbox.setFaults({ latencyMs: slow });
    await waitFor('a poll in flight', () => sandbox.stats().requests.query > queries, 5_000, 5);

    const signalledAt = Date.now();
    service.kill('SIGTERM');
    await waitFor('the drain to begin', () => service.logs.some((l) => l.msg === 'stopping'), 2_000, 5);
    const secondAt = Date.now();
    service.kill('SIGTERM');
    const exit = await service.exited;
    const exitedAt = Date.now();
    t.diagnostic(`second SIGTERM ${secondAt - signalledAt} ms after the first; exit ${exitedAt - secondAt} ms after the second`);
    assert.equal(exit.signal, null);
    assert.notEqual(exit.code, 0, 'an interrupted drain is not a clean exit');
    assert.ok(exitedAt - secondAt < 1_000, `took ${exitedAt - secondAt} ms after the second signal`);
    assert.ok(exitedAt - signalledAt < slow - 1_000, 'did not wait for the poll in flight');
    assert.ok(!service.logs.some((l) => l.msg === 'stopped'), 'the drain did not finish');
  });
});
