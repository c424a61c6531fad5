// The environment, parsed and checked once. This is the only module that reads process.env.
import { z } from 'zod';

const optionalText = z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), z.string().optional());
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, '');

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z.string().min(1).default('./data/seedance.sqlite')
    .transform((v) => v.replace(/^file:/, '')),
  MEDIA_DIR: z.string().min(1).default('./data/media'),
  PUBLIC_URL: z.preprocess((v) => (v === '' ? undefined : v), httpUrl.transform(withoutTrailingSlash).optional()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TOAPIS_API_KEY: optionalText,
  TOAPIS_BASE_URL: httpUrl.default('https://toapis.com').transform(withoutTrailingSlash),
  ODKKK_API_KEY: optionalText,
  ODKKK_BASE_URL: httpUrl.default('https://ai.odkkk.com/apiv1').transform(withoutTrailingSlash),
  // Seed 003 does not give its task-detail path; `{id}` is replaced by the upstream task id.
  ODKKK_TASK_PATH: z.string().regex(/^\/.*\{id\}/, 'must start with / and contain {id}').default('/v1/videos/generations/{id}'),
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(30_000),
  // How fast the built-in sandbox upstream runs its tasks: 1 is the seeds' real durations (40-300 s),
  // 0.1 makes a task take a tenth of that.
  SANDBOX_TIME_SCALE: z.coerce.number().positive().max(10).default(0.1),
});

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the given environment; a bad value throws a ConfigError naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  return parsed.data;
}
