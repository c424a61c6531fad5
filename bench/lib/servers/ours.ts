// Our service, built as main.ts builds it (buildApp), on the given SQLite file, with the limits that
// would refuse a benchmark's traffic raised out of the way and logging off.
// Options (one JSON argument): { database: string; sandboxUrl?: string; env?: Record<string, string>; clientKeys?: number }.
// With sandboxUrl the providers are that sandbox; without, the embedded sandbox serves (reads need none).
// With clientKeys, that many client API keys are created and reported (ready.keys), as if for as many clients.
import { join } from 'node:path';
import { buildApp } from '../../../src/app.ts';
import { loadConfig } from '../../../src/config.ts';
import { createLogger } from '../../../src/logger.ts';
import { sandboxAccounts } from '../../../src/upstream/providers.ts';
import { childOptions, serveChild } from '../child-process.ts';

interface Options {
  database: string;
  sandboxUrl?: string;
  env?: Record<string, string>;
  clientKeys?: number;
}

/** What every benchmark of ours runs with: no rate limit can be what a number measures. */
export const BENCH_ENV: Record<string, string> = {
  LOG_LEVEL: 'silent',
  RATE_LIMIT_REQUESTS_PER_MINUTE: '1000000000',
  RATE_LIMIT_TASKS_PER_MINUTE: '1000000000',
  MAX_UNFINISHED_TASKS_PER_KEY: '1000000000',
};

serveChild(async () => {
  const options = childOptions<Options>();
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: options.database,
    MEDIA_DIR: join(options.database, '..', 'media'),
    ...BENCH_ENV,
    ...options.env,
  });
  const accounts = options.sandboxUrl ? sandboxAccounts(options.sandboxUrl) : undefined;
  const app = buildApp({ config, logger: createLogger(config.LOG_LEVEL), accounts });
  const keys = Array.from({ length: options.clientKeys ?? 0 }, (_, i) => app.apiKeys.create(`bench-client-${i + 1}`, 'client').key);
  const url = await app.start(0, '127.0.0.1');
  return { ready: { url, keys }, stop: () => app.stop() };
});
