import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../builder.ts';
import { UserErrorRef } from './create-video-task.ts';
import { VideoTaskRef } from './video-task.ts';

const DeleteVideoTaskPayloadRef = builder.objectRef<{ deletedTaskId: string | null; userErrors: { field: string[]; message: string; code: string }[] }>('DeleteVideoTaskPayload').implement({
  fields: (t) => ({
    deletedTaskId: t.field({
      type: 'ID',
      nullable: true,
      resolve: (p) => (p.deletedTaskId ? encodeGlobalID('VideoTask', p.deletedTaskId) : null),
    }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('deleteVideoTask', (t) => t.field({
  type: DeleteVideoTaskPayloadRef,
  description: 'Deletes a finished task and its archived files.',
  args: { id: t.arg.globalID({ required: true, for: [VideoTaskRef] }) },
  resolve: (_root, { id }, ctx) => ctx.tasks.deleteTask(ctx.principal, id.id),
}));
