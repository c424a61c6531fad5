// Task changes, published after they are committed and delivered to subscriptions.
// The interface is kept narrow (publish a task, subscribe to one task or to all) so that a
// Redis-backed implementation can replace the in-process one when several instances run.
import { createPubSub, type PubSub } from 'graphql-yoga';
import type { VideoTaskRow } from '../storage/schema.ts';

export interface TaskEvents {
  publish(task: VideoTaskRow): void;
  /** Changes of one task. Ends when the consumer calls `return()` (or breaks out of for-await). */
  subscribeTask(taskId: string): AsyncIterableIterator<VideoTaskRow>;
  /** Changes of every task. */
  subscribeAll(): AsyncIterableIterator<VideoTaskRow>;
}

type Topics = {
  'task-updated': [taskId: string, task: VideoTaskRow];
  'tasks-updated': [task: VideoTaskRow];
};

/**
 * In-process events over Yoga's pubsub (an EventTarget underneath). Passing a distributed
 * `eventTarget` (e.g. @graphql-yoga/redis-event-target) is how it would span instances.
 */
export class InProcessTaskEvents implements TaskEvents {
  private readonly pubsub: PubSub<Topics>;

  constructor(options: Parameters<typeof createPubSub<Topics>>[0] = {}) {
    this.pubsub = createPubSub<Topics>(options);
  }

  publish(task: VideoTaskRow): void {
    this.pubsub.publish('task-updated', task.id, task);
    this.pubsub.publish('tasks-updated', task);
  }

  subscribeTask(taskId: string): AsyncIterableIterator<VideoTaskRow> {
    return this.pubsub.subscribe('task-updated', taskId) as AsyncIterableIterator<VideoTaskRow>;
  }

  subscribeAll(): AsyncIterableIterator<VideoTaskRow> {
    return this.pubsub.subscribe('tasks-updated') as AsyncIterableIterator<VideoTaskRow>;
  }
}
