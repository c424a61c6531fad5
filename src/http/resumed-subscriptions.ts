// A subscription that holds no GraphQL execution between its events. GraphQL runs a subscription as a
// source stream and, for each of its events, an execution of the operation with the event as the root
// value (graphql-js's mapSourceToResponse). Envelop wraps that in several layers per subscription (its
// hooks' state, three iterators, the executor's own), which an idle subscriber kept for as long as it
// stayed: twice what its connection costs (bench/memory.ts). Here the subscription starts through
// envelop as any other (its subscribe hooks, limits, the first result); then, when its source can go on
// alone (ResumableSource), the execution is let go and each later event is run through envelop's
// execute (useSourceEventExecution), so that its execute hooks apply to every result.
import type { ExecutionArgs, ExecutionResult } from 'graphql';
import type { ResumableSource } from '../graphql/context.ts';

type Execute = (args: ExecutionArgs) => unknown;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/** Consumed one result at a time, as graphql-ws and SharedSubscriptions do. */
export class ResumedSubscription implements AsyncIterableIterator<ExecutionResult> {
  /** The execution that started the subscription, until its first result. */
  private execution: AsyncIterator<ExecutionResult> | null;
  /** Its source, until handed over to `events` with the first result. */
  private source: ResumableSource<unknown> | null;
  private events: AsyncIterator<unknown> | null = null;
  private done = false;

  constructor(
    execution: AsyncIterator<ExecutionResult>, source: ResumableSource<unknown>,
    /** What each event is executed with (the subscription's document, variables and context). */
    private readonly args: ExecutionArgs,
    private readonly execute: Execute,
  ) {
    this.execution = execution;
    this.source = source;
  }

  // Promise callbacks rather than async functions: an idle subscription waits in them, and suspended
  // async functions' frames are several times their size (bench/memory.ts).
  next(): Promise<IteratorResult<ExecutionResult>> {
    const { execution, events } = this;
    if (execution) return execution.next().then((step) => this.first(execution, step), (error: unknown) => this.fail(error));
    if (this.done || !events) return Promise.resolve(DONE);
    return events.next().then((step) => this.executeEvent(step), (error: unknown) => this.fail(error));
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.finish();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private fail(error: unknown): never {
    this.finish();
    throw error;
  }

  private first(execution: AsyncIterator<ExecutionResult>, step: IteratorResult<ExecutionResult>): IteratorResult<ExecutionResult> {
    if (this.done) return DONE;
    if (step.done) {
      this.finish();
      return DONE;
    }
    // The source keeps its subscription (taken before its first read: nothing falls between them).
    this.events = this.source!.handOver();
    this.source = null;
    this.execution = null;
    void Promise.resolve(execution.return?.()).catch(() => undefined);
    return step;
  }

  private executeEvent(step: IteratorResult<unknown>): IteratorResult<ExecutionResult> | Promise<IteratorResult<ExecutionResult>> {
    if (this.done) return DONE;
    if (step.done) {
      this.finish();
      return DONE;
    }
    return Promise.resolve(this.execute({ ...this.args, rootValue: step.value })).then((result) => {
      if (isAsyncIterable(result)) throw new Error('A source event was subscribed to rather than executed: is useSourceEventExecution installed?');
      return this.done ? DONE : { value: result as ExecutionResult, done: false };
    }).catch((error: unknown) => this.fail(error));
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const { execution, source, events } = this;
    this.execution = null;
    this.source = null;
    this.events = null;
    for (const iterator of [execution, source, events]) {
      if (iterator) void Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof Object(value)[Symbol.asyncIterator] === 'function';
}
