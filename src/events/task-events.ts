// Task changes, published after they are committed and delivered to subscriptions.
// The interface is kept narrow (publish a task; subscribe to one task or to all) so that a
// Redis-backed implementation can replace the in-process one when several instances run.
import type { VideoTaskRow } from '../storage/schema.ts';

export interface TaskEvents {
  publish(task: VideoTaskRow): void;
  /** Changes of one task, until the consumer calls `return()` (for-await `break` does). */
  subscribeTask(taskId: string): AsyncIterableIterator<VideoTaskRow>;
  /** Changes of every task. */
  subscribeAll(): AsyncIterableIterator<VideoTaskRow>;
  /** Open subscriptions, for metrics and for tests that check nothing leaks. */
  listenerCount(): number;
  /** Ends every subscription (shutdown): their streams complete. */
  close(): void;
}

/** A consumer more than this many events behind is cut off rather than buffered without bound. */
const MAX_BEHIND = 1024;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/**
 * Listeners in sets, called synchronously on publish: no EventTarget or event objects per delivery,
 * since one progress change may fan out to thousands of subscribers. A listener is its stream: an idle
 * subscription costs one set entry and one small object (its queue is made when events wait in it).
 */
export class InProcessTaskEvents implements TaskEvents {
  private readonly byTask = new Map<string, Set<EventStream>>();
  private readonly everything = new Set<EventStream>();
  private count = 0;

  publish(task: VideoTaskRow): void {
    const listeners = this.byTask.get(task.id);
    if (listeners) for (const listener of listeners) listener.push(task);
    for (const listener of this.everything) listener.push(task);
  }

  subscribeTask(taskId: string): AsyncIterableIterator<VideoTaskRow> {
    let set = this.byTask.get(taskId);
    if (!set) this.byTask.set(taskId, (set = new Set()));
    return this.attach(new EventStream(this, taskId), set);
  }

  subscribeAll(): AsyncIterableIterator<VideoTaskRow> {
    return this.attach(new EventStream(this, null), this.everything);
  }

  listenerCount(): number {
    return this.count;
  }

  close(): void {
    for (const set of [...this.byTask.values(), this.everything]) {
      for (const stream of [...set]) stream.end();
    }
  }

  /** Called once by a stream as it ends. */
  detach(stream: EventStream): void {
    const set = stream.taskId === null ? this.everything : this.byTask.get(stream.taskId);
    if (!set?.delete(stream)) return;
    this.count--;
    if (stream.taskId !== null && set.size === 0) this.byTask.delete(stream.taskId);
  }

  private attach(stream: EventStream, set: Set<EventStream>): EventStream {
    set.add(stream);
    this.count++;
    return stream;
  }
}

/** One subscription's events, in order, from when it subscribed until it is returned or ended. */
class EventStream implements AsyncIterableIterator<VideoTaskRow> {
  /** Events not yet asked for; made when the first one has to wait. */
  private queue: VideoTaskRow[] | null = null;
  /** A next() waiting for an event. */
  private waiting: { resolve(step: IteratorResult<VideoTaskRow>): void; reject(error: unknown): void } | null = null;
  private done = false;
  private failure: Error | null = null;

  constructor(private readonly events: InProcessTaskEvents, readonly taskId: string | null) {}

  push(task: VideoTaskRow): void {
    if (this.done) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = null;
      resolve({ value: task, done: false });
    } else if ((this.queue ??= []).length >= MAX_BEHIND) {
      this.failure = new Error(`This subscriber fell more than ${MAX_BEHIND} events behind.`);
      this.end();
    } else {
      this.queue.push(task);
    }
  }

  /** No more events: the consumer gets those already queued (or the failure), then the end. */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.events.detach(this);
    if (!this.waiting) return;
    const { resolve, reject } = this.waiting;
    this.waiting = null;
    if (this.failure) reject(this.take());
    else resolve(DONE);
  }

  next(): Promise<IteratorResult<VideoTaskRow>> {
    const queued = this.queue?.shift();
    if (queued) return Promise.resolve({ value: queued, done: false });
    if (this.failure) return Promise.reject(this.take());
    if (this.done) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<VideoTaskRow>> {
    this.queue = null;
    this.failure = null;
    this.end();
    return Promise.resolve(DONE);
  }

  throw(error: unknown): Promise<IteratorResult<VideoTaskRow>> {
    this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private take(): Error {
    const failure = this.failure!;
    this.failure = null;
    return failure;
  }
}
