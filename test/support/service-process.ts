// Runs the real service (src/main.ts) as a child process, configured only through its environment,
// so that a test can SIGKILL it mid-work and start another one on the same SQLite file. The providers
// point wherever the test says (a sandbox, or a recording proxy in front of one), as real ones would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SANDBOX_API_KEY, SANDBOX_MOUNTS } from '../../src/upstream/providers.ts';
import { COMPRESSED_PACE } from './test-env.ts';

export const PROJECT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LISTENING = 'GraphQL (and GraphiQL) listening';

export interface LogLine {
  msg?: string;
  level?: number;
  [field: string]: unknown;
}

export interface ServiceProcess {
  /** Base URL (no /graphql), from the "listening" log line. */
  url: string;
  pid: number;
  /** Every JSON log line printed so far. */
  logs: LogLine[];
  /** Everything printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Sends a signal (default SIGKILL); a no-op once the process has exited. */
  kill(signal?: NodeJS.Signals): void;
  /** Settles when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills the process (SIGKILL) if it still runs and waits for it to be gone. */
  stop(): Promise<void>;
  /** One GraphQL request over HTTP. */
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<{ data?: T; errors?: { message: string }[] }>;
}

export interface ServiceProcessOptions {
  /** The SQLite file; share it between processes to share their tasks. */
  databaseFile: string;
  /** The sandbox's (or a proxy's) base URL: toapis and odkkk are reached below it, at the sandbox's mounts. */
  upstreamUrl: string;
  /** Overrides and additions (POLL_*, UPSTREAM_TIMEOUT_MS, ...). */
  env?: Record<string, string>;
  /** How long to wait for the "listening" line. */
  timeoutMs?: number;
}

/** The harness's compressed provider pace, with a short lease so a killed holder's tasks are taken over quickly. */
export const FAST_POLL_ENV: Readonly<Record<string, string>> = {
  ...COMPRESSED_PACE,
  UPSTREAM_TIMEOUT_MS: '1000',
  // Above UPSTREAM_TIMEOUT_MS + SQLITE_BUSY_TIMEOUT_MS, as the config requires.
  POLL_LEASE_MS: '1500',
  SQLITE_BUSY_TIMEOUT_MS: '250',
};

/** A fresh temp dir for a test's database file; remove it with the returned function. */
export function tempDatabase(): { file: string; dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-process-'));
  return { file: join(dir, 'tasks.sqlite'), dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Set by node --test for its own children; the service is not a test file.
  delete env.NODE_TEST_CONTEXT;
  for (const key of Object.keys(env)) {
    if (/^(TOAPIS|ODKKK|POLL|UPSTREAM|TASK|PUBLIC|SANDBOX)_/.test(key)) delete env[key];
  }
  Object.assign(env, {
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: options.databaseFile,
    MEDIA_DIR: join(dirname(options.databaseFile), 'media'),
    LOG_LEVEL: 'info',
    TOAPIS_API_KEY: SANDBOX_API_KEY,
    TOAPIS_BASE_URL: options.upstreamUrl + SANDBOX_MOUNTS.toapis,
    ODKKK_API_KEY: SANDBOX_API_KEY,
    ODKKK_BASE_URL: options.upstreamUrl + SANDBOX_MOUNTS.odkkk,
    ...FAST_POLL_ENV,
    ...options.env,
  });

  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: PROJECT_DIR,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let pending = '';
  const logs: LogLine[] = [];
  let onLine: (line: LogLine) => void = () => {};
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      text += `\nspawn failed: ${error.message}`;
      resolve({ code: -1, signal: null });
    });
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(line) as LogLine;
        logs.push(parsed);
        onLine(parsed);
      } catch { /* not a log line */ }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });

  // Should the test process end without its after hooks (a crash, a runner timeout), take the child along.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = (signal: NodeJS.Signals = 'SIGKILL') => {
    if (running()) child.kill(signal);
  };
  const stop = async () => {
    kill('SIGKILL');
    await exited;
  };

  const listening = new Promise<LogLine>((resolve) => {
    onLine = (line) => { if (line.msg === LISTENING) resolve(line); };
  });
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening,
    exited.then((how) => new Error(`the service exited (${how.signal ?? `code ${how.code}`}) before logging "${LISTENING}"`)),
    new Promise<Error>((resolve) => {
      timer = setTimeout(() => resolve(new Error(`the service did not log "${LISTENING}" within ${timeoutMs / 1000} s`)), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome instanceof Error) {
    await stop();
    throw new Error(`${outcome.message}; its output was:\n${text}`);
  }
  const url = String(outcome.url).replace(/\/graphql$/, '');

  return {
    url,
    pid: child.pid!,
    logs,
    output: () => text,
    kill,
    exited,
    stop,
    async gql(query, variables) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query, variables }),
      });
      return response.json() as Promise<any>;
    },
  };
}
