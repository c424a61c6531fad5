// Task changes, published after they are committed and delivered to subscriptions.
// The interface is kept narrow (publish a task; subscribe to one task or to all) so that a
// Redis-backed implementation can replace the in-process one when several instances run.
import { Repeater } from 'graphql-yoga';
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

type Listener = (task: VideoTaskRow) => void;

/**
 * Listeners in maps, called synchronously on publish: no EventTarget or event objects per delivery,
 * since one progress change may fan out to thousands of subscribers.
 */
export class InProcessTaskEvents implements TaskEvents {
  private readonly byTask = new Map<string, Set<Listener>>();
  private readonly everything = new Set<Listener>();
  private count = 0;
  private readonly stops = new Set<() => void>();

  publish(task: VideoTaskRow): void {
    const listeners = this.byTask.get(task.id);
    if (listeners) for (const listener of listeners) listener(task);
    for (const listener of this.everything) listener(task);
  }

  subscribeTask(taskId: string): AsyncIterableIterator<VideoTaskRow> {
    return this.listen((listener) => {
      let set = this.byTask.get(taskId);
      if (!set) this.byTask.set(taskId, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) this.byTask.delete(taskId);
      };
    });
  }

  subscribeAll(): AsyncIterableIterator<VideoTaskRow> {
    return this.listen((listener) => {
      this.everything.add(listener);
      return () => this.everything.delete(listener);
    });
  }

  listenerCount(): number {
    return this.count;
  }

  close(): void {
    for (const stop of [...this.stops]) stop();
  }

  private listen(attach: (listener: Listener) => () => void): AsyncIterableIterator<VideoTaskRow> {
    return new Repeater<VideoTaskRow>(async (push, stop) => {
      const detach = attach((task) => {
        // A consumer more than 1024 events behind is cut off rather than buffered without bound.
        try {
          push(task).catch(() => undefined);
        } catch (error) {
          stop(error);
        }
      });
      this.count++;
      const end = () => stop();
      this.stops.add(end);
      await stop;
      this.stops.delete(end);
      detach();
      this.count--;
    });
  }
}
