// A subscription's stream of tasks (watch, watchAll): what it delivers, and when it lets go of its
// event subscription.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VideoTaskRow } from '../src/storage/schema.ts';
import { TaskStream } from '../src/tasks/task-stream.ts';

const task = (version: number, status = 'IN_PROGRESS') => ({ id: 't', version, status }) as VideoTaskRow;

/** Events of one task, attached (like a Repeater) only when first asked for a value. */
class LazyEvents implements AsyncIterator<VideoTaskRow> {
  attached = false;
  returned = false;
  private readonly queue: VideoTaskRow[] = [];
  private waiting: ((step: IteratorResult<VideoTaskRow>) => void) | null = null;
  private failure: Error | null = null;

  publish(row: VideoTaskRow): void {
    if (!this.attached || this.returned) return;
    if (this.waiting) {
      this.waiting({ value: row, done: false });
      this.waiting = null;
    } else {
      this.queue.push(row);
    }
  }

  fail(error: Error): void {
    this.failure = error;
    this.waiting?.(Promise.reject(error) as never);
  }

  next(): Promise<IteratorResult<VideoTaskRow>> {
    this.attached = true;
    if (this.failure) return Promise.reject(this.failure);
    const value = this.queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.returned) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = (step) => (step instanceof Promise ? step.then(resolve, reject) : resolve(step));
    });
  }

  return(): Promise<IteratorResult<VideoTaskRow>> {
    this.returned = true;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = null;
    return Promise.resolve({ value: undefined, done: true });
  }
}

/** watch()'s options over `events`: the current row, then newer versions, until a terminal one. */
function watching(events: LazyEvents, read: () => VideoTaskRow | undefined) {
  let version = 0;
  return new TaskStream({
    subscribe: () => events,
    read: () => {
      const current = read();
      if (current) version = current.version;
      return current;
    },
    accept: (row) => {
      if (row.version <= version) return false;
      version = row.version;
      return true;
    },
    last: (row) => row.status === 'COMPLETED',
  });
}

describe('a stream of task states', () => {
  it('subscribes before it reads: a change right after the read is delivered', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => {
      // The change lands between the read and the consumer's next call.
      queueMicrotask(() => events.publish(task(2)));
      return task(1);
    });
    assert.equal(events.attached, false, 'nothing is subscribed before the stream is first asked');
    assert.equal((await stream.next()).value?.version, 1);
    assert.equal((await stream.next()).value?.version, 2);
    await stream.return();
  });

  it('drops events the read already showed, and repeats', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => task(2));
    assert.equal((await stream.next()).value?.version, 2);
    for (const version of [1, 2, 3, 3, 4]) events.publish(task(version));
    assert.equal((await stream.next()).value?.version, 3);
    assert.equal((await stream.next()).value?.version, 4);
    await stream.return();
  });

  it('ends after its last value and lets go of the events', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => task(1));
    await stream.next();
    events.publish(task(2, 'COMPLETED'));
    assert.equal((await stream.next()).value?.status, 'COMPLETED');
    assert.equal(events.returned, true);
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  it('ends at once, without a value, when the read finds nothing', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => undefined);
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
    assert.equal(events.returned, true);
  });

  it('ends a consumer waiting for the next event when returned', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => task(1));
    await stream.next();
    const waiting = stream.next();
    await stream.return();
    assert.deepEqual(await waiting, { value: undefined, done: true });
    assert.equal(events.returned, true);
    events.publish(task(2));
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  it('passes an error of the events to the consumer, and ends', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => task(1));
    await stream.next();
    const waiting = stream.next();
    events.fail(new Error('too far behind'));
    await assert.rejects(waiting, /too far behind/);
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  it('without a read, delivers only the events it accepts', async () => {
    const events = new LazyEvents();
    const stream = new TaskStream({ subscribe: () => events, accept: (row) => row.version % 2 === 0 });
    const first = stream.next();
    for (const version of [1, 2, 3, 4]) events.publish(task(version));
    assert.equal((await first).value?.version, 2);
    assert.equal((await stream.next()).value?.version, 4);
    await stream.return();
    assert.equal(events.returned, true);
  });
});

describe('handing a stream over to a new consumer (a WebSocket subscription dropping its execution)', () => {
  it('the new consumer gets the rest: a change landing between the read and the hand-over is not lost', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => {
      queueMicrotask(() => events.publish(task(2)));
      return task(1);
    });
    assert.equal((await stream.next()).value?.version, 1);
    const rest = stream.handOver();
    events.publish(task(1));
    events.publish(task(3));
    assert.equal((await rest.next()).value?.version, 2);
    assert.equal((await rest.next()).value?.version, 3, 'its filter state went with it');
    await rest.return();
    assert.equal(events.returned, true);
  });

  it('the old consumer\'s return() lets go of nothing; the old stream is ended', async () => {
    const events = new LazyEvents();
    const stream = watching(events, () => task(1));
    await stream.next();
    const rest = stream.handOver();
    await stream.return();
    assert.equal(events.returned, false);
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
    events.publish(task(2, 'COMPLETED'));
    assert.equal((await rest.next()).value?.status, 'COMPLETED');
    assert.equal(events.returned, true, 'it still ends after its last value');
    assert.deepEqual(await rest.next(), { value: undefined, done: true });
  });
});
