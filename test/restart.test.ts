// A restart loses nothing and repeats nothing: the service is SIGKILLed while tasks are queued, in
// progress and mid-submission; a new process on the same SQLite file brings every task to a terminal
// state, and the upstream (the sandbox) saw exactly one submission per task.
//
// The rule for a task left SUBMITTING (VideoTaskService.resumeSubmission), and which branch each task
// here takes:
// - the request never left (submission_attempted_at null): submitted now, once. Task D below: a row
//   written as create() writes it, with the process "dying" before sendSubmission marked the attempt.
// - the request left with a callback URL: the task waits for the provider's callback. Not reachable
//   here: the service configured from env only sends callbacks to a public https PUBLIC_URL.
// - the request left without a callback: FAILED with SUBMISSION_UNCONFIRMED, never resubmitted.
//   Tasks C below: killed while the sandbox holds their create request (latency). The sandbox applies
//   its latency *before* creating the task (SandboxUpstream.api: delay, then create), so it creates
//   them after the service is dead: the provider has the task, the service never learnt its id.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startSandboxServer, type SandboxTaskRecord } from '../src/sandbox/sandbox-upstream.ts';
import { openDatabase } from '../src/storage/database.ts';
import { TaskStore } from '../src/storage/task-store.ts';
import { validateCreateVideoTask } from '../src/tasks/validation.ts';
import { SANDBOX_API_KEY } from '../src/upstream/providers.ts';
import { startServiceProcess, tempDatabase, type ServiceProcess } from './support/service-process.ts';

const MODEL = 'doubao-seedance-1-0-pro-fast';
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }`;
const TASK = `query($id: ID!) { videoTask(id: $id) { id status } }`;
/** 40-90 s typical, scaled: each task lasts 2.4-5.4 s, queued for the first fifth of it. */
const TIME_SCALE = 0.06;
const SUBMIT_LATENCY_MS = 800;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

interface Row {
  id: string;
  prompt: string;
  status: string;
  upstream_task_id: string | null;
  submission_attempted_at: number | null;
  callback_token_hash: string | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  error_code: string | null;
  video_url: string | null;
}

function readRows(file: string): Row[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT id, prompt, status, upstream_task_id, submission_attempted_at, callback_token_hash,
      lease_owner, lease_expires_at, error_code, video_url FROM video_tasks`).all() as Row[];
  } finally {
    db.close();
  }
}

async function waitFor<T>(what: string, check: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function byPrompt(tasks: SandboxTaskRecord[]): Map<string, SandboxTaskRecord[]> {
  const map = new Map<string, SandboxTaskRecord[]>();
  for (const task of tasks) {
    const prompt = String(task.body.prompt);
    map.set(prompt, [...(map.get(prompt) ?? []), task]);
  }
  return map;
}

describe('restart after SIGKILL', () => {
  let sandboxServer: Awaited<ReturnType<typeof startSandboxServer>>;
  const database = tempDatabase();
  const processes: ServiceProcess[] = [];

  before(async () => {
    sandboxServer = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: TIME_SCALE, port: 0 });
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await sandboxServer?.close();
    database.remove();
  });

  it('resumes every queued, in-progress and mid-submission task, and each is submitted exactly once', async (t) => {
    const { sandbox, url: sandboxUrl } = sandboxServer;
    const tag = randomUUID().slice(0, 8);
    const prompt = (group: string, i: number) => `restart ${tag} ${group}${i}: a lighthouse at dusk`;

    const first = await startServiceProcess({ databaseFile: database.file, upstreamUrl: sandboxUrl });
    processes.push(first);
    const create = async (service: ServiceProcess, text: string) => {
      const { data, errors } = await service.gql(CREATE, { input: { model: MODEL, prompt: text } });
      assert.equal(errors, undefined, JSON.stringify(errors));
      assert.deepEqual(data.createVideoTask.userErrors, []);
      // The GraphQL id is a Relay global id; rows are matched by their (unique) prompt.
      return { ...(data.createVideoTask.task as { id: string; status: string }), prompt: text };
    };

    // A: created first, then given time to start generating.
    const groupA = await Promise.all([0, 1, 2, 3].map((i) => create(first, prompt('A', i))));
    await waitFor('two A tasks IN_PROGRESS', async () => {
      const statuses = await Promise.all(groupA.map(async (task) => (await first.gql(TASK, { id: task.id })).data.videoTask.status as string));
      return statuses.filter((s) => s === 'IN_PROGRESS').length >= 2;
    }, 10_000);

    // B: created just before the kill, so still queued (the sandbox queues every task for >= 480 ms).
    const groupB = await Promise.all([0, 1, 2].map((i) => create(first, prompt('B', i))));
    for (const task of groupB) assert.equal(task.status, 'QUEUED');

    // C: the sandbox sits on their create requests; the service dies while they are in flight.
    sandbox.setFaults({ latencyMs: SUBMIT_LATENCY_MS });
    const createsBefore = sandbox.stats().requests.create;
    // Settled at once: they are expected to fail when the process dies, and must not go unhandled.
    const groupC = Promise.allSettled([0, 1, 2].map((i) => first.gql(CREATE, { input: { model: MODEL, prompt: prompt('C', i) } })));
    await waitFor('the C create requests to reach the sandbox', () => sandbox.stats().requests.create >= createsBefore + 3, 5_000, 5);
    // Let the (small) bodies arrive: the sandbox reads the body, then waits SUBMIT_LATENCY_MS, then creates.
    await sleep(100);
    assert.equal(sandbox.tasks().filter((task) => String(task.body.prompt).includes(`${tag} C`)).length, 0, 'C not created yet');
    first.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    const cOutcomes = await groupC;
    assert.ok(cOutcomes.every((o) => o.status === 'rejected'), 'the clients of C got no answer');

    // What the dead process left in the file.
    const left = readRows(database.file);
    assert.equal(left.length, 10);
    const leftByPrompt = new Map(left.map((r) => [r.prompt, r]));
    const aStatuses = groupA.map((task) => leftByPrompt.get(task.prompt)!.status);
    assert.ok(aStatuses.every((s) => s === 'QUEUED' || s === 'IN_PROGRESS'), `A at the kill: ${aStatuses}`);
    assert.ok(aStatuses.filter((s) => s === 'IN_PROGRESS').length >= 2, `A at the kill: ${aStatuses}`);
    for (const task of groupB) assert.equal(leftByPrompt.get(task.prompt)!.status, 'QUEUED');
    t.diagnostic(`at the kill: ${left.map((r) => `${r.prompt.split(' ')[2]} ${r.status}`).join(', ')}`);
    const cRows = left.filter((r) => r.prompt.includes(`${tag} C`));
    assert.equal(cRows.length, 3);
    for (const row of cRows) {
      assert.equal(row.status, 'SUBMITTING');
      assert.equal(row.upstream_task_id, null);
      assert.notEqual(row.submission_attempted_at, null, 'the request had left');
      assert.equal(row.callback_token_hash, null, 'no callback URL went with it');
      assert.match(row.lease_owner ?? '', new RegExp(`:${first.pid}:`), 'still leased to the dead process');
    }

    // The provider did get the C requests: it creates them once its latency has passed.
    await waitFor('the sandbox to create the C tasks', () =>
      sandbox.tasks().filter((task) => String(task.body.prompt).includes(`${tag} C`)).length === 3, 5_000);
    sandbox.setFaults({ latencyMs: 0 });

    // D: a crash between the row write and the request leaving, written as create() writes the row.
    const validation = validateCreateVideoTask({ model: MODEL, prompt: prompt('D', 0) });
    assert.ok(validation.ok);
    const now = Date.now();
    const store = new TaskStore(openDatabase(database.file));
    const rowD = store.insert({
      id: randomUUID(),
      model: validation.model.id,
      provider: 'toapis',
      request: validation.request,
      prompt: validation.request.prompt,
      status: 'SUBMITTING',
      progress: 0,
      createdAt: new Date(now - 2_000),
      updatedAt: new Date(now - 2_000),
      nextPollAt: new Date(now - 500),
      leaseOwner: 'crashed-host:1:deadbeef',
      leaseExpiresAt: new Date(now - 500),
    });
    store.db.$client.close();
    assert.equal(rowD.submissionAttemptedAt, null);

    const createsBeforeRestart = sandbox.stats().requests.create;
    const second = await startServiceProcess({ databaseFile: database.file, upstreamUrl: sandboxUrl });
    processes.push(second);

    const final = await waitFor('every task to end', () => {
      const rows = readRows(database.file);
      return rows.every((r) => TERMINAL.has(r.status)) ? rows : null;
    }, 25_000, 100);

    // Nothing lost: the ten rows of the first process and D, each once.
    assert.equal(final.length, 11);
    const finalByPrompt = new Map(final.map((r) => [r.prompt, r]));
    assert.equal(finalByPrompt.get(prompt('D', 0))?.id, rowD.id);
    for (const task of [...groupA, ...groupB, { prompt: prompt('D', 0) }]) {
      const row = finalByPrompt.get(task.prompt);
      assert.ok(row, `row of ${task.prompt} kept`);
      assert.equal(row.status, 'COMPLETED', `${row.prompt}: ${row.status} ${row.error_code}`);
      assert.ok(row.upstream_task_id && row.video_url);
    }
    for (const row of final.filter((r) => r.prompt.includes(`${tag} C`))) {
      assert.equal(row.status, 'FAILED');
      assert.equal(row.error_code, 'SUBMISSION_UNCONFIRMED');
      assert.equal(row.upstream_task_id, null);
    }

    // Repeated nothing: one upstream task per prompt, the one the row tracks when it has an id.
    const submitted = byPrompt(sandbox.tasks());
    const prompts = new Set(final.map((r) => r.prompt));
    assert.equal(prompts.size, final.length, 'prompts are unique');
    assert.deepEqual([...submitted.keys()].sort(), [...prompts].sort(), 'the upstream saw exactly the tasks of the rows');
    for (const row of final) {
      const upstream = submitted.get(row.prompt)!;
      assert.equal(upstream.length, 1, `${row.prompt} submitted ${upstream.length} times`);
      if (row.upstream_task_id) assert.equal(row.upstream_task_id, upstream[0]!.id);
    }
    assert.equal(sandbox.stats().submissions, final.length);
    // The new process sent one create request: D's first and only one.
    assert.equal(sandbox.stats().requests.create - createsBeforeRestart, 1);
    assert.ok(second.logs.some((l) => l.msg === 'submitting a task whose submission never left' && l.taskId === rowD.id));
    assert.ok(!second.logs.some((l) => l.msg === 'submitting a task whose submission never left' && l.taskId !== rowD.id));
  });
});
