// Subscriptions (and queries) over WebSocket, protocol graphql-transport-ws, on the same HTTP server
// and path as Yoga. Each operation runs through Yoga's envelop, so every plugin (limits, auth,
// masking) applies to this transport exactly as to HTTP.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';

export interface WebSocketTransportOptions {
  keepAliveMs: number;
  connectionInitTimeoutMs: number;
}

type EnvelopedExecute = (args: ExecutionArgs) => unknown;

/** Yoga's server context on this Node server: the request and response it was handed. */
export type NodeServerContext = { req: IncomingMessage; res: ServerResponse };

export function attachWebSocketTransport<UserContext extends object>(
  server: Server,
  yoga: YogaServerInstance<NodeServerContext, UserContext>,
  options: WebSocketTransportOptions,
): { close(): Promise<void>; connections(): number } {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const disposable = useServer(
    {
      connectionInitWaitTimeout: options.connectionInitTimeoutMs,
      execute: (args) => (args.rootValue as { execute: EnvelopedExecute }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: EnvelopedExecute }).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        // The upgrade request stands in for `req`; there is no response object on a socket.
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
        } as never);
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName,
          document: parse(payload.query),
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
    options.keepAliveMs,
  );
  return {
    connections: () => wss.clients.size,
    async close() {
      // 1001 "going away": the server is shutting down, clients may reconnect elsewhere.
      for (const socket of wss.clients) socket.close(1001, 'Server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
