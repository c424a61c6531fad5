// What a mutation answers is durable before the client reads it. The service's database commits
// without waiting for the disk (openGroupCommitDatabase), so after a mutation executes this waits for
// the WAL to be synced (one fsync shared by every mutation finishing meanwhile). It runs in Yoga's
// envelop, which graphql-ws also goes through, so HTTP, SSE and WebSocket answers are all covered, and
// every mutation is, present and future, without each resolver having to remember it. Queries and
// subscriptions write nothing a client is told of; a mutation that wrote nothing (a refusal, an
// idempotent replay) waits for one shared fsync for nothing, which is cheaper than knowing.
import { getOperationAST, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Durability } from '../storage/durability.ts';
import type { GraphQLContext } from './context.ts';

export function useDurableMutations(durability: Durability, onFailure: (error: unknown) => void): Plugin<GraphQLContext> {
  return {
    onExecute({ args }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return;
      return {
        async onExecuteDone({ setResult }) {
          try {
            await durability.sync();
          } catch (error) {
            onFailure(error);
            // The change happened here but may not survive a machine crash: the answer says so rather
            // than claiming it.
            setResult({
              errors: [new GraphQLError('The change could not be made durable and may be lost if the server crashes; check before retrying.', {
                extensions: { code: 'NOT_DURABLE' },
              })],
            });
          }
        },
      };
    },
  };
}
