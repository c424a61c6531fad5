// Builds the whole service as main.ts does, on port 0 with a SQLite file in a temp dir, talking to a
// sandbox upstream on its own port, so tests exercise real HTTP end to end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startSandboxServer, type SandboxOptions, type SandboxUpstream } from '../../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY, sandboxAccounts } from '../../src/upstream/providers.ts';

export interface Harness {
  url: string;
  app: App;
  config: Config;
  sandbox: SandboxUpstream | null;
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<{ data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] }>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  /** Use the sandbox mounted inside the app (as `npm start` does with no key) instead of a separate one. */
  embeddedSandbox?: boolean;
  sandbox?: Partial<SandboxOptions>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-test-'));
  const config = loadConfig({
    PORT: '0',
    DATABASE_URL: join(dir, 'tasks.sqlite'),
    MEDIA_DIR: join(dir, 'media'),
    LOG_LEVEL: 'silent',
    SANDBOX_TIME_SCALE: '0.01',
    // The provider's pace, compressed like the sandbox's clock.
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
    UPSTREAM_TIMEOUT_MS: '2000',
    POLL_LEASE_MS: '5000',
    SQLITE_BUSY_TIMEOUT_MS: '1000',
    SHUTDOWN_GRACE_MS: '1000',
    ...options.env,
  });
  const logger = createLogger(config.LOG_LEVEL);
  const sandboxServer = options.embeddedSandbox
    ? null
    : await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: 0.01, port: 0, allowInternalCallbacks: true, ...options.sandbox });
  const accounts = sandboxServer ? sandboxAccounts(sandboxServer.url, { allowsInternalCallbacks: true }) : undefined;
  let app: App;
  let url: string;
  try {
    app = buildApp({ config, logger, accounts });
    url = await app.start(0, '127.0.0.1');
  } catch (error) {
    // Nothing may keep the test process alive when the app cannot be built.
    await sandboxServer?.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    app,
    config,
    sandbox: sandboxServer?.sandbox ?? null,
    async gql(query, variables) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query, variables }),
      });
      return response.json() as Promise<any>;
    },
    async stop() {
      await app.stop();
      await sandboxServer?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
