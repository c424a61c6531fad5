import pino, { type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'seedance-graphql' },
    // Provider keys travel in Authorization headers; never let one reach a log line.
    redact: { paths: ['*.authorization', '*.headers.authorization', 'apiKey', '*.apiKey'], censor: '[redacted]' },
  });
}
