// Builds the whole service as main.ts does, on port 0 with a SQLite file in a temp dir, talking to a
// sandbox upstream on its own port, so tests exercise real HTTP end to end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from '../../src/app.ts';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startSandboxServer, type SandboxOptions, type SandboxUpstream } from '../../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY, sandboxAccounts } from '../../src/upstream/providers.ts';
import { testConfig } from './test-env.ts';

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
  const config = testConfig(dir, { SHUTDOWN_GRACE_MS: '1000', ...options.env });
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
