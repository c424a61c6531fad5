// Builds the whole service from its dependencies: storage, providers, GraphQL over HTTP, and the
// built-in sandbox upstream when no provider key is configured. main.ts only reads config and calls it,
// so tests build the same app on port 0.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { GraphQLContext } from './graphql/context.ts';
import { schema } from './graphql/schema/index.ts';
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
  now?: () => Date;
}

export interface App {
  /** Listens (port 0 picks a free one) and resolves with the base URL. */
  start(port?: number, host?: string): Promise<string>;
  stop(): Promise<void>;
  readonly db: Db;
  readonly tasks: VideoTaskService;
}

const SANDBOX_PATH = '/sandbox';

export function buildApp(deps: AppDeps): App {
  const { config, logger } = deps;
  const db = openDatabase(config.DATABASE_URL);
  const store = new TaskStore(db);
  const upstream = new UpstreamClient({
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    onCall: (call) => logger.debug(call, 'upstream call'),
  });

  const accounts = deps.accounts ?? configuredAccounts(config);
  // With no provider key at all, every model is served by the sandbox, mounted on this same server.
  const sandbox = accounts.length === 0
    ? new SandboxUpstream({ apiKey: SANDBOX_API_KEY, timeScale: config.SANDBOX_TIME_SCALE, basePath: SANDBOX_PATH })
    : null;
  const directory = new ProviderDirectory(accounts);

  const tasks = new VideoTaskService({ store, upstream, providers: directory, logger, now: deps.now });
  const context: GraphQLContext = { tasks, providers: directory };

  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: { title: 'seedance-graphql' },
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

  return {
    db,
    tasks,
    async start(port = config.PORT, host = config.HOST) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const local = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
      if (sandbox) {
        sandbox.setPublicBaseUrl((config.PUBLIC_URL ?? `http://localhost:${address.port}`) + SANDBOX_PATH);
        directory.setAccounts(sandboxAccounts(local + SANDBOX_PATH));
        logger.info({ sandbox: local + SANDBOX_PATH }, 'no provider key configured: the built-in sandbox upstream serves every model (provider "sandbox")');
      } else {
        logger.info({ providers: [...new Set(accounts.map((a) => a.name))] }, 'providers configured');
      }
      logger.info({ url: `${local}/graphql` }, 'GraphQL (and GraphiQL) listening');
      return local;
    },
    async stop() {
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
