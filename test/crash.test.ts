// Crash safety: the service is SIGKILLed 20 times, at random moments, while a stream of createVideoTask
// requests runs against it (the sandbox as the provider); each time a new process is started on the
// same SQLite file. Afterwards, with a last process running until every task has ended:
// - no accepted task is lost: every create that was answered with a task has its row, with the
//   upstream id it was answered with, and the task completed;
// - nothing was submitted twice: the sandbox holds at most one task per prompt, every row with an
//   upstream id matches exactly one sandbox task (of its own prompt), and the sandbox holds no task
//   without a row (the row is committed before the request leaves);
// - PRAGMA integrity_check is 'ok', after every kill and at the end.
//
// The kill moments come from a seeded generator (CRASH_SEED replays another run); the seed is logged.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startSandboxServer } from '../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY } from '../src/upstream/providers.ts';
import { seedFrom, seededRandom, taskRowId, waitFor } from './support/hardening.ts';
import { startServiceProcess, tempDatabase, type ServiceProcess } from './support/service-process.ts';

const SEED = seedFrom('CRASH_SEED', 20_251_122);
const KILLS = 20;
/** How long each process runs, once it has accepted its first task, before it is killed. */
const KILL_AFTER_MS = { min: 100, max: 600 };
const WORKERS = 6;
/** Pause between one worker's creates. */
const PAUSE_MS = { min: 0, max: 20 };
/** Both providers, so that both routes are crashed mid-submission. */
const MODELS = ['doubao-seedance-1-0-pro-fast', 'doubao-seedance-1.0-pro-fast'];
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status upstreamTaskId } userErrors { code message } } }`;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

interface Row {
  id: string;
  prompt: string;
  status: string;
  upstream_task_id: string | null;
  error_code: string | null;
  submission_attempted_at: number | null;
}

interface Accepted {
  id: string;
  prompt: string;
  upstreamTaskId: string | null;
  status: string;
}

function withDatabase<T>(file: string, work: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return work(db);
  } finally {
    db.close();
  }
}

const readRows = (file: string) => withDatabase(file, (db) =>
  db.prepare('SELECT id, prompt, status, upstream_task_id, error_code, submission_attempted_at FROM video_tasks').all() as Row[]);
const integrity = (file: string) => withDatabase(file, (db) => (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check));

describe('20 SIGKILLs under a stream of creates', () => {
  let sandboxServer: Awaited<ReturnType<typeof startSandboxServer>>;
  const database = tempDatabase();
  const processes: ServiceProcess[] = [];

  before(async () => {
    sandboxServer = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: 0.02, port: 0 });
    // A little latency widens the window in which a kill falls between a row's write and the answer.
    sandboxServer.sandbox.setFaults({ latencyMs: 10 });
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await sandboxServer?.close();
    database.remove();
  });

  it('loses no accepted task, submits none twice, and leaves an intact file', { timeout: 240_000 }, async (t) => {
    const started = Date.now();
    t.diagnostic(`seed ${SEED} (set CRASH_SEED to replay another)`);
    const random = seededRandom(SEED);
    const between = (range: { min: number; max: number }) => range.min + random() * (range.max - range.min);
    const tag = randomUUID().slice(0, 8);
    const env = {
      RATE_LIMIT_REQUESTS_PER_MINUTE: '1000000',
      RATE_LIMIT_TASKS_PER_MINUTE: '1000000',
      MAX_UNFINISHED_TASKS_PER_KEY: '1000000',
      // Room for a loaded machine: a create timing out upstream would be answered with a UserError.
      UPSTREAM_TIMEOUT_MS: '4000',
      POLL_LEASE_MS: '5000',
    };
    const start = async () => {
      const service = await startServiceProcess({ databaseFile: database.file, upstreamUrl: sandboxServer.url, env });
      processes.push(service);
      return service;
    };

    // The stream: WORKERS clients creating tasks one after another against whichever process is up.
    let current: ServiceProcess | null = null;
    let streaming = true;
    let sequence = 0;
    const attempted = new Set<string>();
    const accepted: Accepted[] = [];
    const unexpected: string[] = [];
    let cut = 0;
    const worker = async (w: number) => {
      while (streaming) {
        const service = current;
        if (!service) {
          await sleep(5);
          continue;
        }
        const n = sequence++;
        const prompt = `crash ${tag} w${w} #${n}: a lighthouse at dusk`;
        attempted.add(prompt);
        try {
          const response = await fetch(`${service.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
            body: JSON.stringify({ query: CREATE, variables: { input: { model: MODELS[n % MODELS.length], prompt } } }),
            signal: AbortSignal.timeout(10_000),
          });
          const text = await response.text();
          const body = JSON.parse(text);
          const task = body?.data?.createVideoTask?.task;
          if (response.status === 200 && task?.id && body.data.createVideoTask.userErrors.length === 0) {
            accepted.push({ id: taskRowId(task.id), prompt, upstreamTaskId: task.upstreamTaskId, status: task.status });
          } else {
            unexpected.push(`${prompt}: HTTP ${response.status} ${text.slice(0, 300)}`);
          }
        } catch {
          // Killed mid-request (reset, or an answer cut off): the outcome is unknown, not accepted.
          cut++;
        }
        await sleep(between(PAUSE_MS));
      }
    };
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));

    // However the test ends, the stream ends with it (a failed assertion must not leave workers looping).
    t.after(() => { streaming = false; current = null; });
    const kills: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      const service = await start();
      const acceptedBefore = accepted.length;
      current = service;
      // The kill window opens once the process has accepted a task: a fresh process answers its first
      // requests slowly (modules load lazily), more so on a loaded machine, and the window is meant
      // for a process in its stride. Then it dies at a random moment of the stream.
      await waitFor(`process ${k + 1} to accept a task`, () => accepted.length > acceptedBefore, 30_000, 5);
      const delay = between(KILL_AFTER_MS);
      await sleep(delay);
      current = null;
      service.kill('SIGKILL');
      const how = await service.exited;
      assert.equal(how.signal, 'SIGKILL', `kill ${k + 1}: ${JSON.stringify(how)}\n${service.output()}`);
      kills.push(`${Math.round(delay)} ms/${accepted.length - acceptedBefore} accepted`);

      // What the dead process left: an intact file holding every task accepted so far.
      assert.deepEqual(integrity(database.file), ['ok'], `integrity after kill ${k + 1}`);
      const ids = new Set(readRows(database.file).map((r) => r.id));
      const missing = accepted.filter((a) => !ids.has(a.id));
      assert.deepEqual(missing, [], `kill ${k + 1}: accepted tasks missing from the file`);
    }
    t.diagnostic(`${KILLS} kills after ${kills.join(', ')}; stream phase ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // A last process brings every task to an end; the stream stops first, so the set is final.
    const last = await start();
    streaming = false;
    current = null;
    await Promise.all(workers);
    const final = await waitFor('every task to end', () => {
      const rows = readRows(database.file);
      return rows.every((r) => TERMINAL.has(r.status)) ? rows : null;
    }, 30_000, 100);
    last.kill('SIGTERM');
    assert.deepEqual(await last.exited, { code: 0, signal: null }, last.output());
    assert.ok(!existsSync(`${database.file}-wal`) || statSync(`${database.file}-wal`).size === 0, 'the last process checkpointed the WAL');

    const upstream = sandboxServer.sandbox.tasks();
    const statuses = final.reduce<Record<string, number>>((n, r) => ({ ...n, [`${r.status}${r.error_code ? `/${r.error_code}` : ''}`]: (n[`${r.status}${r.error_code ? `/${r.error_code}` : ''}`] ?? 0) + 1 }), {});
    t.diagnostic(`creates attempted ${attempted.size}, accepted ${accepted.length}, cut by a kill ${cut}; rows ${final.length} ${JSON.stringify(statuses)}; sandbox tasks ${upstream.length}, create requests ${sandboxServer.sandbox.stats().requests.create}`);

    assert.deepEqual(unexpected, [], 'every answered create was accepted');
    assert.ok(accepted.length >= KILLS, `each process accepted a task before its kill: ${accepted.length} accepted`);
    assert.ok(cut >= 1, 'some creates were cut by a kill');

    // Nothing lost: each accepted task has its row, with the upstream id it was answered with, completed.
    const rowById = new Map(final.map((r) => [r.id, r]));
    for (const task of accepted) {
      const row = rowById.get(task.id);
      assert.ok(row, `accepted task ${task.id} (${task.prompt}) lost`);
      assert.equal(row.prompt, task.prompt);
      assert.ok(task.upstreamTaskId, `${task.prompt} was answered without an upstream id (${task.status})`);
      assert.equal(row.upstream_task_id, task.upstreamTaskId, `${task.prompt}: upstream id`);
      assert.equal(row.status, 'COMPLETED', `${task.prompt}: ${row.status} ${row.error_code}`);
    }

    // Each row is one create of the stream, once.
    const rowsByPrompt = new Map<string, Row[]>();
    for (const row of final) rowsByPrompt.set(row.prompt, [...(rowsByPrompt.get(row.prompt) ?? []), row]);
    for (const [prompt, rows] of rowsByPrompt) {
      assert.ok(attempted.has(prompt), `a row nobody asked for: ${prompt}`);
      assert.equal(rows.length, 1, `${prompt}: ${rows.length} rows`);
    }

    // Nothing submitted twice, and nothing submitted without a row.
    const upstreamByPrompt = new Map<string, string[]>();
    for (const task of upstream) {
      const prompt = String(task.body.prompt);
      upstreamByPrompt.set(prompt, [...(upstreamByPrompt.get(prompt) ?? []), task.id]);
    }
    const twice = [...upstreamByPrompt].filter(([, ids]) => ids.length > 1);
    assert.deepEqual(twice, [], 'prompts submitted more than once');
    for (const prompt of upstreamByPrompt.keys()) assert.ok(rowsByPrompt.has(prompt), `the provider has a task without a row: ${prompt}`);
    const upstreamById = new Map(upstream.map((task) => [task.id, task]));
    for (const row of final) {
      if (!row.upstream_task_id) {
        // Only a submission a kill interrupted ends without an upstream id, and never as a success.
        assert.equal(row.status, 'FAILED', `${row.prompt}: ${row.status} without an upstream id`);
        assert.equal(row.error_code, 'SUBMISSION_UNCONFIRMED', row.prompt);
        continue;
      }
      const match = upstream.filter((task) => task.id === row.upstream_task_id);
      assert.equal(match.length, 1, `${row.prompt}: ${match.length} sandbox tasks with id ${row.upstream_task_id}`);
      assert.equal(String(upstreamById.get(row.upstream_task_id)!.body.prompt), row.prompt, `${row.upstream_task_id} belongs to another prompt`);
    }

    assert.deepEqual(integrity(database.file), ['ok']);
    t.diagnostic(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
