// Subscriptions (and queries) over WebSocket, protocol graphql-transport-ws, on the same HTTP server
// and path as Yoga. Each operation runs through Yoga's envelop, so every plugin (limits, armor,
// masking) applies to this transport exactly as to HTTP. A connection authenticates once, with its
// connectionParams, and is held to a payload size, a number of subscriptions and a number per key.
//
// graphql-ws's protocol server (makeServer) is bound to `ws` here rather than with graphql-ws's own
// `useServer`, which held per connection what thousands of idle subscribers need not each hold: the
// upgrade request (its headers and streams), a keep-alive interval and the spent init timer, and a
// closure per socket event. Here the socket is the connection's state, its event handlers are shared,
// and one interval pings every socket (bench/memory.ts).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { GraphQLError, getOperationAST, type DocumentNode, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import { CloseCode, handleProtocols, makeServer, type WebSocket as ProtocolSocket } from 'graphql-ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Principal } from '../auth/principal.ts';
import type { ResumableSource } from '../graphql/context.ts';
import { ResumedSubscription, isAsyncIterable } from './resumed-subscriptions.ts';
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

type Enveloped = (args: ExecutionArgs) => unknown;

/** What onSubscribe prepared for the execute/subscribe hook; dropped once the operation has started. */
interface Setup {
  execute: Enveloped;
  subscribe: Enveloped;
  /** Where the operation's root field puts its source stream if that can outlive the execution. */
  sources: ResumableSource<unknown>[];
  /**
   * Who else may share this subscription's execution (see SharedSubscriptions); null: nobody. Sharing
   * is across connections only, so the asking connection (the owner) is part of it.
   */
  share: { key: string; owner: GraphQLWebSocket; principal: Principal; options: ShareOptions } | null;
}

/** Close codes beyond graphql-ws's own: 4401 (no or bad key, like HTTP 401), 4429 (too many connections). */
const UNAUTHORIZED = 4401;
const TOO_MANY_CONNECTIONS = 4429;

/** One connection: the `ws` socket, carrying what the transport knows of it. */
class GraphQLWebSocket extends WebSocket {
  /** Who it authenticated as (connection_init); null before. */
  principal: Principal | null = null;
  /** graphql-ws's handler of this connection's messages, and what to tell it when the socket closes. */
  receive: ((data: string) => Promise<void>) | null = null;
  closed: ((code: number, reason: string) => Promise<void>) | null = null;
  /** Pinged and not heard from since (see the keep-alive interval). */
  awaitingPong = false;
  /** Until connection_init arrives. */
  initTimer: NodeJS.Timeout | null = null;

  stopInitTimer(): void {
    if (this.initTimer) clearTimeout(this.initTimer);
    this.initTimer = null;
  }
}

/** The socket as graphql-ws's protocol server uses it: sends resolve once written (its backpressure). */
class ProtocolAdapter implements ProtocolSocket {
  constructor(private readonly socket: GraphQLWebSocket) {}

  get protocol(): string {
    return this.socket.protocol;
  }

  send(data: string): Promise<void> {
    const { socket } = this;
    return new Promise((resolve, reject) => {
      if (socket.readyState !== socket.OPEN) return resolve();
      socket.send(data, (error) => (error ? reject(error) : resolve()));
    });
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(receive: (data: string) => Promise<void>): void {
    this.socket.receive = receive;
  }
}

export function attachWebSocketTransport<UserContext extends object>(
  server: Server,
  yoga: YogaServerInstance<NodeServerContext, UserContext>,
  options: WebSocketTransportOptions,
): { close(): Promise<void>; connections(): number; sharedSubscribers(): number } {
  const { logger } = options;
  const wss = new WebSocketServer({
    server, path: yoga.graphqlEndpoint, maxPayload: options.maxPayloadBytes, handleProtocols, WebSocket: GraphQLWebSocket,
  });
  const connectionsPerKey = new Map<string, number>();
  const shared = new SharedSubscriptions();
  const setups = new WeakMap<ExecutionArgs, Setup>();
  /** The setup of an operation, once: nothing of it is held while the operation runs. */
  const takeSetup = (args: ExecutionArgs): Setup => {
    const setup = setups.get(args);
    if (!setup) throw new Error('An operation reached execution without going through onSubscribe.');
    setups.delete(args);
    return setup;
  };

  const protocol = makeServer<Record<string, unknown> | undefined, GraphQLWebSocket>({
    // Timed here (see onConnection), so that no spent timer stays with the connection.
    connectionInitWaitTimeout: Infinity,
    onConnect: (ctx) => {
      const socket = ctx.extra;
      socket.stopInitTimer();
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
      socket.principal = principal;
      return true;
    },
    execute: (args) => takeSetup(args).execute(args) as never,
    subscribe: (args) => {
      const setup = takeSetup(args);
      const { share } = setup;
      if (!share) return start(args, setup) as never;
      const { key, owner, principal } = share;
      return shared.subscribe(key, owner, share.options, () => start(args, setup) as never, () => {
        // A joiner skips envelop's onSubscribe (and its limits): it is charged here instead.
        const refusal = options.admitSharedSubscriber?.(principal);
        return refusal ? { errors: [refusal] } : null;
      }) as never;
    },
    onSubscribe: async (ctx, id, payload) => {
      // graphql-ws has already registered this operation under its id: count the others.
      if (Object.keys(ctx.subscriptions).filter((other) => other !== id).length >= options.maxSubscriptionsPerConnection) {
        return [new GraphQLError(`At most ${options.maxSubscriptionsPerConnection} operations may run at once on one connection.`, {
          extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
        })];
      }
      const socket = ctx.extra;
      const principal = socket.principal!;
      // Yoga's initial context: who asks (the connection authenticated at connection_init) and what.
      // Not the upgrade request, which is not kept: the context lives as long as the subscription.
      const sources: ResumableSource<unknown>[] = [];
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ principal, params: payload, resumableSources: sources } as never);
      // A query refused while parsing or validating (a syntax error, or a graphql-armor limit, which
      // throws) is this operation's error, not the connection's: graphql-ws would close it with 4500.
      // Yoga caches both by the query's text, so the document is the one its cache holds, not a copy.
      let document: DocumentNode;
      try {
        document = parse(payload.query);
        const errors = validate(schema, document);
        if (errors.length) return errors;
      } catch (error) {
        if (error instanceof GraphQLError) return [error];
        throw error;
      }
      const replayLatest = startsWithCurrentState(schema, document, payload.operationName);
      const args: ExecutionArgs = {
        schema,
        operationName: payload.operationName,
        document,
        variableValues: payload.variables,
        contextValue: await contextFactory(),
      };
      setups.set(args, {
        execute,
        subscribe,
        sources,
        share: replayLatest === null ? null : {
          key: shareKey(principal, payload.operationName, payload.query, payload.variables),
          owner: socket,
          principal,
          options: { replayLatest },
        },
      });
      return args;
    },
  });
  const serverError = (error: unknown, where: string) => {
    logger.error({ err: error }, `WebSocket ${where} failed`);
  };

  // The socket's own handlers, shared by every socket (`this` is the socket).
  function onMessage(this: WebSocket, data: RawData): void {
    const socket = this as GraphQLWebSocket;
    socket.receive?.(String(data)).catch((error: unknown) => {
      serverError(error, 'message handling');
      socket.close(CloseCode.InternalServerError, 'Internal server error');
    });
  }
  function onClose(this: WebSocket, code: number, reason: Buffer): void {
    const socket = this as GraphQLWebSocket;
    socket.stopInitTimer();
    const { principal, closed } = socket;
    if (principal) {
      const left = (connectionsPerKey.get(principal.ownerId) ?? 1) - 1;
      if (left > 0) connectionsPerKey.set(principal.ownerId, left);
      else connectionsPerKey.delete(principal.ownerId);
    }
    socket.receive = null;
    socket.closed = null;
    closed?.(code, String(reason)).catch((error: unknown) => serverError(error, 'close handling'));
  }
  function onError(this: WebSocket, error: Error): void {
    serverError(error, 'socket');
    this.close(CloseCode.InternalServerError, 'Internal server error');
  }
  function onPong(this: WebSocket): void {
    (this as GraphQLWebSocket).awaitingPong = false;
  }
  function initTimedOut(socket: GraphQLWebSocket): void {
    socket.initTimer = null;
    socket.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
  }

  wss.on('connection', (socket: GraphQLWebSocket) => {
    socket.on('message', onMessage);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.on('pong', onPong);
    if (options.connectionInitTimeoutMs > 0 && Number.isFinite(options.connectionInitTimeoutMs)) {
      socket.initTimer = setTimeout(initTimedOut, options.connectionInitTimeoutMs, socket);
    }
    socket.closed = protocol.opened(new ProtocolAdapter(socket), socket);
  });
  wss.on('error', (error) => {
    serverError(error, 'server');
    for (const socket of wss.clients) socket.close(CloseCode.InternalServerError, 'Internal server error');
  });

  // Keep-alive: every interval, a socket that has not answered the last ping is ended, the others pinged.
  const keepAlive = options.keepAliveMs > 0 && Number.isFinite(options.keepAliveMs)
    ? setInterval(() => {
      for (const socket of wss.clients as Set<GraphQLWebSocket>) {
        if (socket.readyState !== socket.OPEN) continue;
        if (socket.awaitingPong) {
          socket.terminate();
          continue;
        }
        socket.awaitingPong = true;
        socket.ping();
      }
    }, options.keepAliveMs)
    : null;
  keepAlive?.unref();

  return {
    connections: () => wss.clients.size,
    sharedSubscribers: () => shared.joined(),
    async close() {
      if (keepAlive) clearInterval(keepAlive);
      // 1001 "going away": the server is shutting down, clients may reconnect elsewhere.
      for (const socket of wss.clients) socket.close(1001, 'Server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * Starts a subscription through envelop. When its root field's source can go on alone, only the source
 * and what executing an event takes are held after the first result (see ResumedSubscription).
 */
async function start(args: ExecutionArgs, { subscribe, execute, sources }: Setup): Promise<unknown> {
  const started = await subscribe(args);
  // A subscription has one root field (GraphQL's validation says so), so at most one source.
  const source = sources.length === 1 ? sources[0]! : null;
  sources.length = 0;
  if (!source || !isAsyncIterable(started)) return started;
  return new ResumedSubscription(started[Symbol.asyncIterator]() as AsyncIterator<never>, source, args, execute);
}

/**
 * Everything a shared execution's results depend on: who asks (what they may see), the operation, its
 * variables. Hashed: the key is held for as long as the execution runs.
 */
function shareKey(principal: Principal, operationName: string | null | undefined, query: string, variables: unknown): string {
  const text = JSON.stringify([principal.ownerId, principal.role, operationName ?? null, query, variables ?? null]);
  return createHash('sha256').update(text).digest('base64url');
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
