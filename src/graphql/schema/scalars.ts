import { GraphQLError, Kind } from 'graphql';
import { builder } from '../builder.ts';

const invalid = (message: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });

export const DateTimeScalar = builder.scalarType('DateTime', {
  description: 'A point in time, as an ISO-8601 string in UTC (e.g. "2026-11-21T12:00:00.000Z").',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) throw invalid('DateTime must be an ISO-8601 string');
    return date;
  },
});

// GraphQL's Int is 32-bit signed, and seed 000's seed goes up to 2^32-1.
export const SafeIntScalar = builder.scalarType('SafeInt', {
  description: 'An integer from -(2^53-1) to 2^53-1 (wider than Int, which stops at 2^31-1).',
  serialize: (value) => value,
  parseValue: (value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid('SafeInt must be a whole number within ±(2^53-1)');
    return value;
  },
  parseLiteral: (node) => {
    if (node.kind !== Kind.INT) throw invalid('SafeInt must be a whole number');
    const value = Number(node.value);
    if (!Number.isSafeInteger(value)) throw invalid('SafeInt must be within ±(2^53-1)');
    return value;
  },
});
