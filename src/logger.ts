import pino, { type Logger } from 'pino';
import { requestContext } from './observability/request-context.ts';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'seedance-graphql' },
    // Every line written while serving a request (or polling for its task) carries that request's id.
    mixin: () => {
      const context = requestContext.getStore();
      return context ? { requestId: context.requestId, ...(context.taskId ? { taskId: context.taskId } : {}) } : {};
    },
    // Provider keys travel in Authorization headers; never let one reach a log line.
    redact: {
      paths: ['*.authorization', '*.headers.authorization', 'headers.authorization', 'apiKey', '*.apiKey', '*.key', 'connectionParams'],
      censor: '[redacted]',
    },
  });
}
