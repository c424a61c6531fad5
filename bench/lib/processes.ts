// Child processes for benchmarks: a server (or a load generator) runs in its own Node process, pinned
// with `taskset -c` to its own core when taskset exists, so that the system under test and the load
// never share a CPU. Children speak to the runner over Node's IPC channel (see child-process.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: scripts are resolved against it. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let tasksetChecked: boolean | undefined;

/** Whether `taskset -c 0 true` works here (Linux with util-linux; containers may forbid it). */
export function tasksetAvailable(): boolean {
  tasksetChecked ??= spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0;
  return tasksetChecked;
}

/** The command line that runs `argv` on `cpu` (a taskset CPU list such as "0" or "0,1"), or as is when cpu is null. */
export function pinnedCommand(cpu: string | null, argv: readonly string[]): { command: string; args: string[] } {
  if (cpu !== null && tasksetAvailable()) return { command: 'taskset', args: ['-c', cpu, ...argv] };
  const [command, ...args] = argv;
  return { command: command!, args };
}

/** The argv of a TypeScript script run by Node with tsx, as `npm start` runs the service. */
export function nodeScript(script: string, args: readonly string[] = [], nodeArgs: readonly string[] = []): string[] {
  return [process.execPath, ...nodeArgs, '--import', 'tsx', resolve(ROOT, script), ...args];
}

/**
 * BENCH_CPU_PROF=1 makes every server write a V8 CPU profile (open it in Chrome DevTools) into
 * bench/profiles/ when it stops: the way to see where a subject's time goes under the same load.
 */
function serverNodeArgs(): string[] {
  return process.env.BENCH_CPU_PROF === '1' ? ['--cpu-prof', `--cpu-prof-dir=${resolve(ROOT, 'bench/profiles')}`] : [];
}

export interface ChildOptions {
  /** Where to pin it (BenchContext.serverCpu or loadCpu); null runs it unpinned. */
  cpu: string | null;
  /** Arguments after the script; the scripts in bench/lib/servers take one JSON argument. */
  args?: readonly string[];
  /** Node's own options, before the script (e.g. --cpu-prof, --max-old-space-size=64). */
  nodeArgs?: readonly string[];
  env?: Record<string, string>;
  /** How long to wait for the child's ready message. */
  readyTimeoutMs?: number;
  /** Shown in errors. */
  name?: string;
}

/** A running child started by startChild: what it said when ready, and a request/reply channel. */
export interface ChildHandle<Ready = Record<string, unknown>> {
  readonly pid: number;
  readonly process: ChildProcess;
  /** The ready message's payload, e.g. { url } for a server. */
  readonly ready: Ready;
  /** Sends `body` to the child's handler (serveChild's `handle`) and resolves with its answer. */
  call<T = unknown>(body: unknown): Promise<T>;
  /** Asks the child to stop cleanly; kills it if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

type ChildMessage =
  | { type: 'ready'; payload: unknown }
  | { type: 'reply'; id: number; value?: unknown; error?: string }
  | { type: 'fatal'; error: string };

/**
 * Starts `script` (a .ts file, relative to the repository root) in a pinned Node process and resolves
 * once it reports ready. The script must call serveChild() from child-process.ts.
 */
export async function startChild<Ready = Record<string, unknown>>(script: string, options: ChildOptions): Promise<ChildHandle<Ready>> {
  const name = options.name ?? script;
  const { command, args } = pinnedCommand(options.cpu, nodeScript(script, options.args, options.nodeArgs));
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolveExit) => child.once('exit', () => {
    exited = true;
    for (const waiter of pending.values()) waiter.reject(new Error(`${name} exited`));
    pending.clear();
    resolveExit();
  }));

  const ready = await new Promise<Ready>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not report ready in time`)), options.readyTimeoutMs ?? 60_000);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolveReady(message.payload as Ready);
      } else if (message.type === 'fatal') {
        clearTimeout(timer);
        reject(new Error(`${name}: ${message.error}`));
      } else if (message.type === 'reply') {
        const waiter = pending.get(message.id);
        pending.delete(message.id);
        if (message.error !== undefined) waiter?.reject(new Error(`${name}: ${message.error}`));
        else waiter?.resolve(message.value);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`));
    });
    child.once('error', reject);
  }).catch((error: unknown) => {
    if (!exited) child.kill('SIGKILL');
    throw error;
  });

  return {
    pid: child.pid!,
    process: child,
    ready,
    call<T>(body: unknown): Promise<T> {
      if (exited) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise<T>((resolveCall, reject) => {
        pending.set(id, { resolve: resolveCall as (value: unknown) => void, reject });
        child.send({ type: 'call', id, body });
      });
    },
    async stop(graceMs = 10_000) {
      if (exited) return;
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Starts one of bench/lib/servers/*.ts with its JSON options; the child's ready payload carries its url. */
export function startServer<Ready extends { url: string } = { url: string }>(
  script: string, options: unknown, cpu: string | null, name?: string,
): Promise<ChildHandle<Ready>> {
  return startChild<Ready>(script, { cpu, args: [JSON.stringify(options)], nodeArgs: serverNodeArgs(), name: name ?? script });
}

/** Resident set size of a process, from /proc (Linux), in bytes; null where /proc is absent. */
export function residentBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * CPU time a process has used so far (user + system, all threads), from /proc (Linux), in seconds;
 * null where /proc is absent. Its difference over a run, per request, is a cost that holds up when
 * other work shares the machine, which wall-clock throughput does not.
 */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, so split after its closing parenthesis).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}
