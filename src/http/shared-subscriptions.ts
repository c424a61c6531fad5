// Subscribers that run the same operation with the same variables, as the same principal, over
// different WebSocket connections, share one execution: one source stream and one GraphQL execution
// per event, whose result goes to each of them. Without this, a task watched by 1,000 clients ran its
// subscription pipeline (two Repeaters, envelop, the executor) 1,000 times per change, and that, not
// the sockets, bounded the fan-out (bench/fanout.ts).
import type { ExecutionResult } from 'graphql';

type Started = AsyncIterable<ExecutionResult> | ExecutionResult;

export interface ShareOptions {
  /**
   * The operation's stream starts with the current state (videoTaskUpdated): a subscriber joining a
   * running execution gets its latest result first, as a fresh execution would. Otherwise a joiner
   * gets the events from now on only.
   */
  replayLatest: boolean;
}

/** A subscriber this far behind its group is cut off rather than buffered without bound (as TaskEvents does). */
const MAX_BEHIND = 1024;

export class SharedSubscriptions {
  private readonly groups = new Map<string, Promise<Group | ExecutionResult>>();

  /**
   * Joins the running execution of `key`, or starts it with `start`. A start that answers with one
   * result (an error such as NOT_FOUND) is the answer for all who asked meanwhile, and is not kept.
   * `owner` is the subscriber's connection: sharing is across connections only, so each operation one
   * connection runs stays its own (its own listener, counted and ended as before).
   */
  async subscribe(
    key: string, owner: object, options: ShareOptions, start: () => Started | Promise<Started>,
    /** Asked before joining a running execution (which skips envelop, so its limits): a refusal ends it. */
    admit: () => ExecutionResult | null = () => null,
  ): Promise<Started> {
    for (;;) {
      const running = this.groups.get(key);
      const group = await (running ?? this.start(key, options, start));
      if (!(group instanceof Group)) return group;
      if (group.has(owner)) return start();
      if (running) {
        const refusal = admit();
        if (refusal) return refusal;
      }
      const member = group.join(owner);
      // The group lost its last subscriber (and its source) while this one waited: start afresh.
      if (member) return member;
    }
  }

  /** Subscribers sharing an execution beyond its first: they hold no TaskEvents listener of their own. */
  joined(): number {
    let joined = 0;
    for (const group of this.running) joined += Math.max(0, group.size - 1);
    return joined;
  }

  private readonly running = new Set<Group>();

  private start(key: string, options: ShareOptions, start: () => Started | Promise<Started>): Promise<Group | ExecutionResult> {
    const forget = () => {
      if (this.groups.get(key) === entry) this.groups.delete(key);
    };
    // Deferred one tick, so that `entry` exists when a synchronous failure forgets it.
    const entry = Promise.resolve().then(async () => {
      let started: Started;
      try {
        started = await start();
      } catch (error) {
        forget();
        throw error;
      }
      if (!isAsyncIterable(started)) {
        forget();
        return started;
      }
      const group: Group = new Group(started, options.replayLatest, () => {
        forget();
        this.running.delete(group);
      });
      this.running.add(group);
      return group;
    });
    this.groups.set(key, entry);
    return entry;
  }
}

/** One source stream and its subscribers; it ends when the source does, or when the last one leaves. */
class Group {
  private readonly members = new Set<Member>();
  private readonly owners = new Set<object>();
  private readonly iterator: AsyncIterator<ExecutionResult>;
  /** The latest result, for joiners when the stream starts with the current state. */
  private latest: ExecutionResult | undefined;
  /** The source finished: joiners still get the latest result, then the end. */
  private completed = false;
  /** Everyone left and the source was returned: nobody may join. */
  private abandoned = false;

  constructor(source: AsyncIterable<ExecutionResult>, private readonly replayLatest: boolean, private readonly onEnd: () => void) {
    this.iterator = source[Symbol.asyncIterator]();
    void this.pump();
  }

  get size(): number {
    return this.members.size;
  }

  has(owner: object): boolean {
    return this.owners.has(owner);
  }

  /** A new subscriber, or null when this group has been abandoned. */
  join(owner: object): Member | null {
    if (this.abandoned) return null;
    const member = new Member(owner, (left) => this.leave(left));
    if (this.replayLatest && this.latest) member.push(this.latest);
    if (this.completed) {
      member.end();
    } else {
      this.members.add(member);
      this.owners.add(owner);
    }
    return member;
  }

  private leave(member: Member): void {
    if (!this.members.delete(member)) return;
    this.owners.delete(member.owner);
    if (this.members.size > 0 || this.completed) return;
    this.abandoned = true;
    this.onEnd();
    void Promise.resolve(this.iterator.return?.()).catch(() => undefined);
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const step = await this.iterator.next();
        if (step.done || this.abandoned) break;
        this.latest = step.value;
        for (const member of this.members) member.push(step.value);
      }
      this.complete((member) => member.end());
    } catch (error) {
      this.complete((member) => member.fail(error));
    }
  }

  private complete(tell: (member: Member) => void): void {
    if (this.abandoned) return;
    this.completed = true;
    this.onEnd();
    for (const member of this.members) tell(member);
    this.members.clear();
    this.owners.clear();
  }
}

/** One subscriber's view of its group: the group's results from when it joined, in order. */
class Member implements AsyncIterableIterator<ExecutionResult> {
  private readonly queue: ExecutionResult[] = [];
  private waiting: { resolve(step: IteratorResult<ExecutionResult>): void; reject(error: unknown): void } | null = null;
  private done = false;
  private failure: { error: unknown } | null = null;

  constructor(readonly owner: object, private readonly onLeave: (member: Member) => void) {}

  push(result: ExecutionResult): void {
    if (this.done) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = null;
      resolve({ value: result, done: false });
    } else if (this.queue.length >= MAX_BEHIND) {
      this.fail(new Error(`This subscriber fell more than ${MAX_BEHIND} events behind.`));
      this.onLeave(this);
    } else {
      this.queue.push(result);
    }
  }

  end(): void {
    this.done = true;
    this.wake();
  }

  fail(error: unknown): void {
    this.done = true;
    this.failure = { error };
    this.wake();
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    const value = this.queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      return Promise.reject(error);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.done = true;
    this.queue.length = 0;
    this.failure = null;
    this.onLeave(this);
    this.wake();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Settles a consumer waiting for the next result, once the queue is empty and nothing more will come. */
  private wake(): void {
    if (!this.waiting || this.queue.length > 0) return;
    const { resolve, reject } = this.waiting;
    this.waiting = null;
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      reject(error);
    } else {
      resolve({ value: undefined, done: true });
    }
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof Object(value)[Symbol.asyncIterator] === 'function';
}
