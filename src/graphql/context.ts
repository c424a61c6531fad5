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
}
