// The subscribers, in their own pinned process (see processes.ts): many connections of one transport,
// each watching one task, counting what arrives, in what order and how late. Real clients: graphql-ws's
// own client over `ws`, plain `ws` for the raw baseline, and Node's HTTP client reading Yoga's SSE.
import { Agent, request, type ClientRequest } from 'node:http';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { serveChild } from './child-process.ts';
import { WATCH_TASK, globalTaskId, percentile, readMarker, monotonicMs } from './subscribers-common.ts';

export type Transport = 'graphql-ws' | 'raw-ws' | 'sse';

export type ClientCommand =
  /** Opens `count` connections (SSE connects per subscription, in `subscribe`), `batch` at a time. */
  | { op: 'open'; transport: Transport; url: string; count: number; batch?: number }
  /** Subscriber i watches tasks[i % tasks.length]; resolves once every subscriber has the task's current state. */
  | { op: 'subscribe'; tasks: string[]; batch?: number; timeoutMs?: number }
  | { op: 'unsubscribe' }
  /** Starts a measurement window: counters and latencies from now on. */
  | { op: 'reset' }
  /** Resolves when `total` events have arrived in this window, or after `timeoutMs`. */
  | { op: 'expect'; total: number; timeoutMs: number }
  | { op: 'report' }
  | { op: 'close' };

export interface ClientReport {
  subscribers: number;
  received: number;
  /** Sequence numbers skipped (an event missing between two that arrived). */
  gaps: number;
  /** Events that arrived after a later one of the same task, or twice. */
  outOfOrder: number;
  errors: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  firstAtMs: number;
  lastAtMs: number;
}

interface TaskPayload { upstreamStatus: string | null }

/** One subscriber: its connection, and what it has seen of its task. */
interface Subscriber {
  lastSeq: number;
  /** The first message of a subscription is the task's current state, not a driven event. */
  initial: boolean;
  end: (() => void) | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

serveChild(async () => {
  let transport: Transport = 'graphql-ws';
  let baseUrl = '';
  let gqlClients: Client[] = [];
  let sockets: WebSocket[] = [];
  let subscribers: Subscriber[] = [];
  /** Subscribers to run: one per connection (SSE opens its connections as it subscribes). */
  let connectionCount = 0;
  const sseAgent = new Agent({ keepAlive: false, maxSockets: Infinity });
  let errors = 0;
  let firstError: string | null = null;

  // The current window.
  let received = 0;
  let gaps = 0;
  let outOfOrder = 0;
  let latencies: number[] = [];
  let firstAtMs = 0;
  let lastAtMs = 0;
  let initialLeft = 0;
  let onInitialDone: (() => void) | null = null;
  let waiter: { total: number; resolve: () => void } | null = null;

  const fail = (error: unknown) => {
    errors++;
    firstError ??= error instanceof Error ? error.message : JSON.stringify(error);
  };

  const deliver = (subscriber: Subscriber, payload: TaskPayload | undefined) => {
    const at = monotonicMs();
    const marker = readMarker(payload?.upstreamStatus);
    if (subscriber.initial) {
      subscriber.initial = false;
      subscriber.lastSeq = marker?.seq ?? 0;
      if (--initialLeft === 0) onInitialDone?.();
      return;
    }
    if (!marker) return fail(new Error(`an event without a marker: ${JSON.stringify(payload)}`));
    if (marker.seq <= subscriber.lastSeq) outOfOrder++;
    else {
      gaps += marker.seq - subscriber.lastSeq - 1;
      subscriber.lastSeq = marker.seq;
    }
    latencies.push(at - marker.dueAtMs);
    if (received === 0) firstAtMs = at;
    lastAtMs = at;
    received++;
    if (waiter && received >= waiter.total) {
      waiter.resolve();
      waiter = null;
    }
  };

  async function inBatches(count: number, batch: number, start: (i: number) => Promise<void>): Promise<void> {
    for (let from = 0; from < count; from += batch) {
      const results = await Promise.allSettled(Array.from({ length: Math.min(batch, count - from) }, (_, k) => start(from + k)));
      for (const result of results) if (result.status === 'rejected') fail(result.reason);
    }
  }

  function openGraphqlWs(): Promise<Client> {
    return new Promise((resolve, reject) => {
      const client = createClient({
        url: baseUrl.replace(/^http/, 'ws') + '/graphql',
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        keepAlive: 0,
        on: {
          connected: () => resolve(client),
          closed: (event) => reject(new Error(`closed: ${(event as { code?: number }).code}`)),
          error: reject,
        },
        onNonLazyError: reject,
      });
    });
  }

  function openRawWs(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(baseUrl.replace(/^http/, 'ws') + '/graphql');
      socket.once('open', () => resolve(socket));
      socket.once('error', reject);
    });
  }

  function subscribeOne(i: number, taskId: string): void {
    const subscriber: Subscriber = { lastSeq: 0, initial: true, end: null };
    subscribers[i] = subscriber;
    if (transport === 'graphql-ws') {
      subscriber.end = gqlClients[i]!.subscribe<{ videoTaskUpdated: TaskPayload }>(
        { query: WATCH_TASK, variables: { id: globalTaskId(taskId) } },
        {
          next: (result) => result.errors ? fail(result.errors) : deliver(subscriber, result.data?.videoTaskUpdated),
          error: fail,
          complete: () => undefined,
        },
      );
    } else if (transport === 'raw-ws') {
      const socket = sockets[i]!;
      socket.removeAllListeners('message');
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as { payload: { data: { videoTaskUpdated: TaskPayload } } };
        deliver(subscriber, message.payload.data.videoTaskUpdated);
      });
      socket.send(JSON.stringify({ subscribe: taskId }));
    } else {
      subscriber.end = subscribeSse(subscriber, taskId);
    }
  }

  /** One SSE subscription (Yoga's "distinct connections" mode): one HTTP request, events until it ends. */
  function subscribeSse(subscriber: Subscriber, taskId: string): () => void {
    const { hostname, port } = new URL(baseUrl);
    const body = JSON.stringify({ query: WATCH_TASK, variables: { id: globalTaskId(taskId) } });
    const req: ClientRequest = request({
      host: hostname, port, path: '/graphql', method: 'POST', agent: sseAgent,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      if (res.statusCode !== 200) fail(new Error(`SSE status ${res.statusCode}`));
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!message.startsWith('event: next')) continue;
          const data = message.slice(message.indexOf('data: ') + 6);
          const payload = JSON.parse(data) as { data?: { videoTaskUpdated: TaskPayload }; errors?: unknown };
          if (payload.errors) fail(payload.errors);
          else deliver(subscriber, payload.data?.videoTaskUpdated);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (error) => {
      if (!ended) fail(error);
    });
    req.end(body);
    let ended = false;
    return () => {
      ended = true;
      req.destroy();
    };
  }

  async function closeAll(): Promise<void> {
    for (const subscriber of subscribers) subscriber?.end?.();
    subscribers = [];
    await Promise.allSettled(gqlClients.map((client) => client.dispose()));
    for (const socket of sockets) socket.terminate();
    gqlClients = [];
    sockets = [];
    connectionCount = 0;
    await sleep(50);
  }

  return {
    ready: { pid: process.pid },
    async handle(body: unknown) {
      const command = body as ClientCommand;
      switch (command.op) {
        case 'open': {
          await closeAll();
          transport = command.transport;
          baseUrl = command.url;
          connectionCount = command.count;
          errors = 0;
          firstError = null;
          const batch = command.batch ?? 100;
          if (transport === 'graphql-ws') {
            gqlClients = new Array<Client>(command.count);
            await inBatches(command.count, batch, async (i) => { gqlClients[i] = await openGraphqlWs(); });
          } else if (transport === 'raw-ws') {
            sockets = new Array<WebSocket>(command.count);
            await inBatches(command.count, batch, async (i) => { sockets[i] = await openRawWs(); });
          }
          if (errors > 0) throw new Error(`${errors} connections failed: ${firstError}`);
          return { opened: command.count };
        }
        case 'subscribe': {
          const total = connectionCount;
          for (const subscriber of subscribers) subscriber?.end?.();
          subscribers = new Array<Subscriber>(total);
          initialLeft = total;
          const allInitial = new Promise<void>((resolve) => { onInitialDone = resolve; });
          const batch = command.batch ?? 200;
          for (let from = 0; from < total; from += batch) {
            const until = Math.min(total, from + batch);
            for (let i = from; i < until; i++) subscribeOne(i, command.tasks[i % command.tasks.length]!);
            // Let the batch's first events arrive before the next batch: a gradual ramp.
            while (initialLeft > total - until && errors === 0) await sleep(5);
          }
          const timeout = sleep(command.timeoutMs ?? 60_000).then(() => 'timeout');
          if (await Promise.race([allInitial.then(() => 'ok'), timeout]) === 'timeout' || errors > 0) {
            throw new Error(`subscribing: ${initialLeft} of ${total} got no first event; ${errors} errors (${firstError})`);
          }
          return { subscribers: total };
        }
        case 'unsubscribe': {
          for (const subscriber of subscribers) subscriber?.end?.();
          return null;
        }
        case 'reset': {
          received = 0;
          gaps = 0;
          outOfOrder = 0;
          latencies = [];
          firstAtMs = 0;
          lastAtMs = 0;
          return null;
        }
        case 'expect': {
          if (received < command.total) {
            await Promise.race([
              new Promise<void>((resolve) => { waiter = { total: command.total, resolve }; }),
              sleep(command.timeoutMs),
            ]);
            waiter = null;
          }
          return { received, lastAtMs };
        }
        case 'report': {
          const sorted = Float64Array.from(latencies).sort();
          const mean = latencies.reduce((sum, value) => sum + value, 0) / (latencies.length || 1);
          return {
            subscribers: subscribers.length,
            received, gaps, outOfOrder, errors,
            latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN, mean },
            firstAtMs, lastAtMs,
          } satisfies ClientReport;
        }
        case 'close': {
          await closeAll();
          return null;
        }
      }
    },
    stop: () => closeAll(),
  };
});
