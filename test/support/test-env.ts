// The settings every in-process test app runs with, in one place: the providers' pace compressed (the
// sandbox's clock runs 100x faster), short upstream timeouts and leases, logs silent, and the database
// and media in a temp dir. Suites that need other values override them.
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config.ts';

/** The providers' pace (POLL_*) compressed to milliseconds, as the sandbox's clock is. */
export const COMPRESSED_PACE: Readonly<Record<string, string>> = {
  POLL_FIRST_MS: '20',
  POLL_QUEUED_MIN_MS: '40',
  POLL_QUEUED_MAX_MS: '80',
  POLL_IN_PROGRESS_MIN_MS: '40',
  POLL_IN_PROGRESS_MAX_MS: '80',
  POLL_MIN_MS: '20',
  POLL_BACKOFF_BASE_MS: '50',
  POLL_BACKOFF_MAX_MS: '1000',
  POLL_RATE_LIMITED_WAIT_MS: '300',
  POLL_UNAVAILABLE_WAIT_MS: '150',
  POLL_TICK_MS: '20',
};

/** The compressed pace with the timeouts that go with it, logs silent. */
export const TEST_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'silent',
  ...COMPRESSED_PACE,
  UPSTREAM_TIMEOUT_MS: '2000',
  POLL_LEASE_MS: '5000',
  SQLITE_BUSY_TIMEOUT_MS: '1000',
};

/** TEST_ENV on port 0 with the database and media under `dir` and the embedded sandbox's clock 100x; `env` overrides. */
export function testConfig(dir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    PORT: '0',
    DATABASE_URL: join(dir, 'tasks.sqlite'),
    MEDIA_DIR: join(dir, 'media'),
    SANDBOX_TIME_SCALE: '0.01',
    ...TEST_ENV,
    ...env,
  });
}
