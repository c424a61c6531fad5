// Per-key limits and graphql-armor ("Hardening"), each over HTTP and over WebSocket where it applies:
// requests per minute (a mutation counts once per root field, aliases included), tasks created per
// minute, unfinished tasks at once; depth, aliases, directives, tokens and cost; field suggestions,
// masked errors, GraphiQL and introspection switches; and the WebSocket's own limits (payload size,
// subscriptions per connection, connection-init timeout, connections per key).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildClientSchema, getIntrospectionQuery } from 'graphql';
import { startHarness, type Harness } from './support/harness.ts';
import {
  eventually, post, rawConnect, sleep, wsClient, wsRun, wsSubscribe, type GqlBody, type GqlError, type HttpResult, type WsOutcome,
} from './support/hardening-clients.ts';

const FAST = 'doubao-seedance-1-0-pro-fast';
const SLOW = 'doubao-seedance-1-0-pro-quality';
const MODELS = '{ videoModels { id } }';
const WATCH_ALL = 'subscription { videoTasksUpdated { id status } }';
const CANCEL = `mutation($id: ID!) { cancelVideoTask(id: $id) { task { id status } userErrors { code } } }`;
const PAYLOAD = 'task { id status } userErrors { field code message retryAfterSeconds }';

/** One mutation with `n` aliased createVideoTask calls: c0, c1, ... */
function aliasedCreates(n: number, prompt = 'Aliased'): string {
  const fields = Array.from({ length: n }, (_, i) => `c${i}: createVideoTask(input: { model: "${FAST}", prompt: "${prompt} ${i}" }) { ${PAYLOAD} }`);
  return `mutation { ${fields.join('\n')} }`;
}

const codes = (errors: readonly GqlError[] | undefined) => (errors ?? []).map((e) => e.extensions?.code);
const countRows = (h: Harness) => (h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n;

/** The errors of an operation run over graphql-ws: its `error` message, or its results' errors. */
const wsErrors = (outcome: WsOutcome): GqlError[] => [...(outcome.errors ?? []), ...outcome.results.flatMap((r) => r.errors ?? [])];

function assertRateLimitedHttp(result: HttpResult, maxSeconds: number): void {
  assert.equal(result.status, 429, result.text);
  assert.equal(result.body.data ?? null, null);
  const [error] = result.body.errors ?? [];
  assert.equal(error?.extensions?.code, 'RATE_LIMITED', result.text);
  const seconds = error!.extensions!.retryAfterSeconds;
  assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= maxSeconds, `retryAfterSeconds ${seconds}`);
  assert.equal(result.headers.get('retry-after'), String(seconds));
  assert.match(error!.message, /retry in \d+ s/);
}

function assertRateLimitedWs(outcome: WsOutcome, maxSeconds: number): void {
  const [error, ...rest] = wsErrors(outcome);
  assert.equal(rest.length, 0, JSON.stringify(outcome));
  assert.equal(error?.extensions?.code, 'RATE_LIMITED', JSON.stringify(outcome));
  const seconds = error!.extensions!.retryAfterSeconds;
  assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= maxSeconds, `retryAfterSeconds ${seconds}`);
  assert.ok(outcome.results.every((r) => r.data == null));
}

describe('requests per minute, per key (RATE_LIMIT_REQUESTS_PER_MINUTE=3)', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ env: { ANONYMOUS_ACCESS: 'false', RATE_LIMIT_REQUESTS_PER_MINUTE: '3' } }); });
  after(async () => { await h.stop(); });

  it('over HTTP: the fourth request is 429 RATE_LIMITED with Retry-After and retryAfterSeconds; another key is unaffected', async () => {
    const a = h.app.apiKeys.create('http-a', 'client').key;
    const b = h.app.apiKeys.create('http-b', 'client').key;
    for (let i = 0; i < 3; i++) assert.equal((await post(h.url, MODELS, undefined, { key: a })).status, 200, `request ${i + 1}`);
    // 3 per minute: one token every 20 s.
    assertRateLimitedHttp(await post(h.url, MODELS, undefined, { key: a }), 20);
    assertRateLimitedHttp(await post(h.url, CANCEL, { id: 'VmlkZW9UYXNrOng=' }, { key: a }), 20);
    const other = await post(h.url, MODELS, undefined, { key: b });
    assert.equal(other.status, 200);
    assert.ok(other.body.data.videoModels.length > 0);
  });

  it('over WebSocket: the same typed error in the operation result; the connection stays usable; the key\'s budget is shared with HTTP', async () => {
    const c = h.app.apiKeys.create('ws-c', 'client').key;
    const d = h.app.apiKeys.create('ws-d', 'client').key;
    const client = wsClient(h.url, c);
    const other = wsClient(h.url, d);
    try {
      for (let i = 0; i < 3; i++) {
        const outcome = await wsRun(client, MODELS);
        assert.ok(outcome.results[0]?.data?.videoModels.length > 0, `operation ${i + 1}: ${JSON.stringify(outcome)}`);
      }
      assertRateLimitedWs(await wsRun(client, MODELS), 20);
      // Subscriptions count too.
      assertRateLimitedWs(await wsRun(client, WATCH_ALL), 20);
      assertRateLimitedHttp(await post(h.url, MODELS, undefined, { key: c }), 20);
      const unaffected = await wsRun(other, MODELS);
      assert.ok(unaffected.results[0]?.data?.videoModels.length > 0, 'another key is unaffected');
    } finally {
      await client.dispose();
      await other.dispose();
    }
  });

  it('over WebSocket: a subscription is charged once, as it starts, and not for each of its events', async () => {
    const e = h.app.apiKeys.create('ws-e', 'client').key;
    const created = await post(h.url, aliasedCreates(1, 'Charged once'), undefined, { key: e });
    const id: string = created.body.data.c0.task.id;
    const client = wsClient(h.url, e);
    try {
      const live = wsSubscribe(client, 'subscription($id: ID!) { videoTaskUpdated(id: $id) { id progress } }', { id });
      await eventually(() => live.results.length === 1, 'the current state arrives');
      // Newer versions than the poller will write, so that only these five are delivered.
      const row = h.app.tasks.get(Buffer.from(id, 'base64').toString().replace(/^VideoTask:/, ''))!;
      for (let i = 1; i <= 5; i++) h.app.events.publish({ ...row, status: 'IN_PROGRESS', version: row.version + 1000 + i, progress: 10 * i });
      await eventually(() => live.results.length === 6, 'five events arrive');
      assert.deepEqual(live.results.slice(1).map((r) => [r.errors, r.data?.videoTaskUpdated.progress]), [10, 20, 30, 40, 50].map((p) => [undefined, p]));
      // The create and the subscription took two of the three requests.
      assert.equal((await post(h.url, MODELS, undefined, { key: e })).status, 200);
      assertRateLimitedHttp(await post(h.url, MODELS, undefined, { key: e }), 20);
      live.stop();
    } finally {
      await client.dispose();
    }
  });
});

describe('aliased mutations count one by one (RATE_LIMIT_REQUESTS_PER_MINUTE=5)', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ env: { ANONYMOUS_ACCESS: 'false', RATE_LIMIT_REQUESTS_PER_MINUTE: '5' } }); });
  after(async () => { await h.stop(); });

  it('over HTTP: three aliases use three tokens; three more are refused whole; two more fit exactly; then nothing', async () => {
    const key = h.app.apiKeys.create('aliases-http', 'client').key;
    const first = await post(h.url, aliasedCreates(3), undefined, { key });
    assert.equal(first.status, 200, first.text);
    for (let i = 0; i < 3; i++) assert.deepEqual(first.body.data[`c${i}`].userErrors, []);
    const rows = countRows(h);
    const submissions = h.sandbox!.stats().requests.create;

    assertRateLimitedHttp(await post(h.url, aliasedCreates(3), undefined, { key }), 60);
    assert.equal(countRows(h), rows, 'a refused request creates nothing');
    assert.equal(h.sandbox!.stats().requests.create, submissions);

    const exact = await post(h.url, aliasedCreates(2), undefined, { key });
    assert.equal(exact.status, 200, exact.text);
    assert.equal(countRows(h), rows + 2);
    assertRateLimitedHttp(await post(h.url, MODELS, undefined, { key }), 12);
  });

  it('over WebSocket: aliases inside fragments count too, and a request above the budget is refused whole', async () => {
    const key = h.app.apiKeys.create('aliases-ws', 'client').key;
    const client = wsClient(h.url, key);
    try {
      const rows = countRows(h);
      assertRateLimitedWs(await wsRun(client, aliasedCreates(6)), 60);
      assert.equal(countRows(h), rows);
      const create = (alias: string) => `${alias}: createVideoTask(input: { model: "${FAST}", prompt: "${alias}" }) { ${PAYLOAD} }`;
      const fragmented = `mutation { ...Two ... on Mutation { ${create('c')} } ${create('d')} __typename }
        fragment Two on Mutation { ${create('a')} ${create('b')} }`;
      const outcome = await wsRun(client, fragmented);
      assert.equal(wsErrors(outcome).length, 0, JSON.stringify(outcome));
      assert.equal(countRows(h), rows + 4);
      // 5 - 4 = 1 token left: one query passes, the next is refused.
      assert.ok((await wsRun(client, MODELS)).results[0]?.data, 'the fifth token');
      assertRateLimitedWs(await wsRun(client, MODELS), 12);
    } finally {
      await client.dispose();
    }
  });

  it('batched requests are not accepted, so they cannot bypass the count', async () => {
    const key = h.app.apiKeys.create('batch', 'client').key;
    const rows = countRows(h);
    const response = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(Array.from({ length: 6 }, () => ({ query: aliasedCreates(1) }))),
    });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /Batching is not supported/);
    assert.equal(countRows(h), rows);
  });
});

describe('tasks created per minute, per key (RATE_LIMIT_TASKS_PER_MINUTE=2)', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ env: { ANONYMOUS_ACCESS: 'false', RATE_LIMIT_TASKS_PER_MINUTE: '2' } }); });
  after(async () => { await h.stop(); });

  function assertThirdRefused(data: Record<string, { task: { id: string } | null; userErrors: { field: string[]; code: string; retryAfterSeconds: number | null }[] }>): void {
    assert.deepEqual(data.c0!.userErrors, []);
    assert.deepEqual(data.c1!.userErrors, []);
    assert.ok(data.c0!.task && data.c1!.task);
    assert.equal(data.c2!.task, null);
    const [error] = data.c2!.userErrors;
    assert.equal(error?.code, 'RATE_LIMITED');
    assert.deepEqual(error.field, ['input']);
    // 2 per minute: the next one in at most 30 s.
    assert.ok(Number.isInteger(error.retryAfterSeconds) && error.retryAfterSeconds! >= 1 && error.retryAfterSeconds! <= 30, String(error.retryAfterSeconds));
  }

  it('over HTTP: of three aliased createVideoTask, the third is refused with RATE_LIMITED and retryAfterSeconds', async () => {
    const key = h.app.apiKeys.create('tasks-http', 'client').key;
    const rows = countRows(h);
    const { body } = await post(h.url, aliasedCreates(3), undefined, { key });
    assert.equal(body.errors, undefined);
    assertThirdRefused(body.data);
    assert.equal(countRows(h), rows + 2, 'no row for the refused one');
    const again = await post(h.url, aliasedCreates(1), undefined, { key });
    assert.equal(again.body.data.c0.userErrors[0].code, 'RATE_LIMITED');
    const other = await post(h.url, aliasedCreates(1), undefined, { key: h.app.apiKeys.create('tasks-other', 'client').key });
    assert.deepEqual(other.body.data.c0.userErrors, [], 'another key is unaffected');
  });

  it('over WebSocket: the same', async () => {
    const client = wsClient(h.url, h.app.apiKeys.create('tasks-ws', 'client').key);
    try {
      const outcome = await wsRun(client, aliasedCreates(3));
      assert.equal(wsErrors(outcome).length, 0, JSON.stringify(outcome));
      assertThirdRefused(outcome.results[0]!.data);
    } finally {
      await client.dispose();
    }
  });
});

describe('unfinished tasks at once, per key (MAX_UNFINISHED_TASKS_PER_KEY=2, slow sandbox)', () => {
  let h: Harness;
  // timeScale 1: tasks take 40 s and more, so they stay unfinished throughout.
  before(async () => { h = await startHarness({ env: { ANONYMOUS_ACCESS: 'false', MAX_UNFINISHED_TASKS_PER_KEY: '2' }, sandbox: { timeScale: 1 } }); });
  after(async () => { await h.stop(); });

  const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { ${PAYLOAD} } }`;
  type Run = (query: string, variables?: Record<string, unknown>) => Promise<GqlBody>;

  async function exercise(run: Run): Promise<void> {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { data } = await run(CREATE, { input: { model: SLOW, prompt: `Slow ${i}` } });
      assert.deepEqual(data.createVideoTask.userErrors, []);
      ids.push(data.createVideoTask.task.id);
    }
    const third = (await run(CREATE, { input: { model: SLOW, prompt: 'One too many' } })).data.createVideoTask;
    assert.equal(third.task, null);
    assert.equal(third.userErrors[0].code, 'TOO_MANY_UNFINISHED_TASKS');
    assert.match(third.userErrors[0].message, /cancel one/);
    assert.ok(third.userErrors[0].retryAfterSeconds >= 1);
    const cancelled = (await run(CANCEL, { id: ids[0] })).data.cancelVideoTask;
    assert.equal(cancelled.task.status, 'CANCELLED');
    const after = (await run(CREATE, { input: { model: SLOW, prompt: 'Room again' } })).data.createVideoTask;
    assert.deepEqual(after.userErrors, []);
    assert.ok(after.task.id);
  }

  it('over HTTP: the third create gets TOO_MANY_UNFINISHED_TASKS; after cancelling one, creation works again', async () => {
    const key = h.app.apiKeys.create('unfinished-http', 'client').key;
    await exercise(async (query, variables) => (await post(h.url, query, variables, { key })).body);
    const other = await post(h.url, CREATE, { input: { model: SLOW, prompt: 'Another key' } }, { key: h.app.apiKeys.create('unfinished-other', 'client').key });
    assert.deepEqual(other.body.data.createVideoTask.userErrors, [], 'another key is unaffected');
  });

  it('over WebSocket: the same', async () => {
    const client = wsClient(h.url, h.app.apiKeys.create('unfinished-ws', 'client').key);
    try {
      await exercise(async (query, variables) => {
        const outcome = await wsRun(client, query, variables);
        assert.equal(outcome.results.length, 1, JSON.stringify(outcome));
        return outcome.results[0]!;
      });
    } finally {
      await client.dispose();
    }
  });
});

describe('graphql-armor on both transports (low GRAPHQL_MAX_* values)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: {
      GRAPHQL_MAX_DEPTH: '4', GRAPHQL_MAX_ALIASES: '2', GRAPHQL_MAX_DIRECTIVES: '2', GRAPHQL_MAX_TOKENS: '100', GRAPHQL_MAX_COST: '100',
    } });
  });
  after(async () => { await h.stop(); });

  const cases = [
    {
      limit: 'depth',
      refused: '{ videoTasks { edges { node { error { code } } } } }',
      accepted: '{ videoTasks { edges { node { id } } } }',
      message: /depth limit of 4 exceeded, found 5/,
    },
    {
      limit: 'aliases',
      refused: '{ a: videoModels { id } b: videoModels { id } c: videoModels { id } }',
      accepted: '{ a: videoModels { id } b: videoModels { id } }',
      message: /Aliases limit of 2 exceeded, found 3/,
    },
    {
      limit: 'directives',
      refused: '{ videoModels @include(if: true) @skip(if: false) { id @include(if: true) } }',
      accepted: '{ videoModels @include(if: true) @skip(if: false) { id } }',
      message: /Directives limit of 2 exceeded, found 3/,
    },
    {
      limit: 'tokens',
      refused: `{ ${'videoModels { id } '.repeat(30)}}`,
      accepted: `{ ${'videoModels { id } '.repeat(20)}}`,
      message: /Token limit of 100 exceeded/,
    },
    {
      limit: 'cost',
      refused: '{ videoTasks(first: 50) { edges { node { id } } } }',
      accepted: '{ videoTasks { edges { node { id status progress } } } }',
      message: /Cost limit of 100 exceeded/,
    },
  ];

  for (const { limit, refused, accepted, message } of cases) {
    it(`${limit}: refused with a clear error over HTTP and over WebSocket, which keeps the connection open`, async () => {
      const overHttp = await post(h.url, refused);
      assert.equal(overHttp.body.data ?? null, null, overHttp.text);
      assert.match(overHttp.body.errors?.[0]?.message ?? '', message);
      const fine = await post(h.url, accepted);
      assert.equal(fine.body.errors, undefined, fine.text);

      const client = wsClient(h.url);
      try {
        const overWs = await wsRun(client, refused);
        assert.equal(overWs.failure, undefined, `the connection was closed: ${JSON.stringify(overWs.failure)}`);
        assert.match(wsErrors(overWs)[0]?.message ?? '', message, JSON.stringify(overWs));
        assert.ok(overWs.results.every((r) => r.data == null));
        const next = await wsRun(client, accepted);
        assert.equal(wsErrors(next).length, 0, JSON.stringify(next));
        assert.ok(next.results[0]?.data, 'the same connection still serves');
      } finally {
        await client.dispose();
      }
    });
  }

  it('a syntax error over WebSocket is that operation\'s error, not the connection\'s', async () => {
    const client = wsClient(h.url);
    try {
      const broken = await wsRun(client, '{ videoModels { id ');
      assert.equal(broken.failure, undefined, JSON.stringify(broken.failure));
      assert.match(wsErrors(broken)[0]?.message ?? '', /Syntax Error/);
      assert.ok((await wsRun(client, MODELS)).results[0]?.data);
    } finally {
      await client.dispose();
    }
  });
});

describe('defaults: GraphiQL\'s introspection, hidden suggestions, masked errors', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(async () => { await h.stop(); });

  // What GraphiQL sends (every option on: the largest form of the query).
  const INTROSPECTION = getIntrospectionQuery({
    descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true,
  });

  it('GraphiQL\'s introspection query passes the default limits, over HTTP and WebSocket', async () => {
    assert.equal(h.config.NODE_ENV, 'production');
    const overHttp = await post(h.url, INTROSPECTION);
    assert.equal(overHttp.body.errors, undefined, overHttp.text.slice(0, 500));
    const schema = buildClientSchema(overHttp.body.data);
    assert.ok(schema.getQueryType()?.getFields().videoTasks);
    const client = wsClient(h.url);
    try {
      const overWs = await wsRun(client, INTROSPECTION);
      assert.equal(wsErrors(overWs).length, 0, JSON.stringify(overWs).slice(0, 500));
      assert.ok(overWs.results[0]?.data?.__schema);
    } finally {
      await client.dispose();
    }
  });

  it('field suggestions are absent outside development (NODE_ENV defaults to production), over HTTP and WebSocket', async () => {
    const overHttp = await post(h.url, '{ videoModel { id } }');
    assert.match(overHttp.body.errors?.[0]?.message ?? '', /Cannot query field "videoModel"/);
    assert.doesNotMatch(overHttp.text, /Did you mean|videoModels/);
    const client = wsClient(h.url);
    try {
      const overWs = await wsRun(client, '{ videoModel { id } }');
      assert.match(wsErrors(overWs)[0]?.message ?? '', /Cannot query field "videoModel"/);
      assert.doesNotMatch(JSON.stringify(overWs), /Did you mean|videoModels/);
    } finally {
      await client.dispose();
    }
  });

  it('unexpected errors are masked ("Unexpected error."), over HTTP and WebSocket (last: it breaks the database)', async () => {
    h.app.db.$client.exec('DROP TABLE video_tasks');
    const query = '{ videoTasks(first: 1) { edges { cursor } } }';
    const overHttp = await post(h.url, query);
    assert.equal(overHttp.body.errors?.[0]?.message, 'Unexpected error.');
    assert.doesNotMatch(overHttp.text, /video_tasks|SQLITE|no such table/);
    const client = wsClient(h.url);
    try {
      const overWs = await wsRun(client, query);
      assert.equal(wsErrors(overWs)[0]?.message, 'Unexpected error.', JSON.stringify(overWs));
      assert.doesNotMatch(JSON.stringify(overWs), /video_tasks|SQLITE|no such table/);
    } finally {
      await client.dispose();
    }
  });
});

describe('NODE_ENV=development', () => {
  it('shows field suggestions over HTTP and WebSocket', async () => {
    const h = await startHarness({ env: { NODE_ENV: 'development' } });
    const client = wsClient(h.url);
    try {
      const overHttp = await post(h.url, '{ videoModel { id } }');
      assert.match(overHttp.body.errors?.[0]?.message ?? '', /Did you mean "videoModels"/);
      const overWs = await wsRun(client, '{ videoModel { id } }');
      assert.match(wsErrors(overWs)[0]?.message ?? '', /Did you mean "videoModels"/);
    } finally {
      await client.dispose();
      await h.stop();
    }
  });
});

describe('production switches: GRAPHIQL=false and INTROSPECTION=false', () => {
  it('GraphiQL is served by default and not with GRAPHIQL=false', async () => {
    const on = await startHarness();
    try {
      const page = await fetch(`${on.url}/graphql`, { headers: { accept: 'text/html' } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /graphiql/i);
    } finally {
      await on.stop();
    }
    const off = await startHarness({ env: { GRAPHIQL: 'false' } });
    try {
      const page = await fetch(`${off.url}/graphql`, { headers: { accept: 'text/html' } });
      assert.notEqual(page.status, 200);
      assert.doesNotMatch(page.headers.get('content-type') ?? '', /html/);
      assert.doesNotMatch(await page.text(), /graphiql/i);
      // The API itself still answers.
      assert.ok((await post(off.url, MODELS)).body.data.videoModels.length > 0);
    } finally {
      await off.stop();
    }
  });

  it('with INTROSPECTION=false an introspection query is refused over HTTP and WebSocket; other queries work', async () => {
    const h = await startHarness({ env: { INTROSPECTION: 'false' } });
    const client = wsClient(h.url);
    try {
      for (const query of [getIntrospectionQuery(), '{ __schema { queryType { name } } }', '{ __type(name: "VideoTask") { name } }']) {
        const overHttp = await post(h.url, query);
        assert.equal(overHttp.body.data ?? null, null, overHttp.text.slice(0, 300));
        assert.match(overHttp.body.errors?.[0]?.message ?? '', /introspection/i);
        const overWs = await wsRun(client, query);
        assert.ok(overWs.results.every((r) => r.data == null), JSON.stringify(overWs).slice(0, 300));
        assert.match(wsErrors(overWs)[0]?.message ?? '', /introspection/i);
      }
      assert.ok((await post(h.url, MODELS)).body.data.videoModels.length > 0);
      assert.ok((await wsRun(client, MODELS)).results[0]?.data?.videoModels.length > 0);
    } finally {
      await client.dispose();
      await h.stop();
    }
  });
});

describe('WebSocket limits', () => {
  let h: Harness;
  let a: string;
  let b: string;
  before(async () => {
    h = await startHarness({ env: {
      ANONYMOUS_ACCESS: 'false',
      WS_MAX_PAYLOAD_BYTES: '1024',
      WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '2',
      WS_CONNECTION_INIT_TIMEOUT_MS: '300',
      WS_MAX_CONNECTIONS_PER_KEY: '2',
    } });
    a = h.app.apiKeys.create('ws-a', 'client').key;
    b = h.app.apiKeys.create('ws-b', 'client').key;
  });
  after(async () => { await h.stop(); });

  it('maximum payload: a message over WS_MAX_PAYLOAD_BYTES closes the socket with 1009', async () => {
    const connection = await rawConnect(h.url, { authorization: `Bearer ${b}` });
    assert.ok(connection.acked);
    const answers: unknown[] = [];
    connection.socket.on('message', (data) => answers.push(JSON.parse(String(data))));
    // Just under the limit: served.
    const small = JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `{ videoModels { id } } # ${'x'.repeat(800)}` } });
    assert.ok(Buffer.byteLength(small) < 1024);
    connection.socket.send(small);
    await eventually(() => answers.some((m) => (m as { type: string }).type === 'complete'), 'the small operation completes');
    const large = JSON.stringify({ id: '2', type: 'subscribe', payload: { query: `{ videoModels { id } } # ${'x'.repeat(2000)}` } });
    connection.socket.send(large);
    assert.equal(await connection.closed, 1009);
    assert.ok(!answers.some((m) => (m as { id?: string }).id === '2'), 'the large operation was not run');
  });

  it('subscriptions per connection: the third concurrent one is refused with TOO_MANY_SUBSCRIPTIONS; a freed slot can be reused', async () => {
    const client = wsClient(h.url, b);
    const listeners = h.app.events.listenerCount();
    try {
      const first = wsSubscribe(client, WATCH_ALL);
      const second = wsSubscribe(client, WATCH_ALL);
      await eventually(() => h.app.events.listenerCount() === listeners + 2, 'two subscriptions are open');
      const third = await wsRun(client, WATCH_ALL);
      assert.deepEqual(wsErrors(third).map((e) => e.extensions?.code), ['TOO_MANY_SUBSCRIPTIONS'], JSON.stringify(third));
      assert.match(wsErrors(third)[0]!.message, /At most 2/);
      // A query is an operation too while it runs, and is refused the same way.
      const query = await wsRun(client, MODELS);
      assert.deepEqual(wsErrors(query).map((e) => e.extensions?.code), ['TOO_MANY_SUBSCRIPTIONS']);
      // The limit is per connection: another connection of the same key has its own.
      const otherConnection = wsClient(h.url, b);
      try {
        assert.ok((await wsRun(otherConnection, MODELS)).results[0]?.data);
      } finally {
        await otherConnection.dispose();
      }
      first.stop();
      await eventually(() => h.app.events.listenerCount() === listeners + 1, 'one subscription ended');
      let again: WsOutcome | null = null;
      await eventually(async () => {
        again = await wsRun(client, MODELS);
        return wsErrors(again).length === 0;
      }, 'the freed slot is usable', 3000);
      assert.ok(again!.results[0]?.data);
      second.stop();
    } finally {
      await client.dispose();
    }
  });

  it('connection-init timeout: a socket that never sends connection_init is closed with 4408', async () => {
    const started = Date.now();
    const silent = await rawConnect(h.url);
    assert.equal(await silent.closed, 4408);
    assert.ok(Date.now() - started >= 250, 'not before the timeout');
    // One that initialises in time stays open past the timeout.
    const prompt = await rawConnect(h.url, { authorization: `Bearer ${b}` });
    assert.ok(prompt.acked);
    await sleep(500);
    assert.equal(prompt.socket.readyState, prompt.socket.OPEN);
    prompt.socket.close();
  });

  it('connections per key: the third is closed with 4429; another key is unaffected; after one closes, a new one is accepted', async () => {
    await eventually(() => h.app.webSocketConnections() === 0, 'earlier sockets are gone');
    const first = await rawConnect(h.url, { authorization: `Bearer ${a}` });
    const second = await rawConnect(h.url, { apiKey: a });
    assert.ok(first.acked && second.acked);
    const third = await rawConnect(h.url, { authorization: `Bearer ${a}` });
    assert.equal(third.acked, false);
    assert.equal(third.code, 4429);
    assert.match(third.reason ?? '', /At most 2 connections per key/);
    const otherKey = await rawConnect(h.url, { authorization: `Bearer ${b}` });
    assert.ok(otherKey.acked, 'another key is unaffected');
    first.socket.close();
    await first.closed;
    await eventually(() => h.app.webSocketConnections() === 2, 'the server saw it close');
    const replacement = await rawConnect(h.url, { authorization: `Bearer ${a}` });
    assert.ok(replacement.acked, 'a new connection is accepted once one closed');
    // And the count is back at the limit.
    const over = await rawConnect(h.url, { authorization: `Bearer ${a}` });
    assert.equal(over.code, 4429);
    for (const c of [second, otherKey, replacement]) c.socket.close();
  });
});

describe('a subscriber joining a shared WebSocket execution', () => {
  it('is still charged against the per-key request limit', async () => {
    const { startHarness } = await import('./support/harness.ts');
    const { createClient } = await import('graphql-ws');
    const { default: WebSocketImpl } = await import('ws');
    const h = await startHarness({ env: { RATE_LIMIT_REQUESTS_PER_MINUTE: '3' }, sandbox: { timeScale: 1 } });
    const clients: ReturnType<typeof createClient>[] = [];
    try {
      const created = await h.gql(`mutation { createVideoTask(input: { model: "seedance-2", prompt: "shared" }) { task { id } } }`);
      const id = created.data.createVideoTask.task.id;
      const outcomes: string[] = [];
      // Three more operations from three connections: the first starts the shared execution (charged
      // by envelop), the next joins it (charged on joining), the third finds the bucket empty.
      for (let i = 0; i < 3; i++) {
        const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocketImpl, retryAttempts: 0 });
        clients.push(client);
        outcomes.push(await new Promise<string>((resolve) => {
          client.subscribe({ query: `subscription($id: ID!) { videoTaskUpdated(id: $id) { status } }`, variables: { id } }, {
            next: (result) => resolve(result.errors ? String(result.errors[0]?.extensions?.code) : 'event'),
            error: (error) => resolve(`error ${JSON.stringify(error)}`),
            complete: () => resolve('complete'),
          });
        }));
      }
      assert.deepEqual(outcomes, ['event', 'event', 'RATE_LIMITED']);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
      await h.stop();
    }
  });
});
