// The per-key request rate, applied to every GraphQL operation on every transport (it runs inside
// Yoga's envelop, which graphql-ws also goes through). A mutation counts once per root field, so ten
// aliased createVideoTask calls in one request cost ten, as ten requests would.
import { GraphQLError, Kind, type DocumentNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/context.ts';
import { isSourceEventExecution } from '../graphql/source-event-execution.ts';
import type { RateLimiter } from './rate-limiter.ts';

export function rateLimited(message: string, retryAfterSeconds: number): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: 'RATE_LIMITED',
      retryAfterSeconds,
      http: { status: 429, headers: { 'retry-after': String(retryAfterSeconds) } },
    },
  });
}

export function useRequestRateLimit(limiter: RateLimiter): Plugin<GraphQLContext> {
  const check = (document: DocumentNode, operationName: string | null | undefined, context: GraphQLContext) => {
    const decision = limiter.take(context.principal.ownerId, operationCost(document, operationName));
    return decision.ok ? null : rateLimited(`Too many requests for this key; retry in ${decision.retryAfterSeconds} s.`, decision.retryAfterSeconds);
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      // One event of a running subscription, which was charged once as it started.
      if (isSourceEventExecution(args.document, args.operationName)) return;
      const refusal = check(args.document, args.operationName, args.contextValue);
      if (refusal) setResultAndStopExecution({ errors: [refusal] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refusal = check(args.document, args.operationName, args.contextValue);
      if (refusal) setResultAndStopExecution({ errors: [refusal] });
    },
  };
}

/** 1 for a query or subscription; the number of root fields (aliases included) for a mutation. */
export function operationCost(document: DocumentNode, operationName: string | null | undefined): number {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  if (!operation || operation.operation !== 'mutation') return 1;
  return Math.max(1, countRootFields(operation.selectionSet, document));
}

function countRootFields(selectionSet: SelectionSetNode, document: DocumentNode, seen = new Set<string>()): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) count += selection.name.value === '__typename' ? 0 : 1;
    else if (selection.kind === Kind.INLINE_FRAGMENT) count += countRootFields(selection.selectionSet, document, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value);
      if (fragment && fragment.kind === Kind.FRAGMENT_DEFINITION) count += countRootFields(fragment.selectionSet, document, seen);
    }
  }
  return count;
}

function bodyRefused(status: 400 | 413, code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status } } });
}

/**
 * The request body limit, in place of Yoga's (createYoga's `maxRequestBodySize: false`). Yoga's
 * counts the bytes of every body by piping it through a TransformStream, which also takes the
 * request off whatwg-node's direct read of the socket: 40% of a small query's CPU (bench/task-query.ts).
 * A body with a Content-Length cannot outgrow it (Node's HTTP parser stops the body there, and
 * refuses Transfer-Encoding alongside it), so the header is checked and the body read as it comes;
 * only a body without one (chunked) is counted, as it is read.
 */
export function useRequestBodyLimit(maxBytes: number): Plugin<GraphQLContext> {
  const tooLarge = () => bodyRefused(413, 'REQUEST_ENTITY_TOO_LARGE', 'Request body too large');
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const length = request.headers.get('content-length');
      if (length !== null) {
        if (!/^\d+$/.test(length)) throw bodyRefused(400, 'BAD_REQUEST', 'Content-Length header is invalid.');
        if (Number(length) > maxBytes) throw tooLarge();
        return;
      }
      // No body to count (GET), or one already parsed before Yoga (multipart uploads: see app.ts).
      if (!requestParser || !request.body) return;
      setRequestParser(async (chunked) => {
        const chunks: Uint8Array[] = [];
        let size = 0;
        for await (const chunk of chunked.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.byteLength;
          if (size > maxBytes) throw tooLarge();
          chunks.push(chunk);
        }
        return requestParser(new fetchAPI.Request(chunked.url, {
          method: chunked.method, headers: chunked.headers, body: Buffer.concat(chunks), signal: chunked.signal,
        }));
      });
    },
  };
}
