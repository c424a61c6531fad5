// The child side of processes.ts: a benchmark server or load generator reports ready with a payload,
// answers the runner's calls, and stops cleanly when asked (or when the runner goes away).

export interface ChildService<Ready> {
  /** Sent to the runner once the child can be used, e.g. { url } for a server. */
  ready: Ready;
  /** Answers ChildHandle.call(body). */
  handle?(body: unknown): unknown;
  stop?(): Promise<void> | void;
}

/** Runs `start`, reports its ready payload over IPC, serves calls, and exits after stop. */
export function serveChild<Ready>(start: () => Promise<ChildService<Ready>>): void {
  if (!process.send) throw new Error('run this script through bench/lib/processes.ts (it needs an IPC channel)');
  const send = (message: unknown) => process.send?.(message);
  start().then((service) => {
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      try {
        await service.stop?.();
      } finally {
        process.exit(0);
      }
    };
    process.on('message', (message: { type: string; id?: number; body?: unknown }) => {
      if (message.type === 'stop') void stop();
      if (message.type === 'call') {
        Promise.resolve()
          .then(() => service.handle?.(message.body))
          .then(
            (value) => send({ type: 'reply', id: message.id, value }),
            (error: unknown) => send({ type: 'reply', id: message.id, error: error instanceof Error ? error.stack ?? error.message : String(error) }),
          );
      }
    });
    // The runner died or closed the channel: nobody is left to stop us.
    process.on('disconnect', () => void stop());
    process.on('SIGTERM', () => void stop());
    send({ type: 'ready', payload: service.ready });
  }, (error: unknown) => {
    send({ type: 'fatal', error: error instanceof Error ? error.stack ?? error.message : String(error) });
    setTimeout(() => process.exit(1), 100);
  });
}

/** The JSON options a server script was started with (its one argument). */
export function childOptions<T>(): T {
  const text = process.argv[2];
  if (!text) throw new Error('missing the JSON options argument');
  return JSON.parse(text) as T;
}
