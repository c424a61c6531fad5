// What an operator sees: /healthz (the process is up), /readyz (database and poller healthy, not
// shutting down), Prometheus metrics at /metrics, and structured JSON logs in which one request id
// follows a task from the mutation to its upstream submission and every later poll.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startHarness, type Harness } from './support/harness.ts';
import { startRecordedSandbox, type RecordedSandbox } from './support/custom-app.ts';
import { postGraphql, taskRowId, waitFor } from './support/hardening.ts';
import { startServiceProcess, tempDatabase, type LogLine, type ServiceProcess } from './support/service-process.ts';

const MODEL = 'doubao-seedance-1-0-pro-fast';
const CREATE = `mutation ObsCreate($input: CreateVideoTaskInput!) {
  createVideoTask(input: $input) { task { id status upstreamTaskId } userErrors { field code message } }
}`;
const STATUS = `query ObsStatus($id: ID!) { videoTask(id: $id) { status } }`;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text exposition format (0.0.4) strictly: every line is a HELP or TYPE
 * comment or a sample `name{label="value",...} number`, and every sample belongs to a declared family.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string>; helps: Set<string> } {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      if (comment[1] === 'TYPE') {
        assert.match(comment[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        types.set(comment[2]!, comment[3]!);
      } else {
        helps.add(comment[2]!);
      }
      continue;
    }
    // Values as Go's ParseFloat reads them (Prometheus does): numbers, and Inf/NaN in any case.
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([+-]?(?:[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[Ii][Nn][Ff]|[Nn][Aa][Nn]))$/.exec(line);
    assert.ok(sample, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (sample[2]) {
      const pairs = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/g;
      let consumed = 0;
      for (const match of sample[2].matchAll(pairs)) {
        labels[match[1]!] = match[2]!;
        consumed += match[0].length;
      }
      assert.equal(consumed, sample[2].length, `malformed labels in ${JSON.stringify(line)}`);
    }
    const text = sample[3]!.toLowerCase();
    const value = text.endsWith('inf') ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text);
    assert.ok(!Number.isNaN(value) || text.endsWith('nan'), line);
    samples.push({ name: sample[1]!, labels, value });
    const family = sample[1]!.replace(/_(bucket|sum|count|total|created)$/, '');
    assert.ok(types.has(sample[1]!) || types.has(family), `sample of an undeclared family: ${line}`);
  }
  return { samples, types, helps };
}

/** The samples named `name` whose labels include `labels`. */
const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) => find(samples, name, labels).reduce((n, s) => n + s.value, 0);

describe('health, readiness and metrics', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { WS_KEEPALIVE_MS: '1000' } });
  });
  after(async () => { await h.stop(); });

  const metrics = async () => {
    const response = await fetch(`${h.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parseExposition(await response.text());
  };

  it('/healthz answers 200 while the process is up, with a request id', async () => {
    const response = await fetch(`${h.url}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok' });
    assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('/readyz is 200 with its checks, 503 while the poller is stopped, and 200 again once it runs', async () => {
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { database: true, durable: true, poller: true, accepting: true } });

    await h.app.poller.stop();
    try {
      const stopped = await fetch(`${h.url}/readyz`);
      assert.equal(stopped.status, 503);
      const body = await stopped.json() as { status: string; checks: Record<string, boolean> };
      assert.equal(body.status, 'not ready');
      assert.deepEqual(body.checks, { database: true, durable: true, poller: false, accepting: true });
      // The process itself is still up.
      assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    } finally {
      h.app.poller.start();
    }
    await waitFor('/readyz to recover', async () => (await fetch(`${h.url}/readyz`)).status === 200, 5_000);
  });

  it('/metrics: HTTP, GraphQL, subscriptions, tasks, upstream calls and errors, poll lag and archive outcomes, in Prometheus text format', async (t) => {
    const tag = randomUUID().slice(0, 8);
    // HTTP: a 200 and a 404.
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${h.url}/no-such-path`)).status, 404);

    // A task, polled to the end (poll lag is observed at each claim).
    const created = await postGraphql(h.url, CREATE, { input: { model: MODEL, prompt: `metrics ${tag}` } });
    const task = created.body.data.createVideoTask.task;
    assert.ok(task, created.raw);
    await waitFor('the task to complete', async () => (await postGraphql(h.url, STATUS, { id: task.id })).body.data.videoTask.status === 'COMPLETED', 10_000);

    // Errors: one in execution (an id that is no global id), one in validation (no such field).
    const broken = await postGraphql(h.url, `query ObsBroken { videoTask(id: "garbage") { id } }`);
    assert.ok(broken.body.errors?.length, broken.raw);
    const invalid = await postGraphql(h.url, `query ObsInvalid { noSuchField }`);
    assert.ok(invalid.body.errors?.length, invalid.raw);

    // An upstream error: the sandbox answers the next create with a 503.
    h.sandbox!.queueErrors('create', 503, 1);
    const refused = await postGraphql(h.url, CREATE, { input: { model: MODEL, prompt: `metrics ${tag} refused` } });
    assert.equal(refused.body.data.createVideoTask.task, null);
    assert.ok(refused.body.data.createVideoTask.userErrors.length >= 1);

    const { samples, types, helps } = await metrics();

    assert.equal(types.get('http_request_duration_seconds'), 'histogram');
    assert.ok(total(samples, 'http_request_duration_seconds_count', { route: 'healthz', method: 'GET', status: '200' }) >= 1);
    assert.ok(total(samples, 'http_request_duration_seconds_count', { status: '404' }) >= 1, 'a 404 is counted under its status');
    assert.ok(total(samples, 'http_request_duration_seconds_count', { route: 'graphql', method: 'POST', status: '200' }) >= 1);

    assert.equal(types.get('graphql_envelop_phase_execute'), 'histogram');
    assert.ok(total(samples, 'graphql_envelop_phase_execute_count', { operationName: 'ObsCreate', operationType: 'mutation' }) >= 2);
    assert.equal(types.get('graphql_envelop_error_result'), 'counter');
    assert.ok(total(samples, 'graphql_envelop_error_result', { operationName: 'ObsBroken', phase: 'execute', path: 'videoTask' }) >= 1);
    assert.ok(total(samples, 'graphql_envelop_error_result', { phase: 'validate' }) >= 1);

    assert.equal(types.get('video_tasks'), 'gauge');
    const byStatus = h.app.db.$client.prepare('SELECT status, count(*) AS n FROM video_tasks GROUP BY status').all() as { status: string; n: number }[];
    for (const { status, n } of byStatus) assert.equal(total(samples, 'video_tasks', { status }), n, `video_tasks{status="${status}"}`);
    assert.ok(total(samples, 'video_tasks', { status: 'COMPLETED' }) >= 1);

    assert.equal(types.get('upstream_request_duration_seconds'), 'histogram');
    assert.ok(total(samples, 'upstream_request_duration_seconds_count', { provider: 'sandbox', method: 'POST', status: '200' }) >= 1);
    assert.ok(total(samples, 'upstream_request_duration_seconds_count', { provider: 'sandbox', method: 'GET', status: '200' }) >= 1);
    assert.equal(total(samples, 'upstream_request_duration_seconds_count', { provider: 'sandbox', method: 'POST', status: '503' }), 1);
    assert.equal(types.get('upstream_errors_total'), 'counter');
    assert.equal(total(samples, 'upstream_errors_total', { provider: 'sandbox', kind: '503' }), 1);

    assert.equal(types.get('poll_lag_seconds'), 'histogram');
    assert.ok(total(samples, 'poll_lag_seconds_count') >= 1, 'poll lag observed');

    assert.equal(types.get('archive_outcomes_total'), 'counter');
    assert.ok(helps.has('archive_outcomes_total'));

    assert.equal(types.get('graphql_open_subscriptions'), 'gauge');
    t.diagnostic(`${samples.length} samples in ${types.size} families`);
  });

  it('graphql_open_subscriptions follows subscriptions over WebSocket and SSE', async () => {
    const open = async () => total((await metrics()).samples, 'graphql_open_subscriptions');
    assert.equal(await open(), 0);

    const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    const unsubscribe = client.subscribe({ query: 'subscription { videoTasksUpdated { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    const sseAbort = new AbortController();
    try {
      await waitFor('the WebSocket subscription to count', async () => (await open()) === 1, 5_000);
      const sse = await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: 'subscription { videoTasksUpdated { id } }' }),
        signal: sseAbort.signal,
      });
      assert.equal(sse.status, 200);
      await waitFor('the SSE subscription to count', async () => (await open()) === 2, 5_000);
    } finally {
      unsubscribe();
      sseAbort.abort();
      await client.dispose();
    }
    await waitFor('both to be gone', async () => (await open()) === 0, 5_000);
  });

  it('over WebSocket, each videoTaskUpdated event after the first is timed as an execution of the subscription', async () => {
    const executions = async () => total((await metrics()).samples, 'graphql_envelop_phase_execute_count', { operationType: 'subscription' });
    const { data } = await h.gql(CREATE, { input: { model: MODEL, prompt: 'Metered events' } });
    const id: string = data.createVideoTask.task.id;
    // Only this test's events change the task from here (last in this describe: nothing else needs the poller).
    await h.app.poller.stop();
    const before = await executions();
    const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    const results: unknown[] = [];
    const unsubscribe = client.subscribe({ query: 'subscription($id: ID!) { videoTaskUpdated(id: $id) { progress } }', variables: { id } }, {
      next: (result) => { results.push(result); }, error: () => {}, complete: () => {},
    });
    try {
      await waitFor('the current state', async () => results.length === 1, 5_000);
      const row = h.app.tasks.get(taskRowId(id))!;
      for (let i = 1; i <= 3; i++) h.app.events.publish({ ...row, status: 'IN_PROGRESS', version: row.version + 1000 + i, progress: 10 * i });
      await waitFor('three events', async () => results.length === 4, 5_000);
      assert.equal(await executions() - before, 3);
    } finally {
      unsubscribe();
      await client.dispose();
    }
  });
});

describe('request ids in logs and upstream calls', () => {
  let upstream: RecordedSandbox;
  let service: ServiceProcess;
  const database = tempDatabase();

  before(async () => {
    upstream = await startRecordedSandbox({ timeScale: 0.01 });
    // The real service (src/main.ts and its pino logger), with upstream calls logged (debug).
    service = await startServiceProcess({ databaseFile: database.file, upstreamUrl: upstream.url, env: { LOG_LEVEL: 'debug', UPSTREAM_TIMEOUT_MS: '4000', POLL_LEASE_MS: '5000' } });
  });
  after(async () => {
    await service?.stop();
    await upstream?.close();
    database.remove();
  });

  async function createWithId(requestId: string, prompt: string) {
    const response = await postGraphql(service.url, CREATE, { input: { model: MODEL, prompt } }, { 'x-request-id': requestId });
    assert.equal(response.status, 200, response.raw);
    assert.equal(response.headers.get('x-request-id'), requestId, 'the response echoes the request id');
    const task = response.body.data.createVideoTask.task as { id: string; upstreamTaskId: string };
    assert.ok(task?.upstreamTaskId, response.raw);
    return { id: taskRowId(task.id), globalId: task.id, upstreamTaskId: task.upstreamTaskId };
  }

  it('follows a task from the mutation to its submission and every later poll, in logs and upstream headers', async (t) => {
    const tag = randomUUID().slice(0, 8);
    // Two tasks at once, with different ids: neither's id may leak into the other's lines.
    const [mine, other] = await Promise.all([
      createWithId('test-req-123', `request id ${tag} mine`),
      createWithId('other-req-456', `request id ${tag} other`),
    ]);
    for (const task of [mine, other]) {
      await waitFor('the task to complete', async () => (await postGraphql(service.url, STATUS, { id: task.globalId })).body.data.videoTask.status === 'COMPLETED', 15_000);
    }
    const logs: LogLine[] = [...service.logs];
    const upstreamCall = (line: LogLine) => line.upstreamCall as { method: string; url: string } | undefined;
    const about = (task: { upstreamTaskId: string }, method: string) => (line: LogLine) =>
      line.msg === 'upstream call' && upstreamCall(line)?.method === method
      && (method === 'POST' || upstreamCall(line)!.url.endsWith(`/${task.upstreamTaskId}`));

    for (const [task, requestId] of [[mine, 'test-req-123'], [other, 'other-req-456']] as const) {
      // The mutation: GraphQL's own lines while serving it, and the submission.
      const mutationLines = logs.filter((l) => l.requestId === requestId && l.msg === 'Processing GraphQL Parameters');
      assert.ok(mutationLines.length >= 1, `${requestId}: the mutation's lines carry its id`);
      const submitted = logs.filter((l) => l.msg === 'task submitted' && l.taskId === task.id);
      assert.equal(submitted.length, 1);
      assert.equal(submitted[0]!.requestId, requestId);
      // The upstream submission.
      const posts = logs.filter((l) => l.msg === 'upstream call' && upstreamCall(l)?.method === 'POST' && l.requestId === requestId);
      assert.equal(posts.length, 1, `${requestId}: one upstream submission logged with its id`);
      // Every later poll of the task, in the poller (not in the request): each carries the id.
      const polls = logs.filter(about(task, 'GET'));
      assert.ok(polls.length >= 1, `${requestId}: polls logged`);
      for (const poll of polls) {
        assert.equal(poll.requestId, requestId, `poll line ${JSON.stringify(poll)}`);
        assert.equal(poll.taskId, task.id);
      }
      // Every line about the task carries its request's id, and no other.
      for (const line of logs.filter((l) => l.taskId === task.id)) assert.equal(line.requestId, requestId, JSON.stringify(line));
      t.diagnostic(`${requestId}: ${logs.filter((l) => l.requestId === requestId).length} log lines, ${polls.length} polls`);
    }
    assert.ok(logs.every((l) => typeof l.level === 'number' && typeof l.time === 'number' && l.service === 'seedance-graphql'), 'structured JSON lines');

    // The provider received the id too: on the submission and on each poll.
    for (const [task, requestId] of [[mine, 'test-req-123'], [other, 'other-req-456']] as const) {
      const creates = upstream.received.filter((r) => r.method === 'POST' && r.headers['x-request-id'] === requestId);
      assert.equal(creates.length, 1, `${requestId}: the sandbox got the submission with x-request-id`);
      const queries = upstream.received.filter((r) => r.method === 'GET' && r.path.endsWith(`/${task.upstreamTaskId}`));
      assert.ok(queries.length >= 1);
      for (const query of queries) assert.equal(query.headers['x-request-id'], requestId, `poll ${query.path}`);
    }
  });

  it('makes an id for a request without one, and replaces one that is not a sane token', async () => {
    const plain = await postGraphql(service.url, '{ __typename }');
    const made = plain.headers.get('x-request-id') ?? '';
    assert.match(made, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    for (const bad of ['has spaces in it', 'x'.repeat(65), 'quote"s', '{"json":1}']) {
      const response = await postGraphql(service.url, '{ __typename }', undefined, { 'x-request-id': bad });
      const id = response.headers.get('x-request-id') ?? '';
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/, bad);
    }
    const kept = await postGraphql(service.url, '{ __typename }', undefined, { 'x-request-id': 'abc.DEF:123_-x' });
    assert.equal(kept.headers.get('x-request-id'), 'abc.DEF:123_-x');
  });
});
