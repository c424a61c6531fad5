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

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/** What a started group's `started` becomes, so that it holds no promise of its own while it runs. */
const STARTED: Promise<null> = Promise.resolve(null);

export class SharedSubscriptions {
  /** Running executions, and those starting (their subscribers wait for `started`). */
  private readonly groups = new Map<string, Group>();

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
      const group = running ?? this.start(key, options, start);
      const answer = await group.started;
      if (answer) return answer;
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
    for (const group of this.groups.values()) joined += Math.max(0, group.size - 1);
    return joined;
  }

  /** Called by a group when it ends: nobody may join it any more. */
  forget(group: Group): void {
    if (this.groups.get(group.key) === group) this.groups.delete(group.key);
  }

  private start(key: string, options: ShareOptions, start: () => Started | Promise<Started>): Group {
    const group = new Group(this, key, options.replayLatest, start);
    this.groups.set(key, group);
    return group;
  }
}

/**
 * One source stream and its subscribers; it ends when the source does, or when the last one leaves.
 * Results are pulled from the source one at a time and handed to every member as they come.
 *
 * Most subscriptions are nobody else's, and an idle one is held for as long as its client stays: so a
 * group with one member holds no map of members, and the latest result is kept serialized, as
 * graphql-ws sends it, rather than as graphql-js's result objects (dictionary-mode, several times
 * larger; bench/memory.ts).
 */
class Group {
  /** Settles once the source has started: null, or the one result it answered with instead of a stream. */
  started: Promise<ExecutionResult | null>;
  private iterator: AsyncIterator<ExecutionResult> | null = null;
  /**
   * The members, one per connection (see SharedSubscriptions.subscribe): the first to join, and the
   * others by their connection, in a map made when a second one joins.
   */
  private first: Member | null = null;
  private others: Map<object, Member> | null = null;
  /** The latest result as JSON, for joiners when the stream starts with the current state. */
  private latest: string | null = null;
  /** The source finished: joiners still get the latest result, then the end. */
  private completed = false;
  /** Everyone left and the source was returned: nobody may join. */
  private abandoned = false;

  constructor(
    private readonly shared: SharedSubscriptions, readonly key: string, private readonly replayLatest: boolean,
    start: () => Started | Promise<Started>,
  ) {
    // Deferred one tick, so that the group is registered when a synchronous failure forgets it.
    this.started = Promise.resolve().then(start).then((started) => {
      if (!isAsyncIterable(started)) {
        this.shared.forget(this);
        return started;
      }
      this.iterator = started[Symbol.asyncIterator]();
      this.started = STARTED;
      this.pull();
      return null;
    }, (error: unknown) => {
      this.shared.forget(this);
      throw error;
    });
  }

  get size(): number {
    return (this.first ? 1 : 0) + (this.others?.size ?? 0);
  }

  has(owner: object): boolean {
    return this.first?.owner === owner || !!this.others?.has(owner);
  }

  /** A new subscriber, or null when this group has been abandoned. */
  join(owner: object): Member | null {
    if (this.abandoned) return null;
    const member = new Member(owner, this);
    // Parsed afresh: graphql-ws sends it as JSON, so the joiner's message is the one the others got.
    if (this.latest !== null) member.push(JSON.parse(this.latest) as ExecutionResult);
    if (this.completed) member.end();
    else if (!this.first) this.first = member;
    else (this.others ??= new Map()).set(owner, member);
    return member;
  }

  leave(member: Member): void {
    if (this.first === member) this.first = null;
    else if (this.others?.get(member.owner) === member) this.others.delete(member.owner);
    else return;
    if (this.size > 0 || this.completed) return;
    this.abandoned = true;
    this.shared.forget(this);
    void Promise.resolve(this.iterator?.return?.()).catch(() => undefined);
  }

  private pull(): void {
    this.iterator!.next().then((step) => {
      if (this.abandoned) return;
      if (step.done) return this.complete((member) => member.end());
      if (this.replayLatest) this.latest = JSON.stringify(step.value);
      this.first?.push(step.value);
      if (this.others) for (const member of this.others.values()) member.push(step.value);
      this.pull();
    }, (error: unknown) => this.complete((member) => member.fail(error)));
  }

  private complete(tell: (member: Member) => void): void {
    if (this.abandoned) return;
    this.completed = true;
    this.shared.forget(this);
    const { first, others } = this;
    this.first = null;
    this.others = null;
    if (first) tell(first);
    if (others) for (const member of others.values()) tell(member);
  }
}

/** One subscriber's view of its group: the group's results from when it joined, in order. */
class Member implements AsyncIterableIterator<ExecutionResult> {
  /** Results not yet asked for; made when the first one has to wait. */
  private queue: ExecutionResult[] | null = null;
  /** A next() waiting for a result: its promise's resolve and reject, as fields rather than one more object. */
  private resolve: ((step: IteratorResult<ExecutionResult>) => void) | null = null;
  private reject: ((error: unknown) => void) | null = null;
  private done = false;
  private failure: { error: unknown } | null = null;

  constructor(readonly owner: object, private readonly group: Group) {}

  push(result: ExecutionResult): void {
    if (this.done) return;
    const { resolve } = this;
    if (resolve) {
      this.resolve = this.reject = null;
      resolve({ value: result, done: false });
    } else if ((this.queue ??= []).length >= MAX_BEHIND) {
      this.fail(new Error(`This subscriber fell more than ${MAX_BEHIND} events behind.`));
      this.group.leave(this);
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
    const value = this.queue?.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      return Promise.reject(error);
    }
    if (this.done) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.done = true;
    this.queue = null;
    this.failure = null;
    this.group.leave(this);
    this.wake();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Settles a consumer waiting for the next result, once the queue is empty and nothing more will come. */
  private wake(): void {
    const { resolve, reject } = this;
    if (!resolve || !reject || this.queue?.length) return;
    this.resolve = this.reject = null;
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      reject(error);
    } else {
      resolve(DONE);
    }
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof Object(value)[Symbol.asyncIterator] === 'function';
}
