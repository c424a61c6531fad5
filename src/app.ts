// Builds the whole service from its dependencies: storage, providers, the task service and its poller,
// GraphQL over HTTP, SSE and WebSocket, upstream callbacks, and the built-in sandbox upstream when no
// provider key is configured. main.ts only reads config and calls it, so tests build the same app on port 0.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { createYoga } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { InProcessTaskEvents, type TaskEvents } from './events/task-events.ts';
import type { GraphQLContext } from './graphql/context.ts';
import { schema } from './graphql/schema/index.ts';
import { attachWebSocketTransport, type NodeServerContext } from './http/graphql-ws.ts';
import { handleUpstreamWebhook } from './http/upstream-webhook.ts';
import { PollSchedule, pollScheduleOptions } from './poller/poll-schedule.ts';
import { Poller } from './poller/poller.ts';
import { SandboxUpstream } from './sandbox/sandbox-upstream.ts';
import { openDatabase, type Db } from './storage/database.ts';
import { TaskStore } from './storage/task-store.ts';
import { VideoTaskService } from './tasks/task-service.ts';
import {
  ProviderDirectory, SANDBOX_API_KEY, configuredAccounts, sandboxAccounts, type ProviderAccount,
} from './upstream/providers.ts';
import { UpstreamClient } from './upstream/upstream-client.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** Provider accounts to use instead of the configured ones (tests point these at their own sandbox). */
  accounts?: ProviderAccount[];
  events?: TaskEvents;
  now?: () => Date;
}

export interface App {
  /** Listens (port 0 picks a free one), starts the poller, and resolves with the base URL. */
  start(port?: number, host?: string): Promise<string>;
  stop(): Promise<void>;
  readonly db: Db;
  readonly tasks: VideoTaskService;
  readonly events: TaskEvents;
  readonly poller: Poller;
  /** Open WebSocket connections. */
  webSocketConnections(): number;
}

const SANDBOX_PATH = '/sandbox';

export function buildApp(deps: AppDeps): App {
  const { config, logger } = deps;
  const db = openDatabase(config.DATABASE_URL, { busyTimeoutMs: config.SQLITE_BUSY_TIMEOUT_MS });
  const store = new TaskStore(db);
  const events = deps.events ?? new InProcessTaskEvents();
  const schedule = new PollSchedule(pollScheduleOptions(config));
  const upstream = new UpstreamClient({
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    onCall: (call) => logger.debug(call, 'upstream call'),
  });

  const accounts = deps.accounts ?? configuredAccounts(config);
  // With no provider key at all, every model is served by the sandbox, mounted on this same server.
  const sandbox = accounts.length === 0
    ? new SandboxUpstream({ apiKey: SANDBOX_API_KEY, timeScale: config.SANDBOX_TIME_SCALE, basePath: SANDBOX_PATH })
    : null;
  // The embedded sandbox's address is known only once listening: see start().
  const providers = new ProviderDirectory(accounts);

  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const tasks = new VideoTaskService({
    store, upstream, providers, events, schedule, logger, owner,
    leaseMs: config.POLL_LEASE_MS,
    publicUrl: config.PUBLIC_URL,
    now: deps.now,
  });
  const poller = new Poller({
    tasks, providers, upstream, schedule, logger, now: deps.now,
    options: {
      tickMs: config.POLL_TICK_MS,
      concurrencyPerProvider: config.POLL_CONCURRENCY_PER_PROVIDER,
      deadlineMs: config.TASK_DEADLINE_MS,
    },
  });
  const context: GraphQLContext = { tasks, providers };

  const yoga = createYoga<NodeServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: { title: 'seedance-graphql', subscriptionsProtocol: 'WS' },
    context: () => context,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error({ err: args.find((a) => a instanceof Error) }, args.filter((a) => !(a instanceof Error)).map(String).join(' ') || 'graphql error'),
    },
  });

  const server: Server = createServer((req, res) => {
    if (sandbox?.handle(req, res)) return;
    if (handleUpstreamWebhook(req, res, tasks, logger)) return;
    if (req.url === '/' || req.url === '') {
      res.writeHead(302, { location: '/graphql' }).end();
      return;
    }
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    void yoga(req, res, { req, res });
  });
  const webSockets = attachWebSocketTransport(server, yoga, {
    keepAliveMs: config.WS_KEEPALIVE_MS,
    connectionInitTimeoutMs: config.WS_CONNECTION_INIT_TIMEOUT_MS,
  });

  return {
    db,
    tasks,
    events,
    poller,
    webSocketConnections: () => webSockets.connections(),
    async start(port = config.PORT, host = config.HOST) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const local = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
      if (sandbox) {
        sandbox.setPublicBaseUrl((config.PUBLIC_URL ?? `http://localhost:${address.port}`) + SANDBOX_PATH);
        providers.setAccounts(sandboxAccounts(local + SANDBOX_PATH));
        logger.info({ sandbox: local + SANDBOX_PATH }, 'no provider key configured: the built-in sandbox upstream serves every model (provider "sandbox")');
      } else {
        logger.info({ providers: providers.providerNames() }, 'providers configured');
      }
      poller.start();
      logger.info({ url: `${local}/graphql` }, 'GraphQL (and GraphiQL) listening');
      return local;
    },
    async stop() {
      await poller.stop();
      await webSockets.close();
      sandbox?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await upstream.close();
      db.$client.close();
    },
  };
}
