// The environment, parsed and checked once. This is the only module that reads process.env.
import { z } from 'zod';

const list = (value: string) => value.split(',').map((item) => item.trim().toLowerCase()).filter(Boolean);
const optionalText = z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), z.string().optional());
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, '');

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z.string().min(1).default('./data/seedance.sqlite')
    .transform((v) => v.replace(/^file:/, '')),
  // How long a SQLite writer waits for another before giving up.
  SQLITE_BUSY_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  MEDIA_DIR: z.string().min(1).default('./data/media'),
  // Uploads: images are capped by the seeds at 10 MB; reference video and audio by this.
  UPLOAD_MAX_IMAGE_BYTES: z.coerce.number().int().min(1).default(10 * 1024 * 1024),
  UPLOAD_MAX_MEDIA_BYTES: z.coerce.number().int().min(1).default(100 * 1024 * 1024),
  // Archiving results before the provider's 24-hour links expire.
  ARCHIVE_MAX_BYTES: z.coerce.number().int().min(1).default(1024 * 1024 * 1024),
  ARCHIVE_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(6),
  ARCHIVE_CONCURRENCY: z.coerce.number().int().min(1).default(4),
  ARCHIVE_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  // Delete archived files older than this many days; 0 keeps them.
  ARCHIVE_RETENTION_DAYS: z.coerce.number().min(0).default(0),
  // Hosts results may be downloaded from besides each provider's own (comma-separated; `.example.com`
  // for a domain), and hosts allowed to be private addresses (none by default).
  MEDIA_TRUSTED_HOSTS: z.string().default('').transform(list),
  MEDIA_PRIVATE_HOSTS_ALLOWED: z.string().default('').transform(list),
  // Key of the signatures on archived-media links; when unset one is made and kept in MEDIA_DIR.
  MEDIA_SIGNING_SECRET: optionalText,
  // How long a signed media link handed to a client stays valid.
  MEDIA_LINK_TTL_SECONDS: z.coerce.number().int().min(60).default(24 * 3600),
  PUBLIC_URL: z.preprocess((v) => (v === '' ? undefined : v), httpUrl.transform(withoutTrailingSlash).optional()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TOAPIS_API_KEY: optionalText,
  TOAPIS_BASE_URL: httpUrl.default('https://toapis.com').transform(withoutTrailingSlash),
  ODKKK_API_KEY: optionalText,
  ODKKK_BASE_URL: httpUrl.default('https://ai.odkkk.com/apiv1').transform(withoutTrailingSlash),
  // Seed 003 does not give its task-detail path; `{id}` is replaced by the upstream task id.
  ODKKK_TASK_PATH: z.string().regex(/^\/.*\{id\}/, 'must start with / and contain {id}').default('/v1/videos/generations/{id}'),
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(30_000),
  // The poller: provider-recommended pace (UPSTREAM.md: 5-10 s queued, 10-15 s in progress), backoff, limits.
  POLL_FIRST_MS: z.coerce.number().int().min(0).default(2_000),
  POLL_QUEUED_MIN_MS: z.coerce.number().int().min(1).default(5_000),
  POLL_QUEUED_MAX_MS: z.coerce.number().int().min(1).default(10_000),
  POLL_IN_PROGRESS_MIN_MS: z.coerce.number().int().min(1).default(10_000),
  POLL_IN_PROGRESS_MAX_MS: z.coerce.number().int().min(1).default(15_000),
  POLL_MIN_MS: z.coerce.number().int().min(1).default(1_000),
  // The longest wait a provider's estimated_time may set (0: an estimate only ever shortens the pace).
  POLL_ESTIMATE_MAX_MS: z.coerce.number().int().min(0).default(30_000),
  POLL_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(2_000),
  POLL_BACKOFF_MAX_MS: z.coerce.number().int().min(1).default(120_000),
  // Seed 003's suggested waits, used when a 429 or 503 arrives without Retry-After.
  POLL_RATE_LIMITED_WAIT_MS: z.coerce.number().int().min(0).default(60_000),
  POLL_UNAVAILABLE_WAIT_MS: z.coerce.number().int().min(0).default(30_000),
  POLL_TICK_MS: z.coerce.number().int().min(5).default(250),
  POLL_CONCURRENCY_PER_PROVIDER: z.coerce.number().int().min(1).max(1000).default(16),
  // A process that dies holding a task gives it up after this long; must exceed UPSTREAM_TIMEOUT_MS.
  POLL_LEASE_MS: z.coerce.number().int().min(100).default(60_000),
  TASK_DEADLINE_MS: z.coerce.number().int().min(1_000).default(30 * 60_000),
  // WebSocket subscriptions (graphql-ws): keep-alive pings and how long a connection may wait to init.
  WS_KEEPALIVE_MS: z.coerce.number().int().min(0).default(12_000),
  WS_CONNECTION_INIT_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  // Who may call: this service's API keys (see `npm run keys`). Anonymous access is the development
  // default only while HOST is a loopback address; anywhere else it must be turned on explicitly.
  ANONYMOUS_ACCESS: z.enum(['true', 'false']).optional().transform((v) => (v === undefined ? undefined : v === 'true')),
  // Per key: requests (each mutation root field counts), tasks created per minute, unfinished tasks at once.
  RATE_LIMIT_REQUESTS_PER_MINUTE: z.coerce.number().int().min(1).default(600),
  RATE_LIMIT_TASKS_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  MAX_UNFINISHED_TASKS_PER_KEY: z.coerce.number().int().min(1).default(20),
  // What one operation may cost (graphql-armor).
  GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(1).default(10),
  GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).default(15),
  GRAPHQL_MAX_DIRECTIVES: z.coerce.number().int().min(0).default(10),
  GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(100).default(2_000),
  GRAPHQL_MAX_COST: z.coerce.number().int().min(100).default(5_000),
  // Production: turn off GraphiQL and introspection with GRAPHIQL=false INTROSPECTION=false.
  GRAPHIQL: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  INTROSPECTION: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  // development shows field suggestions and unmasked error details; anything else hides them.
  NODE_ENV: z.enum(['development', 'production', 'test']).default('production'),
  WS_MAX_PAYLOAD_BYTES: z.coerce.number().int().min(1024).default(256 * 1024),
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().min(1).default(50),
  WS_MAX_CONNECTIONS_PER_KEY: z.coerce.number().int().min(1).default(20),
  // SIGTERM: how long in-flight requests may take to finish before connections are cut.
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  // How fast the built-in sandbox upstream runs its tasks: 1 is the seeds' real durations (40-300 s),
  // 0.1 makes a task take a tenth of that.
  SANDBOX_TIME_SCALE: z.coerce.number().positive().max(10).default(0.1),
});

const checked = schema.superRefine((config, ctx) => {
  const ranges = [['POLL_QUEUED_MIN_MS', 'POLL_QUEUED_MAX_MS'], ['POLL_IN_PROGRESS_MIN_MS', 'POLL_IN_PROGRESS_MAX_MS']] as const;
  for (const [min, max] of ranges) {
    if (config[min] > config[max]) ctx.addIssue({ code: 'custom', path: [min], message: `must not exceed ${max}` });
  }
  // A holder may spend a whole upstream call and then wait for the write lock before it records the
  // answer; its lease must outlast both, or another process could take (and misjudge) the task meanwhile.
  if (config.POLL_LEASE_MS <= config.UPSTREAM_TIMEOUT_MS + config.SQLITE_BUSY_TIMEOUT_MS) {
    ctx.addIssue({ code: 'custom', path: ['POLL_LEASE_MS'], message: 'must exceed UPSTREAM_TIMEOUT_MS + SQLITE_BUSY_TIMEOUT_MS, or a slow call could lose its task to another process' });
  }
});

export type Config = z.infer<typeof schema>;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/** Anonymous access: as configured, else on only while the service listens on loopback alone. */
export function anonymousAccess(config: Config): boolean {
  return config.ANONYMOUS_ACCESS ?? (LOOPBACK_HOSTS.has(config.HOST) || config.HOST.startsWith('127.'));
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the given environment; a bad value throws a ConfigError naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = checked.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  return parsed.data;
}
