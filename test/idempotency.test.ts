// createVideoTask's idempotencyKey: the same key and input are the same task (one row, one upstream
// submission), even when the requests race, in one process or in two processes sharing the SQLite
// file (where the unique index on (owner_id, idempotency_key) decides); the same key with another
// input is refused; keys are per API key; a malformed key is refused.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { startSandboxServer } from '../src/sandbox/sandbox-upstream.ts';
import { TaskStore } from '../src/storage/task-store.ts';
import { PollSchedule, pollScheduleOptions } from '../src/poller/poll-schedule.ts';
import { InProcessTaskEvents } from '../src/events/task-events.ts';
import { VideoTaskService } from '../src/tasks/task-service.ts';
import { ProviderDirectory, SANDBOX_API_KEY, sandboxAccounts } from '../src/upstream/providers.ts';
import { UpstreamClient } from '../src/upstream/upstream-client.ts';
import { ANONYMOUS } from '../src/auth/principal.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { postGraphql, taskRowId } from './support/hardening.ts';
import { startServiceProcess, tempDatabase, type ServiceProcess } from './support/service-process.ts';

const MODEL = 'doubao-seedance-1-0-pro-fast';
const CREATE = `mutation($input: CreateVideoTaskInput!) {
  createVideoTask(input: $input) { task { id status prompt upstreamTaskId } userErrors { field code message } }
}`;

interface CreatePayload {
  createVideoTask: {
    task: { id: string; status: string; prompt: string; upstreamTaskId: string | null } | null;
    userErrors: { field: string[]; code: string; message: string }[];
  };
}

/** Generous limits: these tests are about idempotency, not about rate limiting. */
const LIMITS_ENV = {
  RATE_LIMIT_REQUESTS_PER_MINUTE: '100000',
  RATE_LIMIT_TASKS_PER_MINUTE: '100000',
  MAX_UNFINISHED_TASKS_PER_KEY: '100000',
  // Room for a loaded machine: a create timing out upstream would be answered with a UserError, and
  // two processes writing one file wait for each other's lock (the default 5 s, not the tests' 250 ms).
  UPSTREAM_TIMEOUT_MS: '4000',
  SQLITE_BUSY_TIMEOUT_MS: '5000',
  POLL_LEASE_MS: '10000',
};

async function create(baseUrl: string, input: Record<string, unknown>, headers: Record<string, string> = {}): Promise<CreatePayload['createVideoTask']> {
  const response = await postGraphql<CreatePayload>(baseUrl, CREATE, { input }, headers);
  assert.equal(response.status, 200, response.raw);
  assert.equal(response.body.errors, undefined, response.raw);
  return response.body.data!.createVideoTask;
}

describe('idempotencyKey in one process', () => {
  let h: Harness;
  const tag = randomUUID().slice(0, 8);
  before(async () => { h = await startHarness({ env: LIMITS_ENV }); });
  after(async () => { await h.stop(); });

  const rowsWithKey = (key: string) =>
    (h.app.db.$client.prepare('SELECT id FROM video_tasks WHERE idempotency_key = ?').all(key) as { id: string }[]).map((r) => r.id);
  const submissionsOf = (prompt: string) => h.sandbox!.tasks().filter((t) => t.body.prompt === prompt);
  const createRequests = () => h.sandbox!.stats().requests.create;

  it('the same key and input twice in a row: the same task, one row, one submission', async () => {
    const key = `seq-${tag}`;
    const input = { model: MODEL, prompt: `idempotent ${tag} sequential`, duration: 5, idempotencyKey: key };
    const before = createRequests();
    const first = await create(h.url, input);
    assert.deepEqual(first.userErrors, []);
    assert.ok(first.task?.upstreamTaskId, 'the first request submitted the task');
    const second = await create(h.url, input);
    assert.deepEqual(second.userErrors, []);
    assert.equal(second.task?.id, first.task!.id);
    assert.equal(second.task?.upstreamTaskId, first.task!.upstreamTaskId);
    assert.deepEqual(rowsWithKey(key), [taskRowId(first.task!.id)]);
    assert.equal(submissionsOf(input.prompt).length, 1);
    assert.equal(createRequests() - before, 1, 'one create request reached the upstream');
  });

  it('a replay is the same input after defaults: an explicit default value is the same input', async () => {
    const key = `defaults-${tag}`;
    const prompt = `idempotent ${tag} defaults`;
    const first = await create(h.url, { model: MODEL, prompt, idempotencyKey: key });
    // duration 5, 16:9 and 720p are the model's defaults: the stored request is the same.
    const second = await create(h.url, { model: MODEL, prompt: `  ${prompt} `, duration: 5, aspectRatio: '16:9', resolution: '720p', idempotencyKey: key });
    assert.deepEqual(second.userErrors, []);
    assert.equal(second.task?.id, first.task?.id);
    assert.equal(submissionsOf(prompt).length, 1);
  });

  it('10 concurrent requests with the same key and input: one task id for all, one row, one submission', async () => {
    const key = `race-${tag}`;
    const input = { model: MODEL, prompt: `idempotent ${tag} race`, idempotencyKey: key };
    const before = createRequests();
    const results = await Promise.all(Array.from({ length: 10 }, () => create(h.url, input)));
    for (const result of results) assert.deepEqual(result.userErrors, []);
    const ids = new Set(results.map((r) => r.task!.id));
    assert.equal(ids.size, 1, `task ids: ${[...ids].join(', ')}`);
    assert.deepEqual(rowsWithKey(key), [taskRowId([...ids][0]!)]);
    assert.equal(submissionsOf(input.prompt).length, 1);
    assert.equal(createRequests() - before, 1, 'one create request reached the upstream');
  });

  it('the same key with a different input is refused with IDEMPOTENCY_KEY_REUSED: no row, no upstream call', async () => {
    const key = `reused-${tag}`;
    const first = await create(h.url, { model: MODEL, prompt: `idempotent ${tag} original`, idempotencyKey: key });
    assert.deepEqual(first.userErrors, []);
    const rows = (h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n;
    const before = createRequests();
    for (const changed of [
      { model: MODEL, prompt: `idempotent ${tag} changed`, idempotencyKey: key },
      { model: MODEL, prompt: `idempotent ${tag} original`, duration: 6, idempotencyKey: key },
      { model: 'seedance-2', prompt: `idempotent ${tag} original`, idempotencyKey: key },
    ]) {
      const result = await create(h.url, changed);
      assert.equal(result.task, null);
      assert.deepEqual(result.userErrors.map((e) => [e.field, e.code]), [[['input', 'idempotencyKey'], 'IDEMPOTENCY_KEY_REUSED']]);
      assert.match(result.userErrors[0]!.message, /different input/);
    }
    assert.equal((h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n, rows, 'no row written');
    assert.equal(createRequests(), before, 'no upstream call');
    assert.deepEqual(rowsWithKey(key), [taskRowId(first.task!.id)]);
  });

  it('a malformed key is refused with INVALID_FORMAT before anything is written or sent', async () => {
    const rows = (h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n;
    const before = createRequests();
    for (const key of ['has space', ' leading', 'tab\there', 'x'.repeat(256), '', 'ключ', 'line\nbreak']) {
      const result = await create(h.url, { model: MODEL, prompt: `idempotent ${tag} bad key`, idempotencyKey: key });
      assert.equal(result.task, null, JSON.stringify(key));
      assert.deepEqual(result.userErrors.map((e) => [e.field, e.code]), [[['input', 'idempotencyKey'], 'INVALID_FORMAT']], JSON.stringify(key));
    }
    assert.equal((h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n, rows);
    assert.equal(createRequests(), before);
    // The limits themselves are accepted: 255 printable ASCII characters, and a single one.
    for (const key of ['k'.repeat(255), '!', `~${tag}:/=+`]) {
      const result = await create(h.url, { model: MODEL, prompt: `idempotent ${tag} edge ${key.length} ${key.slice(0, 3)}`, idempotencyKey: key });
      assert.deepEqual(result.userErrors, [], JSON.stringify(key));
    }
  });

  it('the unique index refuses a second row for one (owner, key), whoever writes it', () => {
    const store = new TaskStore(h.app.db);
    const key = `index-${tag}`;
    const row = (id: string, ownerId: string) => ({
      id, model: MODEL, provider: 'sandbox', status: 'FAILED' as const, progress: 0,
      request: { model: MODEL, prompt: 'x', duration: 5, aspectRatio: '16:9', resolution: '720p', imageUrls: [], images: [], videos: [], audios: [], generateAudio: null, returnLastFrame: false, seed: null },
      createdAt: new Date(), updatedAt: new Date(), ownerId, idempotencyKey: key, requestFingerprint: 'f',
    });
    store.insert(row(randomUUID(), 'owner-a'));
    assert.throws(() => store.insert(row(randomUUID(), 'owner-a')), (error: { code?: string }) => error.code === 'SQLITE_CONSTRAINT_UNIQUE');
    // Another owner may use the same key.
    store.insert(row(randomUUID(), 'owner-b'));
  });

  it('a create that loses the race at the unique index answers with the winner\'s task and submits nothing', async () => {
    // The window a second process can fall into: its lookup found no task with the key, then the
    // other process inserted one before this one's insert. Reproduced deterministically by letting
    // the first lookup miss while the winner's row is already in the file.
    const key = `lost-race-${tag}`;
    const input = { model: MODEL, prompt: `idempotent ${tag} lost race`, idempotencyKey: key };
    const winner = await create(h.url, input);
    assert.deepEqual(winner.userErrors, []);
    const store = new TaskStore(h.app.db);
    let lookups = 0;
    const racingStore = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'findByIdempotencyKey') {
          return (ownerId: string, k: string) => (++lookups === 1 ? undefined : target.findByIdempotencyKey(ownerId, k));
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const upstream = new UpstreamClient({ timeoutMs: 2000 });
    const service = new VideoTaskService({
      store: racingStore,
      upstream,
      providers: new ProviderDirectory(sandboxAccounts('http://127.0.0.1:9/unused')),
      events: new InProcessTaskEvents(),
      schedule: new PollSchedule(pollScheduleOptions(h.config)),
      logger: pino({ level: 'silent' }),
      owner: 'loser',
      leaseMs: 5000,
    });
    try {
      const before = createRequests();
      const result = await service.create(ANONYMOUS, input);
      assert.equal(lookups, 2, 'looked up, lost at the index, looked up again');
      assert.deepEqual(result.userErrors, []);
      assert.equal(result.task?.id, taskRowId(winner.task!.id));
      assert.equal(createRequests(), before, 'the loser sent nothing');
      assert.equal(rowsWithKey(key).length, 1);

      // And a loser whose input differs is told the key was reused.
      lookups = 0;
      const other = await service.create(ANONYMOUS, { ...input, prompt: `${input.prompt} (changed)` });
      assert.equal(other.task, null);
      assert.deepEqual(other.userErrors.map((e) => e.code), ['IDEMPOTENCY_KEY_REUSED']);
      assert.equal(rowsWithKey(key).length, 1);
    } finally {
      await upstream.close();
    }
  });
});

describe('idempotency keys are per API key', () => {
  let h: Harness;
  const tag = randomUUID().slice(0, 8);
  before(async () => { h = await startHarness({ env: { ...LIMITS_ENV, ANONYMOUS_ACCESS: 'false' } }); });
  after(async () => { await h.stop(); });

  it('two keys may use the same idempotency key independently', async () => {
    const alice = { authorization: `Bearer ${h.app.apiKeys.create(`alice-${tag}`, 'client').key}` };
    const bob = { authorization: `Bearer ${h.app.apiKeys.create(`bob-${tag}`, 'client').key}` };
    const key = `shared-${tag}`;
    const input = { model: MODEL, prompt: `per-owner ${tag} same input`, idempotencyKey: key };

    const [a, b] = await Promise.all([create(h.url, input, alice), create(h.url, input, bob)]);
    assert.deepEqual(a.userErrors, []);
    assert.deepEqual(b.userErrors, []);
    assert.notEqual(a.task!.id, b.task!.id, 'each key has its own task');
    assert.equal(h.sandbox!.tasks().filter((t) => t.body.prompt === input.prompt).length, 2, 'each key\'s task was submitted');

    // Each replays its own task...
    assert.equal((await create(h.url, input, alice)).task?.id, a.task!.id);
    assert.equal((await create(h.url, input, bob)).task?.id, b.task!.id);
    // ...and a different input under the same key is only refused for the key that used it.
    const otherKey = `other-${tag}`;
    assert.deepEqual((await create(h.url, { ...input, idempotencyKey: otherKey }, alice)).userErrors, []);
    const bobsOwn = await create(h.url, { ...input, prompt: `per-owner ${tag} bob's other input`, idempotencyKey: otherKey }, bob);
    assert.deepEqual(bobsOwn.userErrors, [], 'alice\'s use of the key does not bind bob');
    const alicesReuse = await create(h.url, { ...input, prompt: `per-owner ${tag} alice changed her mind`, idempotencyKey: otherKey }, alice);
    assert.deepEqual(alicesReuse.userErrors.map((e) => e.code), ['IDEMPOTENCY_KEY_REUSED']);

    const owners = h.app.db.$client.prepare('SELECT owner_id AS ownerId FROM video_tasks WHERE idempotency_key = ? ORDER BY owner_id').all(key) as { ownerId: string }[];
    assert.equal(owners.length, 2);
    assert.notEqual(owners[0]!.ownerId, owners[1]!.ownerId);
  });
});

describe('idempotency across two processes on one database file', () => {
  let sandboxServer: Awaited<ReturnType<typeof startSandboxServer>>;
  const database = tempDatabase();
  let one: ServiceProcess;
  let two: ServiceProcess;
  const tag = randomUUID().slice(0, 8);

  before(async () => {
    sandboxServer = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: 0.02, port: 0 });
    // The first process creates the schema; the second opens the migrated file.
    one = await startServiceProcess({ databaseFile: database.file, upstreamUrl: sandboxServer.url, env: LIMITS_ENV });
    two = await startServiceProcess({ databaseFile: database.file, upstreamUrl: sandboxServer.url, env: LIMITS_ENV });
  });

  after(async () => {
    await Promise.all([one?.stop(), two?.stop()]);
    await sandboxServer?.close();
    database.remove();
  });

  it('concurrent creates with one key sent to both processes make one task and one submission', async (t) => {
    const ROUNDS = 12;
    const PER_PROCESS = 4;
    const createsBefore = sandboxServer.sandbox.stats().requests.create;
    for (let round = 0; round < ROUNDS; round++) {
      const key = `two-${tag}-${round}`;
      const input = { model: MODEL, prompt: `idempotent ${tag} two processes ${round}`, idempotencyKey: key };
      // Interleaved, all in flight at once: each process sees the others' requests racing its own.
      const responses = await Promise.all(Array.from({ length: 2 * PER_PROCESS }, (_, i) =>
        postGraphql<CreatePayload>((i % 2 === 0 ? one : two).url, CREATE, { input })));
      const failed = responses.filter((r) => r.status !== 200 || r.body.errors);
      if (failed.length > 0) {
        const errors = [one, two].flatMap((p) => p.logs.filter((l) => (l.level ?? 0) >= 50).map((l) => JSON.stringify(l).slice(0, 600)));
        assert.fail(`round ${round}: ${failed.map((r) => r.raw).join('\n')}\nservice errors:\n${errors.join('\n')}`);
      }
      const results = responses.map((r) => r.body.data!.createVideoTask);
      for (const result of results) assert.deepEqual(result.userErrors, [], JSON.stringify(result.userErrors));
      const ids = new Set(results.map((r) => r.task!.id));
      assert.equal(ids.size, 1, `round ${round}: task ids ${[...ids].join(', ')}`);
      const submitted = sandboxServer.sandbox.tasks().filter((task) => task.body.prompt === input.prompt);
      assert.equal(submitted.length, 1, `round ${round}: ${submitted.length} submissions`);
    }
    assert.equal(sandboxServer.sandbox.stats().requests.create - createsBefore, ROUNDS, 'one create request per key');

    const db = new Database(database.file, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT idempotency_key AS key, count(*) AS n FROM video_tasks WHERE idempotency_key LIKE ? GROUP BY idempotency_key')
        .all(`two-${tag}-%`) as { key: string; n: number }[];
      assert.equal(rows.length, ROUNDS);
      assert.ok(rows.every((r) => r.n === 1), JSON.stringify(rows));
    } finally {
      db.close();
    }
    t.diagnostic(`${ROUNDS} keys x ${2 * PER_PROCESS} racing requests over two processes: ${ROUNDS} rows, ${ROUNDS} submissions`);
  });

  it('a key used in one process with another input is refused in the other', async () => {
    const key = `two-reused-${tag}`;
    const first = await create(one.url, { model: MODEL, prompt: `idempotent ${tag} two reused`, idempotencyKey: key });
    assert.deepEqual(first.userErrors, []);
    const createsBefore = sandboxServer.sandbox.stats().requests.create;
    const second = await create(two.url, { model: MODEL, prompt: `idempotent ${tag} two reused, changed`, idempotencyKey: key });
    assert.equal(second.task, null);
    assert.deepEqual(second.userErrors.map((e) => [e.field, e.code]), [[['input', 'idempotencyKey'], 'IDEMPOTENCY_KEY_REUSED']]);
    const replay = await create(two.url, { model: MODEL, prompt: `idempotent ${tag} two reused`, idempotencyKey: key });
    assert.equal(replay.task?.id, first.task!.id);
    assert.equal(sandboxServer.sandbox.stats().requests.create, createsBefore);
  });
});
