import type { VideoTaskService } from '../tasks/task-service.ts';
import type { ProviderDirectory } from '../upstream/providers.ts';

/** What every resolver may use; built per request from the app's dependencies. */
export interface GraphQLContext {
  tasks: VideoTaskService;
  providers: ProviderDirectory;
}
