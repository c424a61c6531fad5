// The GraphQL context the peers (Apollo Server, Mercurius) serve the same schema with: the same task
// service over the same SQLite file, the anonymous principal, and media links, put together as
// src/app.ts does, minus what a read never touches (poller, archiver, rate limits).
import { join } from 'node:path';
import { ANONYMOUS } from '../../../src/auth/principal.ts';
import { InProcessTaskEvents } from '../../../src/events/task-events.ts';
import type { GraphQLContext } from '../../../src/graphql/context.ts';
import { createLogger } from '../../../src/logger.ts';
import { MediaAssetStore } from '../../../src/media/media-assets.ts';
import { MediaLinks } from '../../../src/media/media-links.ts';
import { LocalMediaStorage } from '../../../src/media/media-storage.ts';
import { MediaUploads } from '../../../src/media/uploads.ts';
import { UrlSigner } from '../../../src/media/url-signer.ts';
import { PollSchedule } from '../../../src/poller/poll-schedule.ts';
import { openDatabase, type Db } from '../../../src/storage/database.ts';
import { TaskStore } from '../../../src/storage/task-store.ts';
import { VideoTaskService } from '../../../src/tasks/task-service.ts';
import { ProviderDirectory } from '../../../src/upstream/providers.ts';
import { UpstreamClient } from '../../../src/upstream/upstream-client.ts';

export interface PeerContext {
  db: Db;
  /** One context for every request: nothing in it is request-scoped for an anonymous read. */
  context: GraphQLContext;
  setPublicBase(url: string): void;
  close(): Promise<void>;
}

export function peerContext(databaseFile: string): PeerContext {
  const db = openDatabase(databaseFile);
  const logger = createLogger('silent');
  const upstream = new UpstreamClient({ timeoutMs: 30_000 });
  const providers = new ProviderDirectory([]);
  const mediaDir = join(databaseFile, '..', 'media');
  const storage = new LocalMediaStorage(mediaDir);
  let publicBase = 'http://127.0.0.1';
  const links = new MediaLinks(new UrlSigner(Buffer.from('bench-signing-secret'), 86_400), () => publicBase);
  const tasks = new VideoTaskService({
    store: new TaskStore(db), upstream, providers, events: new InProcessTaskEvents(), schedule: new PollSchedule(),
    logger, owner: `bench-peer:${process.pid}`, leaseMs: 60_000, storage,
  });
  const uploads = new MediaUploads(storage, new MediaAssetStore(db), { maxImageBytes: 10 << 20, maxMediaBytes: 100 << 20 });
  return {
    db,
    context: { tasks, providers, principal: ANONYMOUS, media: links, uploads },
    setPublicBase: (url) => { publicBase = url; },
    async close() {
      await upstream.close();
      db.$client.close();
    },
  };
}
