// The id of the request being served, carried through async calls so that every log line and upstream
// call made for it can be found again (the poller runs each poll in the context of the task's request).
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

export interface RequestContext {
  requestId: string;
  taskId?: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** A client's own `x-request-id` is kept when it is a sane token; otherwise one is made. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value && /^[\w.:-]{1,64}$/.test(value) ? value : randomUUID();
}

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}
