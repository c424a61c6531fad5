// The server side of the subscription benchmarks, run in its own pinned process (see processes.ts):
// either the service itself, or the raw `ws` baseline that broadcasts the same bytes with nothing in
// between. The runner tells it to drive events at a fixed rate or in a burst, and asks it for its CPU
// time, memory and a CPU profile.
//
// On the service, every event goes through the real path: VideoTaskService.applyUpstream (a SQLite
// transaction), TaskEvents.publish, the subscription's GraphQL execution, and graphql-ws (or Yoga's SSE).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocketServer, type WebSocket } from 'ws';
import type { UpstreamTask } from '../../src/upstream/types.ts';
import { childOptions, serveChild } from './child-process.ts';
import { eventMarker, globalTaskId, seedRunningTasks, startBenchApp, startProfile, monotonicMs, type ProfileFrame } from './subscribers-common.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export interface SubscribersServerOptions {
  kind: 'app' | 'raw';
  /** Tasks to seed (the app) or to know of (raw): subscribers pick theirs among them. */
  tasks: number;
  /** Extra environment for the app's configuration. */
  env?: Record<string, string>;
}

export interface SubscribersServerReady { url: string; taskIds: string[]; pid: number }

export type ServerCommand =
  | { op: 'drive'; tasks: string[]; ratePerTask: number; seconds: number }
  | { op: 'burst'; tasks: string[]; eventsPerTask: number }
  | { op: 'cpu' }
  | { op: 'memory' }
  | { op: 'counts' }
  | { op: 'profile-start' }
  | { op: 'profile-stop'; top: number };

export interface DriveResult { events: number; seconds: number; maxLateMs: number }
export interface BurstResult { events: number; startedAtMs: number; publishedAtMs: number }
export interface CpuSample { cpuMs: number; atMs: number }
export interface MemorySample { rss: number; heapUsed: number; external: number; arrayBuffers: number }

/** Publishes one event of one task; `dueAtMs` goes into the marker. */
type Publish = (taskId: string, seq: number, dueAtMs: number) => void;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

serveChild<SubscribersServerReady>(async () => {
  const options = childOptions<SubscribersServerOptions>();
  const seqs = new Map<string, number>();
  const nextSeq = (taskId: string) => {
    const seq = (seqs.get(taskId) ?? 0) + 1;
    seqs.set(taskId, seq);
    return seq;
  };

  let publish: Publish;
  let counts: () => Record<string, number>;
  let taskIds: string[];
  let url: string;
  let close: () => Promise<void>;

  if (options.kind === 'app') {
    const bench = await startBenchApp(options.env);
    const { app } = bench;
    // Nothing but the benchmark changes the seeded tasks (they have no upstream to poll).
    await app.poller.stop();
    taskIds = seedRunningTasks(app, options.tasks);
    const upstreamIds = new Map(taskIds.map((id) => [id, app.tasks.get(id)!.upstreamTaskId!]));
    publish = (taskId, seq, dueAtMs) => {
      const answer: UpstreamTask = {
        upstreamTaskId: upstreamIds.get(taskId)!,
        status: 'IN_PROGRESS',
        statusWord: eventMarker(seq, dueAtMs),
        progress: Math.min(99, seq),
        createdAt: null, completedAt: null, expiresAt: null, videoUrl: null, lastFrameUrl: null,
        error: null, taskInfo: null, usage: null,
      };
      app.tasks.applyUpstream(taskId, answer, 'poll');
    };
    counts = () => ({ webSockets: app.webSocketConnections(), subscriptions: app.events.listenerCount() });
    url = bench.url;
    close = () => bench.close();
  } else {
    ({ publish, counts, url, close } = await startRawBroadcast());
    taskIds = Array.from({ length: options.tasks }, (_, i) => `bench-task-${i}`);
  }

  let profiling: ((top: number) => Promise<ProfileFrame[]>) | null = null;

  return {
    ready: { url, taskIds, pid: process.pid },
    async handle(body: unknown) {
      const command = body as ServerCommand;
      switch (command.op) {
        case 'drive': return drive(command, (taskId, dueAtMs) => publish(taskId, nextSeq(taskId), dueAtMs));
        case 'burst': return burst(command, (taskId, dueAtMs) => publish(taskId, nextSeq(taskId), dueAtMs));
        case 'cpu': {
          const usage = process.cpuUsage();
          return { cpuMs: (usage.user + usage.system) / 1000, atMs: monotonicMs() } satisfies CpuSample;
        }
        case 'memory': {
          for (let i = 0; i < 3; i++) {
            gc();
            await sleep(30);
          }
          const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
          return { rss, heapUsed, external, arrayBuffers } satisfies MemorySample;
        }
        case 'counts': return counts();
        case 'profile-start': {
          profiling = await startProfile();
          return null;
        }
        case 'profile-stop': {
          const frames = (await profiling?.(command.top)) ?? [];
          profiling = null;
          return frames;
        }
      }
    },
    stop: () => close(),
  };
});

/**
 * Events at a fixed offered rate: task i's j-th event is due at (j + i/n) / rate seconds, so the load is
 * spread evenly. Each event is published as soon as it is due (or at once when the loop is behind), and
 * its marker carries the due time, so a stalled server shows in the subscribers' latency.
 */
async function drive(command: { tasks: string[]; ratePerTask: number; seconds: number }, publish: (taskId: string, dueAtMs: number) => void): Promise<DriveResult> {
  const { tasks, ratePerTask, seconds } = command;
  const n = tasks.length;
  const total = Math.round(seconds * ratePerTask) * n;
  const spacingMs = 1000 / (ratePerTask * n);
  const startMs = monotonicMs() + 5;
  let maxLateMs = 0;
  let k = 0;
  while (k < total) {
    const now = monotonicMs();
    while (k < total && startMs + k * spacingMs <= now) {
      const due = startMs + k * spacingMs;
      maxLateMs = Math.max(maxLateMs, now - due);
      publish(tasks[k % n]!, due);
      k++;
    }
    if (k < total) await sleep(Math.max(0, startMs + k * spacingMs - monotonicMs()));
  }
  return { events: total, seconds: (monotonicMs() - startMs) / 1000, maxLateMs };
}

/** `eventsPerTask` rounds over the tasks, back to back: how fast the deliveries drain is the capacity. */
function burst(command: { tasks: string[]; eventsPerTask: number }, publish: (taskId: string, dueAtMs: number) => void): BurstResult {
  const startedAtMs = monotonicMs();
  for (let j = 0; j < command.eventsPerTask; j++) {
    for (const taskId of command.tasks) publish(taskId, monotonicMs());
  }
  return { events: command.eventsPerTask * command.tasks.length, startedAtMs, publishedAtMs: monotonicMs() };
}

/**
 * The baseline: a `ws` server that sends each event's bytes to the sockets watching its task, shaped
 * exactly as graphql-ws sends a `next` message, serialized once per event. A client picks its task with
 * one message ({"subscribe": taskId}) and is answered with the task's current state, as
 * videoTaskUpdated starts with it.
 */
async function startRawBroadcast(): Promise<{ publish: Publish; counts: () => Record<string, number>; url: string; close: () => Promise<void> }> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const watchers = new Map<string, Set<WebSocket>>();
  const state = new Map<string, string>();
  const message = (taskId: string, upstreamStatus: string, progress: number) => JSON.stringify({
    id: '1',
    type: 'next',
    payload: { data: { videoTaskUpdated: { id: globalTaskId(taskId), status: 'IN_PROGRESS', progress, upstreamStatus } } },
  });
  wss.on('connection', (socket) => {
    let watching: string | null = null;
    const leave = () => {
      if (watching) watchers.get(watching)?.delete(socket);
    };
    socket.on('message', (data) => {
      const { subscribe } = JSON.parse(String(data)) as { subscribe: string };
      leave();
      watching = subscribe;
      let set = watchers.get(subscribe);
      if (!set) watchers.set(subscribe, (set = new Set()));
      set.add(socket);
      socket.send(state.get(subscribe) ?? message(subscribe, 'in_progress', 0));
    });
    socket.on('close', leave);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    publish(taskId, seq, dueAtMs) {
      const bytes = message(taskId, eventMarker(seq, dueAtMs), Math.min(99, seq));
      state.set(taskId, bytes);
      const sockets = watchers.get(taskId);
      if (sockets) for (const socket of sockets) socket.send(bytes);
    },
    counts: () => ({ webSockets: wss.clients.size, subscriptions: [...watchers.values()].reduce((sum, set) => sum + set.size, 0) }),
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
