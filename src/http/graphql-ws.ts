// Subscriptions (and queries) over WebSocket, protocol graphql-transport-ws, on the same HTTP server
// and path as Yoga. Each operation runs through Yoga's envelop, so every plugin (limits, armor,
// masking) applies to this transport exactly as to HTTP. A connection authenticates once, with its
// connectionParams, and is held to a payload size, a number of subscriptions and a number per key.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { GraphQLError, getOperationAST, type DocumentNode, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Principal } from '../auth/principal.ts';
import { SharedSubscriptions, type ShareOptions } from './shared-subscriptions.ts';

export interface WebSocketTransportOptions {
  keepAliveMs: number;
  connectionInitTimeoutMs: number;
  maxPayloadBytes: number;
  maxSubscriptionsPerConnection: number;
  maxConnectionsPerKey: number;
  /** Throws (a typed 401) when the connection's credential is missing or wrong. */
  authenticate(connectionParams: Readonly<Record<string, unknown>> | undefined): Principal;
  /** The per-key request limit for a subscriber joining a shared execution; an error refuses it. */
  admitSharedSubscriber?(principal: Principal): GraphQLError | null;
  logger: Logger;
}

/** Yoga's server context on this Node server: the request and response it was handed. */
export type NodeServerContext = { req: IncomingMessage; res: ServerResponse };

type EnvelopedExecute = (args: ExecutionArgs) => unknown;

/** What onSubscribe hands the execute/subscribe hooks (as the root value, which the resolvers ignore). */
interface OperationRoot {
  execute: EnvelopedExecute;
  subscribe: EnvelopedExecute;
  /** Who else may share this subscription's execution (see SharedSubscriptions); null: nobody. */
  share: { key: string; owner: WebSocket; options: ShareOptions } | null;
}

/** Close codes beyond graphql-ws's own: 4401 (no or bad key, like HTTP 401), 4429 (too many connections). */
const UNAUTHORIZED = 4401;
const TOO_MANY_CONNECTIONS = 4429;

export function attachWebSocketTransport<UserContext extends object>(
  server: Server,
  yoga: YogaServerInstance<NodeServerContext, UserContext>,
  options: WebSocketTransportOptions,
): { close(): Promise<void>; connections(): number; sharedSubscribers(): number } {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: options.maxPayloadBytes });
  const principals = new WeakMap<WebSocket, Principal>();
  const connectionsPerKey = new Map<string, number>();
  const shared = new SharedSubscriptions();

  const disposable = useServer(
    {
      connectionInitWaitTimeout: options.connectionInitTimeoutMs,
      onConnect: (ctx) => {
        const socket = ctx.extra.socket;
        let principal: Principal;
        try {
          principal = options.authenticate(ctx.connectionParams);
        } catch (error) {
          socket.close(UNAUTHORIZED, error instanceof GraphQLError ? error.message.slice(0, 120) : 'Unauthorized');
          return false;
        }
        const open = connectionsPerKey.get(principal.ownerId) ?? 0;
        if (open >= options.maxConnectionsPerKey) {
          socket.close(TOO_MANY_CONNECTIONS, `At most ${options.maxConnectionsPerKey} connections per key`);
          return false;
        }
        connectionsPerKey.set(principal.ownerId, open + 1);
        socket.once('close', () => {
          const left = (connectionsPerKey.get(principal.ownerId) ?? 1) - 1;
          if (left > 0) connectionsPerKey.set(principal.ownerId, left);
          else connectionsPerKey.delete(principal.ownerId);
        });
        principals.set(socket, principal);
        return true;
      },
      execute: (args) => (args.rootValue as OperationRoot).execute(args) as never,
      subscribe: (args) => {
        const { share, subscribe } = args.rootValue as OperationRoot;
        if (!share) return subscribe(args) as never;
        return shared.subscribe(share.key, share.owner, share.options, () => subscribe(args) as never, () => {
          // A joiner skips envelop's onSubscribe (and its limits): it is charged here instead.
          const principal = principals.get(share.owner);
          const refusal = principal ? options.admitSharedSubscriber?.(principal) : null;
          return refusal ? { errors: [refusal] } : null;
        });
      },
      onSubscribe: async (ctx, id, payload) => {
        // graphql-ws has already registered this operation under its id: count the others.
        if (Object.keys(ctx.subscriptions).filter((other) => other !== id).length >= options.maxSubscriptionsPerConnection) {
          return [new GraphQLError(`At most ${options.maxSubscriptionsPerConnection} operations may run at once on one connection.`, {
            extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
          })];
        }
        // The upgrade request stands in for `req`; there is no response object on a socket.
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          principal: principals.get(ctx.extra.socket),
        } as never);
        // A query refused while parsing or validating (a syntax error, or a graphql-armor limit, which
        // throws) is this operation's error, not the connection's: graphql-ws would close it with 4500.
        let document: DocumentNode;
        try {
          document = parse(payload.query);
          const errors = validate(schema, document);
          if (errors.length) return errors;
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const principal = principals.get(ctx.extra.socket);
        const replayLatest = startsWithCurrentState(schema, document, payload.operationName);
        const root: OperationRoot = {
          execute,
          subscribe,
          share: replayLatest === null ? null : {
            // Everything the results depend on: who asks (what they may see), the operation, its variables.
            key: JSON.stringify([principal?.ownerId, principal?.role, payload.operationName ?? null, payload.query, payload.variables ?? null]),
            owner: ctx.extra.socket,
            options: { replayLatest },
          },
        };
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: root,
        };
        return args;
      },
    },
    wss,
    options.keepAliveMs,
  );
  return {
    connections: () => wss.clients.size,
    sharedSubscribers: () => shared.joined(),
    async close() {
      // 1001 "going away": the server is shutting down, clients may reconnect elsewhere.
      for (const socket of wss.clients) socket.close(1001, 'Server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * Whether the subscription's root field says (extensions.startsWithCurrentState) that its stream opens
 * with the current state, so that a subscriber joining a shared execution is given the latest result
 * first; null when that cannot be told from the operation (a root fragment), which is then not shared.
 */
function startsWithCurrentState(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined): boolean | null {
  const operation = getOperationAST(document, operationName);
  const root = schema.getSubscriptionType()?.getFields();
  if (operation?.operation !== 'subscription' || !root) return null;
  const fields = operation.selectionSet.selections;
  if (!fields.every((selection) => selection.kind === 'Field')) return null;
  return fields.every((field) => field.kind === 'Field' && root[field.name.value]?.extensions?.startsWithCurrentState === true);
}
