// 1. videoTask(id) on a database of 100,000 tasks: ours (Yoga) against a raw node:http handler (the
// ceiling), Apollo Server 5 and Mercurius with graphql-jit, the peers serving the same Pothos schema
// and resolvers over the same SQLite file. Peak throughput, then latency at half our own peak.
import { isDeepStrictEqual } from 'node:util';
import { fetchJson, measureLatencyAtRate, measureThroughput, P99_AT_RATE, THROUGHPUT, type HttpSubject } from './lib/http-bench.ts';
import { startLoadGenerator } from './lib/load.ts';
import { ratio, Rows } from './lib/measure.ts';
import { startServer, type ChildHandle } from './lib/processes.ts';
import { seedTasks } from './lib/seed.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';

export const TASK_COUNT = 100_000;
/** Requests rotate over this many different tasks, spread over the whole table. */
const ID_COUNT = 1_000;
const QUERY = 'query($id: ID!) { videoTask(id: $id) { id status progress prompt model createdAt videoUrl } }';
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

const globalId = (id: string) => Buffer.from(`VideoTask:${id}`).toString('base64');

export default async function taskQuery(ctx: BenchContext): Promise<BenchResult> {
  const seedStarted = performance.now();
  const seeded = seedTasks(TASK_COUNT);
  ctx.log(`  seeded ${TASK_COUNT} tasks in ${Math.round(performance.now() - seedStarted)} ms`);
  const step = Math.floor(seeded.ids.length / ID_COUNT);
  const ids = Array.from({ length: ID_COUNT }, (_, i) => seeded.ids[(i * step + 7) % seeded.ids.length]!);
  const graphqlRequests = (path: string) => ids.map((id) => ({
    method: 'POST' as const, path, body: JSON.stringify({ query: QUERY, variables: { id: globalId(id) } }),
  }));

  const servers: ChildHandle<{ url: string }>[] = [];
  const load = await startLoadGenerator(ctx.loadCpu);
  try {
    const start = async (script: string, options: unknown, name: string) => {
      const server = await startServer(script, options, ctx.serverCpu, name);
      servers.push(server);
      return { url: server.ready.url, pid: server.pid };
    };
    const database = seeded.file;
    const subjects: HttpSubject[] = [
      { name: 'ours (Yoga)', ...await start('bench/lib/servers/ours.ts', { database }, 'ours'), requests: graphqlRequests('/graphql'), headers: JSON_HEADERS },
      { name: 'raw node:http', ...await start('bench/lib/servers/raw.ts', { database }, 'raw'), requests: ids.map((id) => ({ path: `/task?id=${id}` })) },
      { name: 'Apollo Server 5', ...await start('bench/lib/servers/peer-server.ts', { kind: 'apollo', database }, 'apollo'), requests: graphqlRequests('/'), headers: JSON_HEADERS },
      { name: 'Mercurius (jit)', ...await start('bench/lib/servers/peer-server.ts', { kind: 'mercurius', database }, 'mercurius'), requests: graphqlRequests('/graphql'), headers: JSON_HEADERS },
    ];
    const [ours, raw, apollo, mercurius] = subjects as [HttpSubject, HttpSubject, HttpSubject, HttpSubject];

    // Every subject must answer exactly what the raw handler answers, or the comparison is void.
    for (const id of [ids[0]!, ids[ID_COUNT - 1]!]) {
      const expected = await fetchJson(`${raw.url}/task?id=${id}`);
      for (const subject of [ours, apollo, mercurius]) {
        const request = subject.requests[ids.indexOf(id)]!;
        const got = await fetchJson(subject.url + request.path, { method: 'POST', body: request.body, headers: JSON_HEADERS });
        if (!isDeepStrictEqual(got, expected)) throw new Error(`${subject.name} answered ${JSON.stringify(got)}, not ${JSON.stringify(expected)}`);
      }
    }

    const rows = new Rows();
    await measureThroughput(ctx, load, subjects, rows);
    const rate = rows.median(ours.name, THROUGHPUT) / 2;
    await measureLatencyAtRate(ctx, load, subjects, rows, rate);

    const throughputOf = (subject: HttpSubject) => rows.median(subject.name, THROUGHPUT);
    const oursOverApollo = ratio(throughputOf(ours), throughputOf(apollo));
    const oursOverMercurius = ratio(throughputOf(ours), throughputOf(mercurius));
    const oursP99 = rows.median(ours.name, P99_AT_RATE);
    return {
      name: 'task-query',
      title: `videoTask(id) on ${TASK_COUNT.toLocaleString('en-US')} tasks`,
      rows: rows.rows(),
      ratios: [
        { label: 'ours / Apollo throughput', value: oursOverApollo, target: '>= 1.0', met: oursOverApollo >= 1 },
        { label: 'ours / Mercurius throughput', value: oursOverMercurius, target: '>= 0.5', met: oursOverMercurius >= 0.5 },
        { label: 'ours / raw throughput', value: ratio(throughputOf(ours), throughputOf(raw)), target: 'none (the ceiling)', met: null },
        { label: 'our p99 at half our peak (ms)', value: oursP99, target: '< 5 ms', met: oursP99 < 5 },
      ],
      notes: [
        `Throughput: autocannon, 50 connections, closed loop. Latency: ${Math.round(rate).toLocaleString('en-US')} req/s offered to every subject (half our median peak), 32 connections paced wrk2-style, latency counted from when each request was due; each round is 1 s at the rate (not recorded), then the rest of the round recorded.`,
        `Requests rotate over ${ID_COUNT} task ids spread over the table; every subject's answer was checked equal to the raw handler's before measuring.`,
        'The peers get one shared context object (the raw ceiling none); ours builds its context per request, with authentication, rate limiting, metrics and request ids, as in production.',
      ],
    };
  } finally {
    await load.close();
    await Promise.all(servers.map((server) => server.stop()));
    seeded.remove();
  }
}
