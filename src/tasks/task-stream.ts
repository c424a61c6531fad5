// What a subscription to tasks iterates: the task events it cares about, pulled one at a time from
// TaskEvents. A plain iterator rather than a Repeater wrapped around the events' own: with one
// subscriber per task, every change crossed two Repeaters (a push, a promise and a queue each) before
// its GraphQL execution, and the outer one added nothing but filtering (bench/fanout.ts).
import type { VideoTaskRow } from '../storage/schema.ts';

export interface TaskStreamOptions {
  /** Starts the event subscription (when the stream is first asked for a value). */
  subscribe(): AsyncIterator<VideoTaskRow>;
  /** The stream's first value, read just after subscribing; undefined ends the stream at once. */
  read?(): VideoTaskRow | undefined;
  /** Whether an event is for this stream (checked in order, so it may keep state). */
  accept(task: VideoTaskRow): boolean;
  /** Whether a value is the stream's last: it ends after it. */
  last?(task: VideoTaskRow): boolean;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/**
 * Consumed one value at a time (for-await, graphql-js, Yoga, graphql-ws all do): a second next() before
 * the first settles is not supported. return() ends it at once, also while a next() waits.
 */
export class TaskStream implements AsyncIterableIterator<VideoTaskRow> {
  private events: AsyncIterator<VideoTaskRow> | null = null;
  /** The first event, asked for before the read (see open). */
  private upcoming: Promise<IteratorResult<VideoTaskRow>> | null = null;
  private state: 'new' | 'open' | 'done' = 'new';

  constructor(private readonly options: TaskStreamOptions) {}

  next(): Promise<IteratorResult<VideoTaskRow>> {
    if (this.state === 'new') {
      try {
        return Promise.resolve(this.open());
      } catch (error) {
        this.end();
        return Promise.reject(error);
      }
    }
    return this.state === 'done' ? Promise.resolve(DONE) : this.nextEvent();
  }

  return(): Promise<IteratorResult<VideoTaskRow>> {
    this.end();
    return Promise.resolve(DONE);
  }

  throw(error: unknown): Promise<IteratorResult<VideoTaskRow>> {
    this.end();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * The rest of this stream (its subscription, the first event asked for, its filter's state) as a new
   * stream; this one ends without ending them, so that its consumer's return() lets go of them only.
   */
  handOver(): TaskStream {
    const rest = new TaskStream(this.options);
    rest.events = this.events;
    rest.upcoming = this.upcoming;
    rest.state = this.state;
    this.events = null;
    this.upcoming = null;
    this.state = 'done';
    return rest;
  }

  /** Subscribes, then reads: no change falls between the read and the first event. */
  private open(): IteratorResult<VideoTaskRow> | Promise<IteratorResult<VideoTaskRow>> {
    this.state = 'open';
    const events = this.options.subscribe();
    this.events = events;
    // Asking for the first event is what starts a lazy subscription (a Repeater's or a generator's):
    // it is asked now, before the read, and its answer awaited later.
    this.upcoming = events.next();
    if (!this.options.read) return this.nextEvent();
    const current = this.options.read();
    if (!current) return this.end();
    return this.deliver(current);
  }

  // Promise callbacks rather than an async function: an idle stream waits here, and an async function's
  // suspended frame is several times their size (bench/memory.ts).
  private nextEvent(): Promise<IteratorResult<VideoTaskRow>> {
    const events = this.events;
    if (!events) return Promise.resolve(DONE);
    const upcoming = this.upcoming ?? events.next();
    this.upcoming = null;
    return upcoming.then((step) => {
      // Returned while waiting: the event (if any) is not delivered.
      if (this.state === 'done') return DONE;
      if (step.done) return this.end();
      return this.options.accept(step.value) ? this.deliver(step.value) : this.nextEvent();
    }, (error: unknown) => {
      this.end();
      throw error;
    });
  }

  private deliver(task: VideoTaskRow): IteratorResult<VideoTaskRow> {
    if (this.options.last?.(task)) this.end();
    return { value: task, done: false };
  }

  private end(): IteratorReturnResult<undefined> {
    if (this.state === 'done') return DONE;
    this.state = 'done';
    const { events, upcoming } = this;
    this.events = null;
    this.upcoming = null;
    // The first event may still be pending: its answer (an end, or an error) is nobody's now.
    upcoming?.catch(() => undefined);
    void Promise.resolve(events?.return?.()).catch(() => undefined);
    return DONE;
  }
}
