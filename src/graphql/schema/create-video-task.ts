
import type { CreateVideoTaskResult } from '../../tasks/task-service.ts';
import type { UpstreamRefusal, UserError } from '../../tasks/validation.ts';
import { builder } from '../builder.ts';
import { SafeIntScalar } from './scalars.ts';
import { ImageRoleEnum, VideoTaskRef } from './video-task.ts';

const UpstreamRefusalRef = builder.objectRef<UpstreamRefusal>('UpstreamRefusal').implement({
  description: 'The provider\'s own answer when it refused a request.',
  fields: (t) => ({
    httpStatus: t.exposeInt('httpStatus'),
    code: t.exposeString('code', { nullable: true }),
    type: t.exposeString('type', { nullable: true }),
    message: t.exposeString('message'),
    param: t.exposeString('param', { nullable: true }),
    fallbackSuggestion: t.exposeString('fallbackSuggestion', { nullable: true }),
    retryAfterSeconds: t.exposeInt('retryAfterSeconds', { nullable: true }),
  }),
});

export const UserErrorRef = builder.objectRef<UserError>('UserError').implement({
  description: 'A problem with the input that the client can fix (or, with `upstream`, a refusal by the provider).',
  fields: (t) => ({
    field: t.exposeStringList('field', { nullable: true, description: 'Path of the input field, e.g. ["input", "duration"].' }),
    message: t.exposeString('message'),
    code: t.exposeString('code', { description: 'Stable, e.g. OUT_OF_RANGE, NOT_SUPPORTED, UPSTREAM_INSUFFICIENT_QUOTA.' }),
    upstream: t.field({ type: UpstreamRefusalRef, nullable: true, resolve: (e) => e.upstream ?? null }),
    retryAfterSeconds: t.int({ nullable: true, description: 'For limits: when trying again may succeed.', resolve: (e) => e.retryAfterSeconds ?? null }),
  }),
});

const ImageInput = builder.inputType('VideoImageInput', {
  fields: (t) => ({
    url: t.string({ required: true }),
    role: t.field({ type: ImageRoleEnum, required: true }),
  }),
});

const CreateVideoTaskInputRef = builder.inputType('CreateVideoTaskInput', {
  description: 'What to generate. `videoModels` says which fields each model accepts.',
  fields: (t) => ({
    model: t.string({ required: true, description: 'The upstream model id, e.g. "seedance-2".' }),
    prompt: t.string({ required: false }),
    duration: t.int({ required: false, description: 'Seconds; the model\'s default when omitted.' }),
    aspectRatio: t.string({ required: false, description: 'As the providers write it, e.g. "16:9".' }),
    resolution: t.string({ required: false, description: 'e.g. "720p", for models that take one.' }),
    imageUrls: t.stringList({ required: false, description: 'Image URLs without roles (first frame, or numbered references).' }),
    images: t.field({ type: [ImageInput], required: false, description: 'Images with roles; not together with imageUrls.' }),
    videos: t.stringList({ required: false, description: 'Reference video URLs.' }),
    audios: t.stringList({ required: false, description: 'Reference audio URLs.' }),
    generateAudio: t.boolean({ required: false }),
    returnLastFrame: t.boolean({ required: false }),
    seed: t.field({ type: SafeIntScalar, required: false }),
    provider: t.string({ required: false, description: 'One of the model\'s `providers`; the first when omitted.' }),
    idempotencyKey: t.string({ required: false }),
  }),
});

export const CreateVideoTaskPayloadRef = builder.objectRef<CreateVideoTaskResult>('CreateVideoTaskPayload').implement({
  fields: (t) => ({
    task: t.field({ type: VideoTaskRef, nullable: true, resolve: (p) => p.task }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('createVideoTask', (t) => t.field({
  type: CreateVideoTaskPayloadRef,
  description: 'Validates the input against the catalog, records the task and submits it to the provider.',
  args: { input: t.arg({ type: CreateVideoTaskInputRef, required: true }) },
  resolve: (_root, { input }, ctx) => ctx.tasks.create(ctx.principal, {
    ...input,
    images: input.images?.map((image) => ({ url: image.url, role: image.role })),
  }, { requestId: ctx.requestId }),
}));

