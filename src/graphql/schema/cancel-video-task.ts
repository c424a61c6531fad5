import type { CancelVideoTaskResult } from '../../tasks/task-service.ts';
import { builder } from '../builder.ts';
import { UserErrorRef } from './create-video-task.ts';
import { VideoTaskRef } from './video-task.ts';

const CancelVideoTaskPayloadRef = builder.objectRef<CancelVideoTaskResult>('CancelVideoTaskPayload').implement({
  fields: (t) => ({
    task: t.field({ type: VideoTaskRef, nullable: true, resolve: (p) => p.task }),
    upstreamCancelled: t.exposeBoolean('upstreamCancelled', {
      description: 'Whether the provider was told to stop. The providers document no cancel call, so this is false: the upstream may still finish the task.',
    }),
    message: t.exposeString('message'),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('cancelVideoTask', (t) => t.field({
  type: CancelVideoTaskPayloadRef,
  description: 'Ends a task that has not finished as CANCELLED: polling stops and subscribers are told.',
  args: { id: t.arg.globalID({ required: true, for: [VideoTaskRef] }) },
  resolve: (_root, { id }, ctx) => ctx.tasks.cancel(ctx.principal, id.id),
}));
