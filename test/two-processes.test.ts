// Two service processes on one SQLite file share the tasks without ever polling one twice at once,
// and when one is SIGKILLed the other takes its tasks over once their leases run out.
//
// Each process reaches the sandbox through its own recording proxy, which notes every upstream call:
// which process, which upstream task, when the request arrived and when its answer was handed back.
// That interval lies inside the holder's lease (claimed before the request, released after the answer
// is written), so two overlapping intervals for one task would mean two holders at once. The sandbox
// answers queries after QUERY_LATENCY_MS, so each interval is long enough for an overlap to show.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startSandboxServer } from '../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY } from '../src/upstream/providers.ts';
import { startServiceProcess, tempDatabase, type ServiceProcess } from './support/service-process.ts';

const MODEL = 'doubao-seedance-1-0-pro-fast';
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }`;
/** 40-90 s typical, scaled: each task lasts 2-4.5 s. */
const TIME_SCALE = 0.05;
const QUERY_LATENCY_MS = 150;
const LEASE_MS = 1500;

/** Wall-clock milliseconds with sub-millisecond resolution, comparable with the rows' lease times. */
const now = () => performance.timeOrigin + performance.now();

interface UpstreamCall {
  via: string;
  method: string;
  /** The upstream task id, for queries. */
  taskId: string | null;
  /** The prompt, for creates. */
  prompt: string | null;
  start: number;
  /** When the answer was handed back (or the caller went away); Infinity while in flight. */
  end: number;
  status: number | null;
}

interface RecordingProxy {
  url: string;
  calls: UpstreamCall[];
  /** While set, query answers are kept back: the caller stays mid-poll, holding its lease. */
  holdQueries: boolean;
  held(): number;
  close(): Promise<void>;
}

async function startRecordingProxy(via: string, target: string, calls: UpstreamCall[]): Promise<RecordingProxy> {
  const targetUrl = new URL(target);
  const heldAnswers = new Set<ServerResponse>();
  const proxy: RecordingProxy = {
    url: '',
    calls,
    holdQueries: false,
    held: () => heldAnswers.size,
    close: async () => {
      for (const res of heldAnswers) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    const call: UpstreamCall = { via, method: req.method ?? 'GET', taskId: null, prompt: null, start: now(), end: Infinity, status: null };
    if (call.method === 'GET') call.taskId = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.split('/').at(-1) ?? '');
    calls.push(call);
    // The caller died or gave up before its answer: its call ends here.
    res.on('close', () => { call.end = Math.min(call.end, now()); });
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (call.method === 'POST') {
        try { call.prompt = String(JSON.parse(body.toString('utf8')).prompt); } catch { /* not JSON */ }
      }
      const headers = { ...req.headers };
      delete headers.host;
      const upstream = request(new URL(req.url ?? '/', targetUrl), { method: req.method, headers }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          call.status = answer.statusCode ?? null;
          if (call.method === 'GET' && proxy.holdQueries) {
            heldAnswers.add(res);
            return;
          }
          if (res.destroyed) return;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          // Stamped before the answer leaves: the caller cannot have it any earlier.
          call.end = Math.min(call.end, now());
          res.end(Buffer.concat(parts));
        });
      });
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

interface Row {
  prompt: string;
  status: string;
  upstream_task_id: string | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
}

function readRows(file: string): Row[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT prompt, status, upstream_task_id, lease_owner, lease_expires_at FROM video_tasks').all() as Row[];
  } finally {
    db.close();
  }
}

async function waitFor<T>(what: string, check: () => T | undefined | null | false, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Every pair of queries for one upstream task that were in flight at the same time. */
function overlappingQueries(calls: UpstreamCall[]): string[] {
  const byTask = new Map<string, UpstreamCall[]>();
  for (const call of calls) {
    if (call.method !== 'GET' || !call.taskId) continue;
    byTask.set(call.taskId, [...(byTask.get(call.taskId) ?? []), call]);
  }
  const overlaps: string[] = [];
  for (const [taskId, queries] of byTask) {
    queries.sort((a, b) => a.start - b.start);
    for (let i = 1; i < queries.length; i++) {
      const previous = queries[i - 1]!;
      const next = queries[i]!;
      if (next.start < previous.end) {
        overlaps.push(`${taskId}: ${previous.via} [${previous.start.toFixed(1)}, ${previous.end.toFixed(1)}] and ${next.via} [${next.start.toFixed(1)}, ${next.end.toFixed(1)}]`);
      }
    }
  }
  return overlaps;
}

describe('two service processes on one database file', () => {
  let sandboxServer: Awaited<ReturnType<typeof startSandboxServer>>;
  const database = tempDatabase();
  const calls: UpstreamCall[] = [];
  const proxies: RecordingProxy[] = [];
  let one: ServiceProcess;
  let two: ServiceProcess;
  const tag = randomUUID().slice(0, 8);

  before(async () => {
    sandboxServer = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: TIME_SCALE, port: 0 });
    sandboxServer.sandbox.setFaults({ latencyMs: QUERY_LATENCY_MS });
    proxies.push(await startRecordingProxy('one', sandboxServer.url, calls), await startRecordingProxy('two', sandboxServer.url, calls));
    // The first process creates the schema; starting both at once would race on the migration.
    one = await startServiceProcess({ databaseFile: database.file, upstreamUrl: proxies[0]!.url, env: { POLL_LEASE_MS: String(LEASE_MS) } });
    two = await startServiceProcess({ databaseFile: database.file, upstreamUrl: proxies[1]!.url, env: { POLL_LEASE_MS: String(LEASE_MS) } });
  });

  after(async () => {
    await Promise.all([one?.stop(), two?.stop()]);
    await Promise.all(proxies.map((p) => p.close()));
    await sandboxServer?.close();
    database.remove();
  });

  async function createThroughBoth(group: string, count: number): Promise<string[]> {
    const prompts = Array.from({ length: count }, (_, i) => `two-processes ${tag} ${group}${i}: waves on a pier`);
    await Promise.all(prompts.map(async (prompt, i) => {
      const { data, errors } = await (i % 2 === 0 ? one : two).gql(CREATE, { input: { model: MODEL, prompt } });
      assert.equal(errors, undefined, JSON.stringify(errors));
      assert.deepEqual(data.createVideoTask.userErrors, []);
      assert.equal(data.createVideoTask.task.status, 'QUEUED');
    }));
    return prompts;
  }

  function waitAllCompleted(prompts: string[], timeoutMs: number): Promise<Row[]> {
    const wanted = new Set(prompts);
    return waitFor(`${prompts.length} tasks to complete`, () => {
      const rows = readRows(database.file).filter((r) => wanted.has(r.prompt));
      return rows.length === prompts.length && rows.every((r) => r.status === 'COMPLETED') ? rows : null;
    }, timeoutMs, 100);
  }

  /** Each prompt reached the upstream exactly once, through one process or the other. */
  function assertOneSubmissionEach(prompts: string[]): void {
    for (const prompt of prompts) {
      const creates = calls.filter((c) => c.method === 'POST' && c.prompt === prompt);
      assert.equal(creates.length, 1, `${prompt}: ${creates.length} create requests`);
      assert.equal(sandboxServer.sandbox.tasks().filter((t) => t.body.prompt === prompt).length, 1);
    }
  }

  it('share the work, and never poll one task from both at once', async (t) => {
    const prompts = await createThroughBoth('shared', 20);
    const rows = await waitAllCompleted(prompts, 20_000);

    assertOneSubmissionEach(prompts);
    assert.deepEqual(overlappingQueries(calls), [], 'queries of one task overlapped');
    const ids = new Set(rows.map((r) => r.upstream_task_id));
    const queries = calls.filter((c) => c.method === 'GET' && ids.has(c.taskId));
    const byOne = queries.filter((c) => c.via === 'one');
    const byTwo = queries.filter((c) => c.via === 'two');
    assert.ok(byOne.length > 0 && byTwo.length > 0, `polls: one ${byOne.length}, two ${byTwo.length}`);
    // The tasks really went back and forth between the processes, so the check above had something to catch.
    const handedOver = [...ids].filter((id) => byOne.some((c) => c.taskId === id) && byTwo.some((c) => c.taskId === id));
    t.diagnostic(`polls: one ${byOne.length}, two ${byTwo.length}; tasks polled by both: ${handedOver.length} of ${ids.size}`);
    assert.ok(handedOver.length >= 5, `tasks polled by both processes: ${handedOver.length} of ${ids.size}`);
  });

  it('take over the tasks of a SIGKILLed process once its leases run out', async (t) => {
    const prompts = await createThroughBoth('takeover', 12);
    const wanted = new Set(prompts);
    // Every task has an upstream id (it was answered at creation); wait until some are being polled.
    await waitFor('polls of the new tasks', () => readRows(database.file).filter((r) => wanted.has(r.prompt) && r.lease_owner).length >= 2, 5_000, 10);

    // Process one is caught mid-poll: its query answers are kept back, then it is killed.
    proxies[0]!.holdQueries = true;
    await waitFor('process one to be mid-poll', () => proxies[0]!.held() >= 1, 5_000, 5);
    await sleep(50);
    one.kill('SIGKILL');
    const killedAt = now();
    assert.equal((await one.exited).signal, 'SIGKILL');

    const atKill = readRows(database.file).filter((r) => wanted.has(r.prompt));
    assert.ok(atKill.every((r) => r.status === 'QUEUED' || r.status === 'IN_PROGRESS'), 'all still running at the kill');
    const orphaned = atKill.filter((r) => r.lease_owner?.includes(`:${one.pid}:`) && (r.lease_expires_at ?? 0) > killedAt);
    assert.ok(orphaned.length >= 1, 'the dead process held leases');
    // Its queries in flight at the kill (kept back by the proxy, or still at the sandbox).
    const heldIds = new Set(calls.filter((c) => c.via === 'one' && c.method === 'GET' && c.end >= killedAt - 1).map((c) => c.taskId));
    assert.ok(heldIds.size >= 1);
    for (const id of heldIds) assert.ok(orphaned.some((r) => r.upstream_task_id === id), `${id}, mid-poll at the kill, is leased to the dead process`);

    const rows = await waitAllCompleted(prompts, 20_000);
    assert.equal(rows.length, prompts.length);
    assertOneSubmissionEach(prompts);
    assert.deepEqual(overlappingQueries(calls), [], 'queries of one task overlapped');
    assert.ok(!calls.some((c) => c.via === 'one' && c.start > killedAt), 'nothing from the dead process');
    // The survivor polled every orphaned task, but only once the dead holder's lease had run out.
    t.diagnostic(`mid-poll in the dead process: ${heldIds.size}; leased to it at the kill: ${orphaned.length} of ${prompts.length}`);
    for (const row of orphaned) {
      const takeover = calls.filter((c) => c.via === 'two' && c.taskId === row.upstream_task_id && c.start > killedAt).sort((a, b) => a.start - b.start)[0];
      assert.ok(takeover, `${row.prompt} was taken over`);
      t.diagnostic(`taken over ${(takeover.start - killedAt).toFixed(0)} ms after the kill, ${(takeover.start - row.lease_expires_at!).toFixed(1)} ms after its lease ran out`);
      // A millisecond of slack: the rows store whole milliseconds.
      assert.ok(takeover.start >= row.lease_expires_at! - 1, `${row.prompt} polled ${(row.lease_expires_at! - takeover.start).toFixed(1)} ms before its lease ran out`);
      assert.ok(row.lease_expires_at! - killedAt <= LEASE_MS, 'the lease is bounded');
    }
  });
});
