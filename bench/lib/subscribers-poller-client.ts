// The poller benchmark's client, in its own pinned process: creates the tasks over GraphQL at a fixed
// rate, and watches them over graphql-ws (videoTasksUpdated, COMPLETED only), noting when each
// completion reached it.
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { serveChild } from './child-process.ts';
import { monotonicMs } from './subscribers-common.ts';

export type PollerClientCommand =
  | { op: 'watch'; url: string }
  | { op: 'create'; url: string; count: number; perSecond: number; model: string }
  | { op: 'receipts' }
  | { op: 'close' };

export interface CreateOutcome { taskIds: string[]; failures: string[] }

const WATCH_COMPLETIONS = 'subscription { videoTasksUpdated(filter: { status: [COMPLETED] }) { id status } }';
const CREATE = 'mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id } userErrors { code message } } }';

const rowId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').replace(/^VideoTask:/, '');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

serveChild(async () => {
  let client: Client | null = null;
  let stopWatching: (() => void) | null = null;
  let receipts = new Map<string, number>();
  let watchError: string | null = null;

  async function create(command: Extract<PollerClientCommand, { op: 'create' }>): Promise<CreateOutcome> {
    const taskIds: string[] = [];
    const failures: string[] = [];
    const started = monotonicMs();
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < command.count; i++) {
      const due = started + (i * 1000) / command.perSecond;
      const wait = due - monotonicMs();
      if (wait > 1) await sleep(wait);
      const request = fetch(`${command.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query: CREATE, variables: { input: { model: command.model, prompt: `Benchmark task ${i}` } } }),
      }).then(async (response) => {
        const body = await response.json() as { data?: { createVideoTask: { task: { id: string } | null; userErrors: { code: string }[] } }; errors?: unknown };
        const task = body.data?.createVideoTask.task;
        if (task) taskIds.push(rowId(task.id));
        else failures.push(JSON.stringify(body.errors ?? body.data?.createVideoTask.userErrors));
      }, (error: unknown) => { failures.push(String(error)); });
      const tracked: Promise<void> = request.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= 64) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return { taskIds, failures };
  }

  return {
    ready: { pid: process.pid },
    async handle(body: unknown) {
      const command = body as PollerClientCommand;
      switch (command.op) {
        case 'watch': {
          receipts = new Map();
          watchError = null;
          client = createClient({ url: command.url.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
          stopWatching = client.subscribe<{ videoTasksUpdated: { id: string; status: string } }>({ query: WATCH_COMPLETIONS }, {
            next: (result) => {
              const at = monotonicMs();
              const task = result.data?.videoTasksUpdated;
              if (!task) watchError ??= JSON.stringify(result.errors);
              else if (!receipts.has(rowId(task.id))) receipts.set(rowId(task.id), at);
            },
            error: (error) => { watchError ??= String(error); },
            complete: () => undefined,
          });
          return null;
        }
        case 'create': return create(command);
        case 'receipts': {
          if (watchError) throw new Error(`watching: ${watchError}`);
          return Object.fromEntries(receipts);
        }
        case 'close': {
          stopWatching?.();
          await client?.dispose();
          client = null;
          return null;
        }
      }
    },
    async stop() {
      stopWatching?.();
      await client?.dispose();
    },
  };
});
