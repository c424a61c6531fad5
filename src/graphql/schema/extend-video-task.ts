import { builder } from '../builder.ts';
import { CreateVideoTaskPayloadRef } from './create-video-task.ts';
import { SafeIntScalar } from './scalars.ts';
import { VideoTaskRef } from './video-task.ts';

const ExtendVideoTaskInputRef = builder.inputType('ExtendVideoTaskInput', {
  description: 'The next segment. The first frame is the parent\'s last frame; everything else as createVideoTask.',
  fields: (t) => ({
    model: t.string({ required: false, description: 'Defaults to the parent\'s model; it must take a first-frame image.' }),
    prompt: t.string({ required: false }),
    duration: t.int({ required: false }),
    aspectRatio: t.string({ required: false }),
    resolution: t.string({ required: false }),
    videos: t.stringList({ required: false }),
    audios: t.stringList({ required: false }),
    generateAudio: t.boolean({ required: false }),
    returnLastFrame: t.boolean({ required: false, description: 'Set it to be able to extend the new task in turn.' }),
    seed: t.field({ type: SafeIntScalar, required: false }),
    provider: t.string({ required: false }),
    idempotencyKey: t.string({ required: false }),
  }),
});

builder.mutationField('extendVideoTask', (t) => t.field({
  type: CreateVideoTaskPayloadRef,
  description: 'Starts a new task whose first frame is the last frame of a completed one (created with returnLastFrame on a model that returns it).',
  args: {
    id: t.arg.globalID({ required: true, for: [VideoTaskRef] }),
    input: t.arg({ type: ExtendVideoTaskInputRef, required: true }),
  },
  resolve: (_root, { id, input }, ctx) => ctx.tasks.extend(ctx.principal, id.id, input, (parent) => ctx.media.lastFrame(parent), { requestId: ctx.requestId }),
}));
