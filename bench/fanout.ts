// 4. Fan-out: 100, 1,000 and 5,000 subscribers watching one task, or each its own task, while events
// are driven through the real publish path (VideoTaskService.applyUpstream: a SQLite write, publish,
// the subscription's GraphQL execution, graphql-ws). Baselines in the same run: a raw `ws` server
// broadcasting the same bytes, and Yoga's SSE on the same service.
//
// Per subject: latency, loss and order at a fixed offered rate (10 events/s per subscriber, the time of
// each event's due moment carried in the event itself), then the delivery rate: a burst of events, as
// fast as the server can deliver them to every subscriber, and the server's CPU time per delivery.
import { ratio, Rows } from './lib/measure.ts';
import { startChild, type ChildHandle } from './lib/processes.ts';
import type { ClientReport, Transport } from './lib/subscribers-client.ts';
import type { ProfileFrame } from './lib/subscribers-common.ts';
import type { BurstResult, CpuSample, DriveResult, SubscribersServerReady } from './lib/subscribers-server.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';

// FANOUT_SIZES=100,1000 for a quicker look while developing; the committed results use all three.
const SIZES = process.env.FANOUT_SIZES ? process.env.FANOUT_SIZES.split(',').map(Number) : [100, 1_000, 5_000];
const MODES = ['same task', 'distinct tasks'] as const;
type Mode = (typeof MODES)[number];
/** The target's offered rate: events per second reaching each subscriber. */
const RATE_PER_SUBSCRIBER = 10;
/**
 * Deliveries per measured window and per burst, at most: larger windows are shortened to stay within
 * them, and a burst publishes (this / subscribers) events per task. With distinct tasks every delivery
 * is its own task change (a SQLite write and an execution), and Yoga's SSE executes per subscriber:
 * both deliver an order of magnitude fewer per second, so they get fewer, to keep the run short.
 */
function budget(transport: Transport, mode: Mode): { window: number; burst: number } {
  if (mode === 'distinct tasks') return { window: 3_000, burst: 2_000 };
  return transport === 'sse' ? { window: 10_000, burst: 5_000 } : { window: 30_000, burst: 20_000 };
}
/** The subject the targets are about. */
const TARGET_SUBSCRIBERS = 1_000;

const P50 = 'p50 delivery at 10 events/s';
const P99 = 'p99 delivery at 10 events/s';
const LOST = 'lost or reordered at 10 events/s';
const RATE = 'delivery rate (burst)';
const CPU = 'server CPU per delivery';

const TRANSPORTS: { transport: Transport; server: 'app' | 'raw'; label: string }[] = [
  { transport: 'graphql-ws', server: 'app', label: 'graphql-ws' },
  { transport: 'raw-ws', server: 'raw', label: 'raw ws' },
  { transport: 'sse', server: 'app', label: 'Yoga SSE' },
];

const subjectName = (label: string, size: number, mode: Mode) => `${label}, ${size.toLocaleString('en-US')} subscribers, ${mode}`;

export default async function fanout(ctx: BenchContext): Promise<BenchResult> {
  const rows = new Rows();
  const notes: string[] = [];
  const maxSize = Math.max(...SIZES);
  const client = await startChild<{ pid: number }>('bench/lib/subscribers-client.ts', { cpu: ctx.loadCpu, name: 'subscribers' });
  const servers = new Map<'app' | 'raw', ChildHandle<SubscribersServerReady>>();
  const profiles = new Map<Mode, ProfileFrame[]>();
  const windowSeconds = Math.min(ctx.durationSeconds, 2);
  const warmupSeconds = Math.min(ctx.warmupSeconds, 1);
  try {
    for (const kind of ['app', 'raw'] as const) {
      servers.set(kind, await startChild<SubscribersServerReady>('bench/lib/subscribers-server.ts', {
        cpu: ctx.serverCpu, args: [JSON.stringify({ kind, tasks: maxSize })], name: `${kind} server`,
      }));
    }
    for (const { transport, server: kind, label } of TRANSPORTS) {
      const server = servers.get(kind)!;
      for (const size of SIZES) {
        const opened = performance.now();
        await client.call({ op: 'open', transport, url: server.ready.url, count: size });
        for (const mode of MODES) {
          const tasks = mode === 'same task' ? [server.ready.taskIds[0]!] : server.ready.taskIds.slice(0, size);
          await client.call({ op: 'subscribe', tasks, timeoutMs: 120_000 });
          const subject = subjectName(label, size, mode);
          ctx.log(`  ${subject}: connected and subscribed after ${Math.round(performance.now() - opened)} ms`);
          const measured = performance.now();
          const limits = budget(transport, mode);
          const seconds = Math.min(windowSeconds, limits.window / (RATE_PER_SUBSCRIBER * size));
          const burstPerTask = Math.max(1, Math.round(limits.burst / size));
          await atFixedRate(server, client, tasks, size, Math.min(warmupSeconds, seconds));
          await burst(server, client, tasks, size, burstPerTask);
          for (let round = 1; round <= ctx.rounds; round++) {
            const fixed = await atFixedRate(server, client, tasks, size, seconds);
            rows.add(subject, P50, 'ms', fixed.report.latencyMs.p50);
            rows.add(subject, P99, 'ms', fixed.report.latencyMs.p99);
            rows.add(subject, LOST, 'events', fixed.missing + fixed.report.outOfOrder);
            const delivery = await burst(server, client, tasks, size, burstPerTask);
            rows.add(subject, RATE, 'msg/s', delivery.rate);
            rows.add(subject, CPU, 'µs', delivery.cpuMicrosPerDelivery);
          }
          if (transport === 'graphql-ws' && size === TARGET_SUBSCRIBERS) {
            await server.call({ op: 'profile-start' });
            await burst(server, client, tasks, size, burstPerTask);
            profiles.set(mode, await server.call<ProfileFrame[]>({ op: 'profile-stop', top: 12 }));
          }
          await client.call({ op: 'unsubscribe' });
          ctx.log(`  ${subject}: measured in ${Math.round(performance.now() - measured)} ms`);
        }
        await client.call({ op: 'close' });
      }
    }
  } finally {
    await client.stop();
    for (const server of servers.values()) await server.stop();
  }

  const at = (label: string, mode: Mode, metric: string) => {
    const subject = subjectName(label, TARGET_SUBSCRIBERS, mode);
    return rows.has(subject, metric) ? rows.median(subject, metric) : Number.NaN;
  };
  const lostEverywhere = rows.rows().filter((row) => row.subject.startsWith('graphql-ws') && row.metric === LOST)
    .reduce((sum, row) => sum + row.rounds.reduce((a, b) => a + b, 0), 0);
  const ratios = MODES.flatMap((mode) => {
    const p99 = at('graphql-ws', mode, P99);
    const overRaw = ratio(at('graphql-ws', mode, RATE), at('raw ws', mode, RATE));
    return [
      { label: `graphql-ws p99 delivery, 1,000 subscribers x 10 events/s, ${mode} (ms)`, value: p99, target: '< 50 ms', met: p99 < 50 },
      { label: `graphql-ws / raw ws delivery rate, 1,000 subscribers, ${mode}`, value: overRaw, target: '>= 0.5', met: overRaw >= 0.5 },
      { label: `Yoga SSE / raw ws delivery rate, 1,000 subscribers, ${mode}`, value: ratio(at('Yoga SSE', mode, RATE), at('raw ws', mode, RATE)), target: 'none (baseline)', met: null },
      { label: `graphql-ws / raw ws server CPU per delivery, 1,000 subscribers, ${mode}`, value: ratio(at('graphql-ws', mode, CPU), at('raw ws', mode, CPU)), target: 'none (why the rate differs)', met: null },
    ];
  });
  ratios.splice(0, 0, { label: 'graphql-ws events lost or reordered, every size and mode, every round', value: lostEverywhere, target: '0', met: lostEverywhere === 0 });

  notes.push(
    `Subscribers: one connection each, in one process pinned to the load CPU, opened 100 at a time; graphql-ws's own client, \`ws\` for the raw baseline, node:http reading Yoga's SSE. Each runs \`videoTaskUpdated(id)\` selecting id, status, progress and upstreamStatus.`,
    `Events: VideoTaskService.applyUpstream(task, answer, 'poll') with rising progress and an upstream status word carrying the event's sequence number and due time, so each subscriber checks order and loss and measures delivery from when the event was due (coordinated omission included). The raw server sends graphql-ws \`next\` messages of the same shape, serialized once per event. Tasks were seeded IN_PROGRESS straight into SQLite (setup only) and the poller stopped.`,
    `Fixed rate: ${RATE_PER_SUBSCRIBER} events/s per subscriber (one task: ${RATE_PER_SUBSCRIBER} publishes/s; distinct tasks: ${RATE_PER_SUBSCRIBER} per task, spread evenly, so 1,000 subscribers are 10,000 task changes/s), for ${windowSeconds} s, shortened so that a window holds at most ${budget('graphql-ws', 'same task').window.toLocaleString('en-US')} deliveries on one task (SSE ${budget('sse', 'same task').window.toLocaleString('en-US')}) and ${budget('graphql-ws', 'distinct tasks').window.toLocaleString('en-US')} on distinct tasks. Lost = published but not received 10 s after the window, plus any event that arrived out of order.`,
    `Delivery rate: ${budget('graphql-ws', 'same task').burst.toLocaleString('en-US')} deliveries (SSE ${budget('sse', 'same task').burst.toLocaleString('en-US')}; distinct tasks ${budget('graphql-ws', 'distinct tasks').burst.toLocaleString('en-US')}) published back to back, events per task = that / subscribers, divided by the time from the first publish to the last receipt; CPU per delivery is the server process's CPU time over the burst. The subscriber process has one core for all its connections, so at the top rates the client side may be the limit (the raw baseline first): the CPU per delivery is the server-side cost whatever the client.`,
    'The service runs one execution per distinct subscription (principal, operation, variables) over WebSocket, shared by every connection running it (src/http/shared-subscriptions.ts): on one task, one GraphQL execution per event whatever the number of subscribers; on distinct tasks nothing is shared, and every event is its own task change (a SQLite write) and execution. Yoga\'s SSE executes per subscriber.',
    `Rounds run back to back per subject (not interleaved: holding 5,000 connections per transport at once would measure the client more than the server). SQLite on tmpfs: see the poller benchmark for what synchronous=FULL costs per write on disk.`,
  );
  for (const [mode, profile] of profiles) {
    notes.push(`Server CPU profile, graphql-ws, 1,000 subscribers, ${mode}, during a burst (self time, idle left out): ${profile.map((f) => `${f.frame} ${(f.share * 100).toFixed(1)}%`).join('; ')}.`);
  }
  return {
    name: 'fanout',
    title: 'subscription fan-out: graphql-ws against raw ws and Yoga SSE',
    rows: rows.rows(),
    ratios,
    notes,
  };
}

interface FixedRateOutcome { drive: DriveResult; report: ClientReport; missing: number }

/** One window at the fixed offered rate: every subscriber's events, counted and timed by the client. */
async function atFixedRate(
  server: ChildHandle<SubscribersServerReady>, client: ChildHandle, tasks: string[], subscribers: number, seconds: number,
): Promise<FixedRateOutcome> {
  await client.call({ op: 'reset' });
  const drive = await server.call<DriveResult>({ op: 'drive', tasks, ratePerTask: RATE_PER_SUBSCRIBER, seconds });
  const expected = drive.events * (subscribers / tasks.length);
  await client.call({ op: 'expect', total: expected, timeoutMs: 10_000 });
  const report = await client.call<ClientReport>({ op: 'report' });
  if (report.errors > 0) throw new Error(`subscribers saw ${report.errors} errors`);
  return { drive, report, missing: Math.max(0, expected - report.received) + report.gaps };
}

/** A burst: deliveries per second from the first publish to the last receipt, and server CPU per delivery. */
async function burst(
  server: ChildHandle<SubscribersServerReady>, client: ChildHandle, tasks: string[], subscribers: number, eventsPerTask: number,
): Promise<{ rate: number; cpuMicrosPerDelivery: number }> {
  await client.call({ op: 'reset' });
  const expected = eventsPerTask * subscribers;
  const before = await server.call<CpuSample>({ op: 'cpu' });
  const [published, received] = await Promise.all([
    server.call<BurstResult>({ op: 'burst', tasks, eventsPerTask }),
    client.call<{ received: number; lastAtMs: number }>({ op: 'expect', total: expected, timeoutMs: 60_000 }),
  ]);
  const after = await server.call<CpuSample>({ op: 'cpu' });
  if (received.received < expected) throw new Error(`burst: ${received.received} of ${expected} deliveries arrived`);
  const seconds = (received.lastAtMs - published.startedAtMs) / 1000;
  return { rate: expected / seconds, cpuMicrosPerDelivery: ((after.cpuMs - before.cpuMs) * 1000) / expected };
}
