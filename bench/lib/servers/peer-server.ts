// A peer GraphQL server over the same Pothos schema and resolvers as ours, for the baselines:
// Apollo Server 5 (its standalone node:http server) or Mercurius on Fastify with graphql-jit (`jit: 1`:
// a query is compiled the first time it is seen again).
// Options (one JSON argument): { kind: 'apollo' | 'mercurius', database: string }.
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import Fastify from 'fastify';
import mercurius from 'mercurius';
import { schema } from '../../../src/graphql/schema/index.ts';
import { childOptions, serveChild } from '../child-process.ts';
import { peerContext } from './peer-context.ts';

interface Options {
  kind: 'apollo' | 'mercurius';
  database: string;
}

serveChild(async () => {
  const options = childOptions<Options>();
  const peer = peerContext(options.database);
  if (options.kind === 'apollo') {
    const apollo = new ApolloServer({ schema, introspection: false });
    const { url } = await startStandaloneServer(apollo, { listen: { port: 0, host: '127.0.0.1' }, context: async () => peer.context });
    const origin = new URL(url).origin;
    peer.setPublicBase(origin);
    return { ready: { url: origin }, stop: async () => { await apollo.stop(); await peer.close(); } };
  }
  const app = Fastify({ logger: false });
  await app.register(mercurius, { schema, jit: 1, context: () => peer.context });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  peer.setPublicBase(address);
  return { ready: { url: address }, stop: async () => { await app.close(); await peer.close(); } };
});
