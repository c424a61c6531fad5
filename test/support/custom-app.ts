// The service built in-process like the harness does, but with the provider accounts, logger and
// sandbox options a test chooses: real-provider-style accounts (no internal callbacks), a logger that
// writes into memory, a sandbox in front of which the test records what the upstream received.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { buildApp, type App } from '../../src/app.ts';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { SandboxUpstream, type SandboxOptions } from '../../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY, type ProviderAccount } from '../../src/upstream/providers.ts';
import { testConfig } from './test-env.ts';

/** One request the sandbox received, as it arrived (method, path, headers). */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  at: number;
}

export interface RecordedSandbox {
  url: string;
  sandbox: SandboxUpstream;
  /** Every request that reached the sandbox, in arrival order. */
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/** A sandbox upstream on its own port, recording each request's headers before the sandbox answers it. */
export async function startRecordedSandbox(options: Partial<SandboxOptions> = {}): Promise<RecordedSandbox> {
  const sandbox = new SandboxUpstream({ apiKey: SANDBOX_API_KEY, timeScale: 0.01, ...options });
  const received: ReceivedRequest[] = [];
  const server: Server = createServer((req, res) => {
    received.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers }, at: Date.now() });
    if (sandbox.handle(req, res)) return;
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"no route"}}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (!options.publicBaseUrl) sandbox.setPublicBaseUrl(url);
  return {
    url,
    sandbox,
    received,
    close: async () => {
      sandbox.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface CustomApp {
  url: string;
  app: App;
  config: Config;
  upstream: RecordedSandbox;
  stop(): Promise<void>;
}

export interface CustomAppOptions {
  env?: Record<string, string>;
  /** The provider accounts, given the sandbox's base URL. */
  accounts(sandboxUrl: string): ProviderAccount[];
  logger?: Logger;
  sandbox?: Partial<SandboxOptions>;
}

export async function startCustomApp(options: CustomAppOptions): Promise<CustomApp> {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-custom-'));
  const config = testConfig(dir, options.env);
  const upstream = await startRecordedSandbox(options.sandbox);
  const app = buildApp({ config, logger: options.logger ?? createLogger(config.LOG_LEVEL), accounts: options.accounts(upstream.url) });
  const url = await app.start(0, '127.0.0.1');
  let stopped = false;
  return {
    url,
    app,
    config,
    upstream,
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.stop();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
