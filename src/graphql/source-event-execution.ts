// A subscription operation given to `execute` is the execution of one of its source events, with the
// event as the root value: graphql-js's own subscription semantics (mapSourceToResponse). The WebSocket
// transport runs a subscription's later events this way, through envelop, so that every plugin's
// execute hooks (masked errors, metrics) apply to each (graphql-ws.ts). Yoga's engine would instead
// subscribe again: it routes an operation by its type, not by the function it was given to.
import { execute, getOperationAST, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from './context.ts';

export function useSourceEventExecution(): Plugin<GraphQLContext> {
  return {
    onExecute({ args, setExecuteFn }) {
      if (isSourceEventExecution(args.document, args.operationName)) setExecuteFn(execute);
    },
  };
}

/** Whether an operation given to `execute` is one source event of a subscription (see above). */
export function isSourceEventExecution(document: DocumentNode, operationName: string | null | undefined): boolean {
  return getOperationAST(document, operationName)?.operation === 'subscription';
}
