// Builds the whole service from its dependencies: storage, providers, the task service and its poller,
// GraphQL over HTTP, SSE and WebSocket, upstream callbacks, health and metrics, and the built-in sandbox
// upstream when no provider key is configured. main.ts only reads config and calls it, so tests build
// the same app on port 0.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { NoSchemaIntrospectionCustomRule, getOperationAST } from 'graphql';
import { createYoga, type GraphQLParams, type Plugin } from 'graphql-yoga';
import processRequest from 'graphql-upload/processRequest.mjs';
import type { Logger } from 'pino';
import { ApiKeyStore } from './auth/api-keys.ts';
import { Authenticator } from './auth/authenticator.ts';
import type { Principal } from './auth/principal.ts';
import { anonymousAccess, type Config } from './config.ts';
import { InProcessTaskEvents, type TaskEvents } from './events/task-events.ts';
import type { GraphQLContext } from './graphql/context.ts';
import { useDurableMutations } from './graphql/durable-mutations.ts';
import { useSourceEventExecution } from './graphql/source-event-execution.ts';
import { schema } from './graphql/schema/index.ts';
import { attachWebSocketTransport, type NodeServerContext } from './http/graphql-ws.ts';
import { handleUpstreamWebhook } from './http/upstream-webhook.ts';
import { RateLimiter } from './limits/rate-limiter.ts';
import { handleMediaRequest } from './http/media-routes.ts';
import { Archiver } from './media/archiver.ts';
import { MediaAssetStore } from './media/media-assets.ts';
import { MediaLinks, mediaSigningSecret } from './media/media-links.ts';
import { LocalMediaStorage } from './media/media-storage.ts';
import { SafeDownloader } from './media/safe-download.ts';
import { MediaUploads } from './media/uploads.ts';
import { UrlSigner } from './media/url-signer.ts';
import { rateLimited, useRequestBodyLimit, useRequestRateLimit } from './limits/request-limits.ts';
import { ServiceMetrics } from './observability/metrics.ts';
import { requestContext, requestIdFrom } from './observability/request-context.ts';
import { PollSchedule, pollScheduleOptions } from './poller/poll-schedule.ts';
import { Poller } from './poller/poller.ts';
import { SandboxUpstream } from './sandbox/sandbox-upstream.ts';
import { openGroupCommitDatabase, type Db } from './storage/database.ts';
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
  /** Drains: stops accepting, finishes in-flight requests and the current polls, closes WebSockets with 1001, flushes SQLite. */
  stop(): Promise<void>;
  readonly db: Db;
  readonly tasks: VideoTaskService;
  readonly events: TaskEvents;
  readonly poller: Poller;
  readonly apiKeys: ApiKeyStore;
  readonly metrics: ServiceMetrics;
  readonly archiver: Archiver;
  /** Open WebSocket connections. */
  webSocketConnections(): number;
}

const SANDBOX_PATH = '/sandbox';
/** The largest GraphQL request body (uploads excepted: their limits are graphql-upload's); Yoga's default. */
const REQUEST_BODY_LIMIT_BYTES = 25_000_000;

/** Initial context fields beyond Yoga's: the WebSocket transport passes the connection's principal. */
type InitialContext = { request?: Request; principal?: Principal };

/** A GraphQL multipart request, already parsed (files streaming to disk) by graphql-upload. */
type ServerContext = NodeServerContext & { uploadOperations?: GraphQLParams | GraphQLParams[] };

export function buildApp(deps: AppDeps): App {
  const { config, logger } = deps;
  // Commits wait for no disk; what must survive a machine crash awaits `durability` (database.ts).
  const { db, durability } = openGroupCommitDatabase(config.DATABASE_URL, { busyTimeoutMs: config.SQLITE_BUSY_TIMEOUT_MS });
  const store = new TaskStore(db);
  const apiKeys = new ApiKeyStore(db);
  const authenticator = new Authenticator(apiKeys, anonymousAccess(config));
  const events = deps.events ?? new InProcessTaskEvents();
  const schedule = new PollSchedule(pollScheduleOptions(config));
  let webSockets: ReturnType<typeof attachWebSocketTransport> | null = null;
  const metrics = new ServiceMetrics({
    // WebSocket subscribers sharing another's execution hold no listener of their own (shared-subscriptions.ts).
    openSubscriptions: () => events.listenerCount() + (webSockets?.sharedSubscribers() ?? 0),
    webSocketConnections: () => webSockets?.connections() ?? 0,
    tasksByStatus: () => store.countByStatus(),
  });
  const upstream = new UpstreamClient({
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    onCall: (call) => {
      metrics.upstreamRequests.observe({ provider: call.provider, method: call.method, status: String(call.httpStatus ?? 0) }, call.durationMs / 1000);
      if (call.failure) metrics.upstreamErrors.inc({ provider: call.provider, kind: call.failure === 'http' ? String(call.httpStatus) : call.failure });
      logger.debug({ upstreamCall: call }, 'upstream call');
    },
  });

  const accounts = deps.accounts ?? configuredAccounts(config);
  // With no provider key at all, every model is served by the sandbox, mounted on this same server.
  const sandbox = accounts.length === 0
    ? new SandboxUpstream({ apiKey: SANDBOX_API_KEY, timeScale: config.SANDBOX_TIME_SCALE, basePath: SANDBOX_PATH })
    : null;
  // The embedded sandbox's address is known only once listening: see start().
  const providers = new ProviderDirectory(accounts, undefined, {
    trustedHosts: config.MEDIA_TRUSTED_HOSTS,
    privateHostsAllowed: config.MEDIA_PRIVATE_HOSTS_ALLOWED,
  });

  // Media: uploads in, archived results out, both under MEDIA_DIR, linked from PUBLIC_URL (or this server).
  let publicBase = config.PUBLIC_URL ?? `http://localhost:${config.PORT}`;
  const storage = new LocalMediaStorage(config.MEDIA_DIR);
  const links = new MediaLinks(new UrlSigner(mediaSigningSecret(config.MEDIA_SIGNING_SECRET, config.MEDIA_DIR), config.MEDIA_LINK_TTL_SECONDS), () => publicBase);
  const uploads = new MediaUploads(storage, new MediaAssetStore(db), {
    maxImageBytes: config.UPLOAD_MAX_IMAGE_BYTES,
    maxMediaBytes: config.UPLOAD_MAX_MEDIA_BYTES,
  });
  const downloader = new SafeDownloader(config.ARCHIVE_TIMEOUT_MS);

  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const tasks = new VideoTaskService({
    store, durability, upstream, providers, events, schedule, logger, owner,
    leaseMs: config.POLL_LEASE_MS,
    publicUrl: config.PUBLIC_URL,
    limits: {
      tasksPerMinute: new RateLimiter(config.RATE_LIMIT_TASKS_PER_MINUTE),
      maxUnfinishedTasks: config.MAX_UNFINISHED_TASKS_PER_KEY,
    },
    storage,
    trustedMediaPrefixes: () => [`${links.mediaBase}/uploads/`],
    now: deps.now,
  });
  const archiver = new Archiver({
    tasks, providers, storage, downloader, logger, now: deps.now,
    leaseMs: config.POLL_LEASE_MS,
    onOutcome: (outcome) => metrics.archiveOutcomes.inc({ outcome }),
    expireArchives: (before) => tasks.expireArchives(before),
    options: {
      tickMs: Math.max(config.POLL_TICK_MS, 100),
      concurrency: config.ARCHIVE_CONCURRENCY,
      maxBytes: config.ARCHIVE_MAX_BYTES,
      maxAttempts: config.ARCHIVE_MAX_ATTEMPTS,
      backoffBaseMs: config.POLL_BACKOFF_BASE_MS,
      backoffMaxMs: config.POLL_BACKOFF_MAX_MS,
      retentionDays: config.ARCHIVE_RETENTION_DAYS,
    },
  });
  const poller = new Poller({
    tasks, providers, upstream, schedule, logger, now: deps.now,
    onClaimed: (row, now) => {
      if (row.nextPollAt) metrics.pollLag.observe(Math.max(0, now.getTime() - row.nextPollAt.getTime()) / 1000);
    },
    options: {
      tickMs: config.POLL_TICK_MS,
      concurrencyPerProvider: config.POLL_CONCURRENCY_PER_PROVIDER,
      deadlineMs: config.TASK_DEADLINE_MS,
    },
  });

  const requestLimiter = new RateLimiter(config.RATE_LIMIT_REQUESTS_PER_MINUTE);
  const development = config.NODE_ENV === 'development';
  const armor = EnvelopArmorPlugin({
    maxDepth: { n: config.GRAPHQL_MAX_DEPTH },
    maxAliases: { n: config.GRAPHQL_MAX_ALIASES },
    maxDirectives: { n: config.GRAPHQL_MAX_DIRECTIVES },
    maxTokens: { n: config.GRAPHQL_MAX_TOKENS },
    costLimit: { maxCost: config.GRAPHQL_MAX_COST },
    blockFieldSuggestion: { enabled: !development },
  });
  const plugins: Plugin<GraphQLContext>[] = [
    armor as Plugin<GraphQLContext>,
    useRequestRateLimit(requestLimiter),
    usePrometheus({
      registry: metrics.registry,
      endpoint: '/metrics',
      // GraphQL latency and errors. The plugin's other defaults are off: they cost a fifth of a small
      // query's CPU (bench/task-query.ts) for little. The deprecated-field counter walks every document
      // with a TypeInfo on every request, cache hit or not; the request-time summary feeds a t-digest;
      // parse and validate are cache hits; the HTTP histogram repeats http_request_duration_seconds.
      metrics: {
        graphql_envelop_phase_execute: true, graphql_envelop_phase_subscribe: true, graphql_envelop_error_result: true, graphql_envelop_request_duration: true,
        graphql_envelop_request: false, graphql_envelop_deprecated_field: false, graphql_envelop_request_time_summary: false,
        graphql_envelop_phase_parse: false, graphql_envelop_phase_validate: false, graphql_envelop_phase_context: false,
        graphql_envelop_schema_change: false, graphql_yoga_http_duration: false,
      },
    }) as Plugin<GraphQLContext>,
    // Queries and mutations run as code compiled once per document (graphql-jit) rather than graphql-js
    // walking the document on every request: the executor was the largest single cost of a query after
    // Yoga's own HTTP handling (bench/task-query.ts). Not subscriptions: graphql-jit's subscribe lost
    // events of filtered subscriptions (videoTasksUpdated) and masked errors in others.
    useGraphQlJit({}, { enableIf: (args) => getOperationAST(args.document, args.operationName)?.operation !== 'subscription' }) as Plugin<GraphQLContext>,
    // A subscription's events, executed one at a time by the WebSocket transport (graphql-ws.ts).
    useSourceEventExecution(),
    {
      // Multipart requests were parsed before Yoga (graphql-upload streams files to disk instead of
      // memory); hand Yoga the operations it produced.
      onRequestParse({ serverContext, setRequestParser }) {
        const operations = (serverContext as unknown as ServerContext | undefined)?.uploadOperations;
        if (operations) setRequestParser(() => operations);
      },
    } satisfies Plugin<GraphQLContext>,
    // Yoga's own limit (off below) streamed every body through a counter: see useRequestBodyLimit.
    // After the upload plugin, so that it sees the parser Yoga will use.
    useRequestBodyLimit(REQUEST_BODY_LIMIT_BYTES),
    // Last: a mutation's answer waits for its writes to be durable, after the others' hooks have run.
    useDurableMutations(durability, (error) => logger.error({ err: error }, 'could not sync the database: answers fail until a restart')),
  ].flat();
  // Not @graphql-yoga/plugin-disable-introspection: it marks HTTP requests as they are parsed, and an
  // operation over WebSocket has no such request, so introspection stayed open there.
  if (!config.INTROSPECTION) plugins.push({ onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) });

  const yoga = createYoga<ServerContext, GraphQLContext>({
    schema,
    // Uploads go through graphql-upload (see route()); Yoga's own parser would buffer files in memory.
    multipart: false,
    maxRequestBodySize: false,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: config.GRAPHIQL ? { title: 'seedance-graphql', subscriptionsProtocol: 'WS' } : false,
    // GraphiQL served whole from this process (Yoga's default loads it from a CDN, which offline
    // machines and locked-down networks cannot reach).
    renderGraphiQL,
    maskedErrors: { isDev: development },
    plugins,
    context: (initial: InitialContext) => ({
      tasks,
      providers,
      principal: initial.principal ?? authenticator.principalFor(initial.request?.headers.get('authorization')),
      requestId: requestContext.getStore()?.requestId,
      media: links,
      uploads,
    }),
    logging: {
      // Yoga logs at debug several times per request: the message is built only when it will be written.
      debug: (...args) => { if (logger.isLevelEnabled('debug')) logger.debug(args.map(String).join(' ')); },
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error({ err: args.find((a) => a instanceof Error) }, args.filter((a) => !(a instanceof Error)).map(String).join(' ') || 'graphql error'),
    },
  });

  let stopping = false;
  const ready = () => {
    // durable: a failed WAL sync fails every mutation from then on (NOT_DURABLE) until a restart.
    const checks = { database: false, durable: durability.healthy(), poller: poller.healthy(), accepting: !stopping };
    try {
      checks.database = db.$client.prepare('SELECT 1 AS ok').get() !== undefined;
    } catch {
      checks.database = false;
    }
    return { ok: Object.values(checks).every(Boolean), checks };
  };

  const route = (req: IncomingMessage, res: ServerResponse): string => {
    if (sandbox?.handle(req, res)) return 'sandbox';
    if (handleMediaRequest(req, res, storage, links.signer, logger)) return 'media';
    if (handleUpstreamWebhook(req, res, tasks, durability, logger)) return 'webhook';
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      res.writeHead(302, { location: '/graphql' }).end();
      return 'root';
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return 'healthz';
    }
    if (path === '/readyz') {
      const readiness = ready();
      res.writeHead(readiness.ok ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: readiness.ok ? 'ready' : 'not ready', checks: readiness.checks }));
      return 'readyz';
    }
    if (path === '/graphql' && req.method === 'POST' && /^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) {
      processRequest(req, res, { maxFileSize: config.UPLOAD_MAX_MEDIA_BYTES, maxFiles: 1 }).then(
        (operations) => {
          // graphql-upload consumes the body (enforcing its own limits: file size, one file, field sizes).
          // Yoga must neither read it too nor judge it by its Content-Length: its 25 MB request limit
          // would refuse uploads UPLOAD_MAX_MEDIA_BYTES allows, and cut them off mid-stream. A request
          // with a parsed `body` is one Yoga does not stream (as behind Express's body-parser).
          delete req.headers['content-length'];
          Object.assign(req, { body: operations });
          return yoga(req, res, { req, res, uploadOperations: operations as GraphQLParams | GraphQLParams[] });
        },
        (error: { status?: number; message?: string }) => {
          res.writeHead(error.status ?? 400, { 'content-type': 'application/json' })
            .end(JSON.stringify({ errors: [{ message: error.message ?? 'Invalid multipart request', extensions: { code: 'BAD_REQUEST' } }] }));
        },
      );
      return 'graphql';
    }
    void yoga(req, res, { req, res });
    return path === '/metrics' ? 'metrics' : 'graphql';
  };

  const server: Server = createServer((req, res) => {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    const started = performance.now();
    requestContext.run({ requestId }, () => {
      const name = route(req, res);
      res.once('finish', () => {
        metrics.httpRequests.observe({ route: name, method: req.method ?? '', status: String(res.statusCode) }, (performance.now() - started) / 1000);
      });
    });
  });
  webSockets = attachWebSocketTransport(server, yoga, {
    keepAliveMs: config.WS_KEEPALIVE_MS,
    connectionInitTimeoutMs: config.WS_CONNECTION_INIT_TIMEOUT_MS,
    maxPayloadBytes: config.WS_MAX_PAYLOAD_BYTES,
    maxSubscriptionsPerConnection: config.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxConnectionsPerKey: config.WS_MAX_CONNECTIONS_PER_KEY,
    authenticate: (params) => authenticator.principalForConnection(params),
    admitSharedSubscriber: (principal) => {
      const decision = requestLimiter.take(principal.ownerId);
      return decision.ok ? null : rateLimited(`Too many requests for this key; retry in ${decision.retryAfterSeconds} s.`, decision.retryAfterSeconds);
    },
    logger,
  });
  const transport = webSockets;

  return {
    db,
    tasks,
    events,
    poller,
    apiKeys,
    metrics,
    archiver,
    webSocketConnections: () => transport.connections(),
    async start(port = config.PORT, host = config.HOST) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      // This server as it reaches itself (a wildcard bind is reached on loopback).
      const wildcard = address.address === '0.0.0.0' || address.address === '::';
      const local = wildcard ? `http://127.0.0.1:${address.port}`
        : `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
      publicBase = config.PUBLIC_URL ?? local;
      if (sandbox) {
        sandbox.setPublicBaseUrl(publicBase + SANDBOX_PATH);
        providers.setAccounts(sandboxAccounts(local + SANDBOX_PATH, { resultBaseUrl: publicBase }));
        logger.info({ sandbox: local + SANDBOX_PATH }, 'no provider key configured: the built-in sandbox upstream serves every model (provider "sandbox")');
      } else {
        logger.info({ providers: providers.providerNames() }, 'providers configured');
      }
      logger.info(
        { anonymousAccess: authenticator.allowAnonymous, graphiql: config.GRAPHIQL, introspection: config.INTROSPECTION },
        authenticator.allowAnonymous
          ? 'anonymous access is ON (requests without an API key are served): keep the service on loopback'
          : 'API keys required (create one with `npm run keys -- create NAME`)',
      );
      await storage.removeStaleStaging(new Date(Date.now() - 3_600_000));
      poller.start();
      archiver.start();
      logger.info({ url: `${local}/graphql` }, 'GraphQL (and GraphiQL) listening');
      return local;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      // 1. No new connections; 2. the polls in flight finish and are written; 3. subscriptions end
      // (SSE streams complete, sockets close with 1001); 4. requests in flight finish, within the grace
      // period; 5. the last sync ends, the WAL is folded into the database file and SQLite closed.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.all([poller.stop(), archiver.stop()]);
      events.close();
      await transport.close();
      sandbox?.close();
      const grace = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_GRACE_MS);
      // A request finishing during the drain leaves a keep-alive socket idle; close those as they appear,
      // or the drain would wait for clients to hang up.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      await closed;
      clearTimeout(grace);
      clearInterval(sweep);
      await Promise.all([upstream.close(), downloader.close()]);
      await durability.close();
      // The checkpoint syncs the WAL and then the database file, so every commit is durable after it.
      db.$client.pragma('wal_checkpoint(TRUNCATE)');
      db.$client.close();
      logger.info('stopped');
    },
  };
}
