import type { Principal } from '../auth/principal.ts';
import type { MediaLinks } from '../media/media-links.ts';
import type { MediaUploads } from '../media/uploads.ts';
import type { VideoTaskService } from '../tasks/task-service.ts';
import type { ProviderDirectory } from '../upstream/providers.ts';

/** What every resolver may use: the app's services, and who is asking. */
export interface GraphQLContext {
  tasks: VideoTaskService;
  providers: ProviderDirectory;
  principal: Principal;
  requestId?: string;
  media: MediaLinks;
  uploads: MediaUploads;
  /**
   * Given by the WebSocket transport to a subscription: a root field's resolver adds the source stream
   * it returns when that stream can go on without the execution that started it (graphql-ws.ts).
   */
  resumableSources?: ResumableSource<unknown>[];
}

/** A subscription's source stream, whose remaining events can be handed to a new consumer. */
export interface ResumableSource<T> extends AsyncIterator<T> {
  /** The rest of the stream; the consumer so far lets go (its return() no longer ends the stream). */
  handOver(): AsyncIterableIterator<T>;
}
