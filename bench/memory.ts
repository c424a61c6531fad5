// 6. Memory: idle subscribers, 1,000 and 5,000 connections, each running videoTaskUpdated on its own
// task over graphql-ws, against a raw `ws` server holding as many connections (each told which task it
// watches). Memory per subscriber from the server process's own numbers after garbage collection, and
// whether the heap comes back after 10 cycles of connecting and disconnecting 1,000 subscribers.
import { ratio, Rows } from './lib/measure.ts';
import { startChild } from './lib/processes.ts';
import type { Transport } from './lib/subscribers-client.ts';
import type { MemorySample, SubscribersServerReady } from './lib/subscribers-server.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';

const SIZES = [1_000, 5_000];
const CYCLES = 10;
const CYCLE_SIZE = 1_000;
const MB = 1024 * 1024;

const SUBJECTS: { name: string; kind: 'app' | 'raw'; transport: Transport }[] = [
  { name: 'graphql-ws (the service)', kind: 'app', transport: 'graphql-ws' },
  { name: 'raw ws', kind: 'raw', transport: 'raw-ws' },
];

const HEAP = 'JS heap + external per subscriber';
const RSS = 'resident set per subscriber';

export default async function memory(ctx: BenchContext): Promise<BenchResult> {
  const rows = new Rows();
  const maxSize = Math.max(...SIZES);
  const client = await startChild('bench/lib/subscribers-client.ts', { cpu: ctx.loadCpu, name: 'subscribers' });
  const growth = new Map<string, { heapBefore: number; heapAfter: number }>();
  try {
    for (const subject of SUBJECTS) {
      const server = await startChild<SubscribersServerReady>('bench/lib/subscribers-server.ts', {
        cpu: ctx.serverCpu, args: [JSON.stringify({ kind: subject.kind, tasks: maxSize })], name: `${subject.kind} server`,
      });
      try {
        const { url, taskIds } = server.ready;
        /** `count` subscribers, each on its own task, or all on one (then the service shares one execution). */
        const connect = async (count: number, oneTask = false) => {
          await client.call({ op: 'open', transport: subject.transport, url, count });
          await client.call({ op: 'subscribe', tasks: oneTask ? [taskIds[0]] : taskIds.slice(0, count), timeoutMs: 120_000 });
          const counts = await server.call<{ webSockets: number; subscriptions: number }>({ op: 'counts' });
          if (counts.webSockets !== count || (!oneTask && counts.subscriptions !== count)) throw new Error(`${subject.name}: ${JSON.stringify(counts)} for ${count} subscribers`);
        };
        const disconnect = async () => {
          await client.call({ op: 'close' });
          await until(async () => {
            const counts = await server.call<{ webSockets: number; subscriptions: number }>({ op: 'counts' });
            return counts.webSockets === 0 && counts.subscriptions === 0;
          }, 30_000, `${subject.name} to drop every connection`);
        };
        const sample = () => server.call<MemorySample>({ op: 'memory' });

        ctx.log(`  ${subject.name}: warm-up cycle of ${CYCLE_SIZE}`);
        await connect(CYCLE_SIZE);
        await disconnect();
        for (let round = 1; round <= ctx.rounds; round++) {
          for (const size of SIZES) {
            const before = await sample();
            const started = performance.now();
            await connect(size);
            const held = await sample();
            ctx.log(`  ${subject.name}, ${size} subscribers (round ${round}): connected in ${Math.round(performance.now() - started)} ms, heap + external ${((held.heapUsed + held.external) / MB).toFixed(1)} MB`);
            await disconnect();
            const label = `${subject.name}, ${size.toLocaleString('en-US')} subscribers`;
            rows.add(label, HEAP, 'KB', (held.heapUsed + held.external - before.heapUsed - before.external) / size / 1024);
            rows.add(label, RSS, 'KB', (held.rss - before.rss) / size / 1024);
          }
          if (subject.kind === 'app') {
            const before = await sample();
            await connect(maxSize, true);
            const held = await sample();
            await disconnect();
            rows.add(`${subject.name}, ${maxSize.toLocaleString('en-US')} subscribers, one task`, HEAP, 'KB', (held.heapUsed + held.external - before.heapUsed - before.external) / maxSize / 1024);
          }
        }

        const before = await sample();
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          await connect(CYCLE_SIZE);
          await disconnect();
        }
        const after = await sample();
        growth.set(subject.name, { heapBefore: before.heapUsed, heapAfter: after.heapUsed });
        rows.add(subject.name, `heap after ${CYCLES} cycles of ${CYCLE_SIZE.toLocaleString('en-US')}, against before`, '%', ((after.heapUsed - before.heapUsed) / before.heapUsed) * 100);
        rows.add(subject.name, `resident set after ${CYCLES} cycles of ${CYCLE_SIZE.toLocaleString('en-US')}, against before`, '%', ((after.rss - before.rss) / before.rss) * 100);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await client.stop();
  }

  const per = (subject: string, size: number, metric: string) => {
    const label = `${subject}, ${size.toLocaleString('en-US')} subscribers`;
    return rows.has(label, metric) ? rows.median(label, metric) : Number.NaN;
  };
  const ours = SUBJECTS[0]!.name;
  const raw = SUBJECTS[1]!.name;
  const cycled = growth.get(ours);
  const heapGrowth = cycled ? ((cycled.heapAfter - cycled.heapBefore) / cycled.heapBefore) * 100 : Number.NaN;
  return {
    name: 'memory',
    title: 'idle subscribers: graphql-ws (the service) against raw ws',
    rows: rows.rows(),
    ratios: [
      ...SIZES.flatMap((size) => [
        { label: `graphql-ws / raw ws heap + external per subscriber, ${size.toLocaleString('en-US')}`, value: ratio(per(ours, size, HEAP), per(raw, size, HEAP)), target: '<= 2.5', met: ratio(per(ours, size, HEAP), per(raw, size, HEAP)) <= 2.5 },
        { label: `graphql-ws / raw ws resident set per subscriber, ${size.toLocaleString('en-US')}`, value: ratio(per(ours, size, RSS), per(raw, size, RSS)), target: 'none (noisy: pages kept from earlier)', met: null },
      ]),
      { label: `service heap after ${CYCLES} connect/disconnect cycles, change (%)`, value: heapGrowth, target: 'within 5%', met: Math.abs(heapGrowth) <= 5 },
    ],
    notes: [
      `Each subscriber is one connection from the subscriber process (pinned to the load CPU, opened 100 at a time): graphql-ws's client running videoTaskUpdated(id) on its own task (a distinct task each: nothing to share), or a raw \`ws\` client that names its task and gets its current state, as the subscription does. No event is sent while measuring.`,
      'Per subscriber: the server process\'s memory after garbage collection (three gc() passes) with the subscribers connected, minus just before they connected, divided by their number. "JS heap + external" is V8\'s used heap plus memory held outside it for JS objects (socket buffers included); the resident set also counts what the allocator keeps, so it is the noisier of the two.',
      `One task: ${maxSize.toLocaleString('en-US')} graphql-ws subscribers all watching the same task share one execution (src/http/shared-subscriptions.ts): what is left per subscriber is the connection and graphql-ws's own state.`,
      `Cycles: ${CYCLES} times, ${CYCLE_SIZE.toLocaleString('en-US')} subscribers connect, subscribe and disconnect, and the server is waited on until it holds no connection and no subscription; heap after gc compared with before the first cycle, after one warm-up cycle (code compiled, caches filled).`,
    ],
  };
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

