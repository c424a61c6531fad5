import { GraphQLError } from 'graphql';
import type { VideoTaskRow } from '../../storage/schema.ts';
import { builder } from '../builder.ts';
import { VideoTaskFilterInput, VideoTaskRef } from './video-task.ts';

builder.subscriptionField('videoTaskUpdated', (t) => t.field({
  type: VideoTaskRef,
  description: 'The task as it is now, then every change; the subscription completes after a terminal state.',
  // Read by the WebSocket transport: subscribers joining a shared execution get its latest result first.
  extensions: { startsWithCurrentState: true },
  args: { id: t.arg.globalID({ required: true, for: [VideoTaskRef] }) },
  subscribe: (_root, { id }, ctx) => {
    if (!ctx.tasks.find(ctx.principal, id.id)) throw new GraphQLError('No such task.', { extensions: { code: 'NOT_FOUND' } });
    const stream = ctx.tasks.watch(ctx.principal, id.id);
    // Each event is the whole task, so an event executed on its own gives what the execution would.
    ctx.resumableSources?.push(stream);
    return stream;
  },
  resolve: (task: VideoTaskRow) => task,
}));

builder.subscriptionField('videoTasksUpdated', (t) => t.field({
  type: VideoTaskRef,
  description: 'Every change to the caller\'s tasks (all tasks for an admin) matching the filter.',
  args: { filter: t.arg({ type: VideoTaskFilterInput, required: false }) },
  subscribe: (_root, { filter }, ctx) => ctx.tasks.watchAll(ctx.principal, { statuses: filter?.status, models: filter?.model }),
  resolve: (task: VideoTaskRow) => task,
}));
