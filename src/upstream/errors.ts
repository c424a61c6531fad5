import type { UpstreamErrorBody } from './types.ts';

/** The upstream answered with an HTTP error status. */
export class UpstreamHttpError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly body: UpstreamErrorBody,
    /** From `Retry-After`, in seconds, when the upstream sent one. */
    readonly retryAfterSeconds: number | null,
  ) {
    super(`upstream answered ${httpStatus}: ${body.message}`);
    this.name = 'UpstreamHttpError';
  }

  /** Whether trying the same request later may succeed (rate limits, outages, server errors). */
  get retryable(): boolean {
    return this.httpStatus === 429 || this.httpStatus >= 500;
  }
}

/** The request may or may not have reached the upstream: timeout, reset, refused connection. */
export class UpstreamTransportError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'UpstreamTransportError';
  }
}

/** The upstream answered 2xx with a body we cannot read as a task. */
export class UpstreamProtocolError extends Error {
  constructor(message: string, readonly bodyText: string) {
    super(message);
    this.name = 'UpstreamProtocolError';
  }
}

export type UpstreamFailure = UpstreamHttpError | UpstreamTransportError | UpstreamProtocolError;
