// 3. createVideoTask against the sandbox upstream on loopback, with 0 and 50 ms of upstream latency,
// against a raw node:http handler doing the same durable insert, upstream POST (pooled undici Agent)
// and recording of the answer.
//
// Where the processes run: ours and the raw handler on the server core; the sandbox upstream with the
// load generator on the load core. The sandbox stands for the outside world (like the clients), so the
// system under test keeps its core to itself, and both subjects share the same upstream conditions.
//
// Who creates: 100 clients, each with its own API key (requests rotate over them). Every create counts
// its key's unfinished tasks against MAX_UNFINISHED_TASKS_PER_KEY, a count that grows with them; in
// service the limit (20 by default) bounds it, but here the limit is lifted and nothing finishes (the
// poller is held off), so one key would carry every task of the run. That case is measured too ("one
// anonymous key"), for what it shows.
import { fetchJson, measureThroughput, THROUGHPUT, type HttpSubject } from './lib/http-bench.ts';
import { startLoadGenerator } from './lib/load.ts';
import { ratio, Rows } from './lib/measure.ts';
import { startServer, type ChildHandle } from './lib/processes.ts';
import { emptyDatabase } from './lib/seed.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';

const CREATE_MODEL = 'doubao-seedance-1-0-pro-fast';
const CONNECTIONS = 20;
const CLIENT_KEYS = 100;
const LATENCIES_MS = [0, 50] as const;
const PROMPTS = Array.from({ length: 100 }, (_, i) => `A lighthouse at dusk, waves on the rocks, take ${i + 1}`);
const ONE_KEY = 'ours, upstream 0 ms, one anonymous key';
const MUTATION = 'mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }';
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

export default async function create(ctx: BenchContext): Promise<BenchResult> {
  const children: ChildHandle<{ url: string }>[] = [];
  const databases: ReturnType<typeof emptyDatabase>[] = [];
  const load = await startLoadGenerator(ctx.loadCpu);
  try {
    const start = async (script: string, options: Record<string, unknown>, cpu: string | null, name: string) => {
      const child = await startServer<{ url: string; keys?: string[] }>(script, options, cpu, name);
      children.push(child);
      return { url: child.ready.url, pid: child.pid, keys: child.ready.keys ?? [] };
    };
    // Request i: prompt i, by client i (or anonymous); the raw handler gets the same header, unread.
    const requests = (path: string, body: (prompt: string) => unknown, keys: readonly string[]) => PROMPTS.map((prompt, i) => ({
      method: 'POST' as const, path, body: JSON.stringify(body(prompt)),
      headers: keys.length > 0 ? { authorization: `Bearer ${keys[i % keys.length]}` } : undefined,
    }));
    const mutation = (prompt: string) => ({ query: MUTATION, variables: { input: { model: CREATE_MODEL, prompt } } });
    // The poller is held off (first poll in an hour): this measures creating, not creating and polling.
    const oursEnv = { POLL_FIRST_MS: '3600000' };
    const database = () => {
      const created = emptyDatabase();
      databases.push(created);
      return created.file;
    };
    const subjects: HttpSubject[] = [];
    for (const latencyMs of LATENCIES_MS) {
      const sandbox = await start('bench/lib/servers/sandbox.ts', { latencyMs }, ctx.loadCpu, `sandbox ${latencyMs} ms`);
      const ours = await start('bench/lib/servers/ours.ts', { database: database(), sandboxUrl: sandbox.url, env: oursEnv, clientKeys: CLIENT_KEYS }, ctx.serverCpu, `ours ${latencyMs} ms`);
      const raw = await start('bench/lib/servers/raw.ts', { database: database(), sandboxUrl: sandbox.url, createModel: CREATE_MODEL }, ctx.serverCpu, `raw ${latencyMs} ms`);
      subjects.push({ name: `ours, upstream ${latencyMs} ms`, url: ours.url, pid: ours.pid, headers: JSON_HEADERS, requests: requests('/graphql', mutation, ours.keys) });
      subjects.push({ name: `raw, upstream ${latencyMs} ms`, url: raw.url, pid: raw.pid, headers: JSON_HEADERS, requests: requests('/create', (prompt) => ({ prompt }), ours.keys) });
      if (latencyMs === 0) {
        const anonymous = await start('bench/lib/servers/ours.ts', { database: database(), sandboxUrl: sandbox.url, env: oursEnv }, ctx.serverCpu, 'ours anonymous');
        subjects.push({ name: ONE_KEY, url: anonymous.url, pid: anonymous.pid, headers: JSON_HEADERS, requests: requests('/graphql', mutation, []) });
      }
    }

    // Both must really create: a task, QUEUED at the upstream, no user errors.
    for (const subject of subjects) {
      const request = subject.requests[0]!;
      const answer = await fetchJson(subject.url + request.path, { method: 'POST', body: request.body, headers: { ...JSON_HEADERS, ...request.headers } }) as
        { data?: { createVideoTask?: { task: { status: string } | null; userErrors: unknown[] } } };
      const created = answer.data?.createVideoTask;
      if (created?.task?.status !== 'QUEUED' || created.userErrors.length > 0) throw new Error(`${subject.name} did not create: ${JSON.stringify(answer)}`);
    }

    const rows = new Rows();
    await measureThroughput(ctx, load, subjects, rows, { connections: CONNECTIONS, latency: true });

    const throughput = (name: string) => rows.median(name, THROUGHPUT);
    const at0 = ratio(throughput('ours, upstream 0 ms'), throughput('raw, upstream 0 ms'));
    const at50 = ratio(throughput('ours, upstream 50 ms'), throughput('raw, upstream 50 ms'));
    const ideal = CONNECTIONS / 0.05;
    const ofIdeal = ratio(throughput('ours, upstream 50 ms'), ideal);
    return {
      name: 'create',
      title: 'createVideoTask against the sandbox upstream, 0 and 50 ms upstream latency',
      rows: rows.rows(),
      ratios: [
        { label: 'ours / raw throughput, upstream 0 ms', value: at0, target: '>= 0.5', met: at0 >= 0.5 },
        { label: 'ours / raw throughput, upstream 50 ms', value: at50, target: '>= 0.5', met: at50 >= 0.5 },
        { label: `ours at 50 ms / (${CONNECTIONS} connections / 50 ms = ${ideal} req/s)`, value: ofIdeal, target: '>= 0.9 (within 10%)', met: ofIdeal >= 0.9 },
        { label: 'ours, one anonymous key / 100 keys, upstream 0 ms', value: ratio(throughput(ONE_KEY), throughput('ours, upstream 0 ms')), target: 'none (the unfinished-task count)', met: null },
      ],
      notes: [
        `autocannon, ${CONNECTIONS} connections, closed loop; every request creates a task (prompts rotate over ${PROMPTS.length}, by ${CLIENT_KEYS} client API keys). Each subject writes to its own new database; our poller is held off, so created tasks stay unfinished.`,
        'Ours and the raw handler on the server core; the sandbox upstreams on the load core with the load generator (they stand for the outside world).',
        'Both make a create durable the same way: two commits (the task with its submission attempt before the POST, the upstream answer after it) with synchronous=NORMAL, each followed by a wait, off the event loop, for an fsync of the WAL (before the POST, and before the answer), one fsync shared by every request waiting at once (group commit: src/storage/durability.ts).',
      ],
    };
  } finally {
    await load.close();
    await Promise.all(children.map((child) => child.stop()));
    for (const created of databases) created.remove();
  }
}
