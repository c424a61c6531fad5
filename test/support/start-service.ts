// Starts the service the way a new user does, `npm start` in the project folder, as a child process
// in its own process group, and waits for its "listening" log line. The caller stops it with stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Environment variables that would make the service use a real provider instead of the sandbox. */
const PROVIDER_KEYS = ['TOAPIS_API_KEY', 'ODKKK_API_KEY'];

export interface LogLine {
  msg?: string;
  [field: string]: unknown;
}

export interface StartedService {
  /** The GraphQL URL from the "listening" log line, with `localhost` as host. */
  graphqlUrl: string;
  port: number;
  /** Every JSON log line printed so far. */
  logs: LogLine[];
  /** Everything printed so far (stdout and stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment for the service (PORT, DATABASE_URL and MEDIA_DIR are set already). */
  env?: Record<string, string>;
  /** How long to wait for the "listening" line. */
  timeoutMs?: number;
}

/** A port that was free a moment ago: listen on port 0, note the port, close. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const LISTENING = 'GraphQL (and GraphiQL) listening';

export async function startService(options: StartOptions = {}): Promise<StartedService> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'seedance-npm-start-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of PROVIDER_KEYS) delete env[key];
  Object.assign(env, {
    PORT: String(port),
    DATABASE_URL: join(dir, 'tasks.sqlite'),
    MEDIA_DIR: join(dir, 'media'),
    LOG_LEVEL: 'info',
    ...options.env,
  });

  const child: ChildProcess = spawn('npm', ['start'], {
    cwd: PROJECT_DIR,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let pending = '';
  const logs: LogLine[] = [];
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(`exited with ${signal ?? `code ${code}`}`));
    child.once('error', (error) => resolve(`could not be started: ${error.message}`));
  });
  let onLine: (line: LogLine) => void = () => {};
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

  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      const signal = (name: NodeJS.Signals) => {
        try { process.kill(-child.pid!, name); } catch { /* already gone */ }
      };
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        signal('SIGTERM');
        const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000).unref())]);
        if (!killed) signal('SIGKILL');
      }
      // npm may have left its own child (tsx) behind even after npm itself exited: end the whole group.
      signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const listening = new Promise<LogLine>((resolve) => {
    onLine = (line) => { if (line.msg === LISTENING) resolve(line); };
  });
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening,
    exited.then((how) => new Error(`npm start ${how} before logging "${LISTENING}"`)),
    new Promise<Error>((resolve) => {
      timer = setTimeout(() => resolve(new Error(`npm start did not log "${LISTENING}" within ${timeoutMs / 1000} s`)), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome instanceof Error) {
    await stop();
    throw new Error(`${outcome.message}; its output was:\n${text}`);
  }
  const url = new URL(String(outcome.url));
  url.hostname = 'localhost';
  return { graphqlUrl: url.toString(), port, logs, output: () => text, stop };
}
