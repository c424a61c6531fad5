import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import type { VideoTaskRow } from '../../storage/schema.ts';
import { decodeCursor, encodeCursor } from '../../storage/task-store.ts';
import { IMAGE_ROLES } from '../../tasks/catalog.ts';
import { VIDEO_TASK_STATUSES } from '../../tasks/status.ts';
import { builder } from '../builder.ts';
import { DateTimeScalar, SafeIntScalar } from './scalars.ts';

export const VideoTaskStatusEnum = builder.enumType('VideoTaskStatus', {
  description: 'Where a task is in its life. COMPLETED, FAILED and CANCELLED are final.',
  values: {
    SUBMITTING: { description: 'Recorded here; being handed to the provider.' },
    QUEUED: { description: 'Accepted by the provider, waiting to start (upstream `queued`, `submitted`, `pending`).' },
    IN_PROGRESS: { description: 'Being generated (upstream `in_progress`, `processing`, `running`).' },
    COMPLETED: { description: 'The video is ready at `videoUrl`.' },
    FAILED: { description: 'Ended without a video; `error` says why.' },
    CANCELLED: { description: 'Stopped being tracked at the client\'s request.' },
  } satisfies Record<(typeof VIDEO_TASK_STATUSES)[number], unknown>,
});

export const ImageRoleEnum = builder.enumType('ImageRole', {
  description: 'What an input image is used for.',
  values: {
    FIRST_FRAME: { description: 'The video starts on this image.' },
    LAST_FRAME: { description: 'The video ends on this image.' },
    REFERENCE: { description: 'Guides the style or subject.' },
  } satisfies Record<(typeof IMAGE_ROLES)[number], unknown>,
});

interface TaskErrorShape {
  code: string;
  type: string | null;
  message: string;
  param: string | null;
  fallbackSuggestion: string | null;
}

const TaskErrorRef = builder.objectRef<TaskErrorShape>('VideoTaskError').implement({
  description: 'Why a task failed: the provider\'s error, or one of this service\'s (e.g. TIMEOUT).',
  fields: (t) => ({
    code: t.exposeString('code'),
    type: t.exposeString('type', { nullable: true }),
    message: t.exposeString('message'),
    param: t.exposeString('param', { nullable: true, description: 'The upstream request field the error is about.' }),
    fallbackSuggestion: t.exposeString('fallbackSuggestion', { nullable: true, description: 'What the provider suggests doing instead.' }),
  }),
});

const ImageInputRef = builder.objectRef<{ url: string; role: (typeof IMAGE_ROLES)[number] }>('VideoTaskImage').implement({
  fields: (t) => ({
    url: t.exposeString('url'),
    role: t.expose('role', { type: ImageRoleEnum }),
  }),
});

const UsageRef = builder.objectRef<NonNullable<VideoTaskRow['usage']>>('VideoTaskUsage').implement({
  description: 'Billing information as the provider reported it (seed 003).',
  fields: (t) => ({
    billingRule: t.exposeString('billingRule', { nullable: true }),
    creditsReserved: t.exposeFloat('creditsReserved', { nullable: true }),
    userGroup: t.exposeString('userGroup', { nullable: true }),
  }),
});

const ArchiveStatusEnum = builder.enumType('ArchiveStatus', {
  values: {
    PENDING: { description: 'Being copied (or waiting to retry).' },
    ARCHIVED: { description: 'Stored here; videoUrl points at our copy.' },
    FAILED: { description: 'Could not be copied; `reason` says why (EXPIRED, TOO_LARGE, WRONG_TYPE, ...).' },
    DELETED: { description: 'Archived, then deleted by the retention setting.' },
  },
});

const ArchiveRef = builder.objectRef<VideoTaskRow>('VideoTaskArchive').implement({
  fields: (t) => ({
    status: t.field({ type: ArchiveStatusEnum, resolve: (task) => task.archiveStatus! }),
    reason: t.exposeString('archiveError', { nullable: true, description: 'Why the last attempt failed, or why it was given up.' }),
    attempts: t.exposeInt('archiveAttempts'),
    archivedAt: t.expose('archivedAt', { type: DateTimeScalar, nullable: true }),
    bytes: t.exposeInt('archivedVideoBytes', { nullable: true }),
    sha256: t.exposeString('archivedVideoSha256', { nullable: true }),
  }),
});

export const VideoTaskRef = builder.node(builder.objectRef<VideoTaskRow>('VideoTask'), {
  description: 'One video generation, from submission to result.',
  id: { resolve: (task) => task.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'upstreamTaskId' in value,
  loadMany: (ids, ctx) => {
    const rows = new Map(ctx.tasks.findMany(ctx.principal, ids).map((row) => [row.id, row]));
    return ids.map((id) => rows.get(id) ?? null);
  },
  fields: (t) => ({
    model: t.exposeString('model', { description: 'The upstream model id.' }),
    provider: t.exposeString('provider', { description: 'Who generates it: a provider name, or "sandbox" for the built-in sandbox upstream.' }),
    upstreamTaskId: t.exposeString('upstreamTaskId', { nullable: true }),
    upstreamStatus: t.exposeString('upstreamStatus', { nullable: true, description: 'The provider\'s own status word, as last reported.' }),
    status: t.expose('status', { type: VideoTaskStatusEnum }),
    progress: t.exposeInt('progress', { description: '0 to 100; never goes backwards.' }),
    prompt: t.exposeString('prompt', { nullable: true }),
    duration: t.int({ description: 'Seconds.', resolve: (task) => task.request.duration }),
    aspectRatio: t.string({ nullable: true, resolve: (task) => task.request.aspectRatio }),
    resolution: t.string({ nullable: true, resolve: (task) => task.request.resolution }),
    imageUrls: t.stringList({ resolve: (task) => task.request.imageUrls }),
    images: t.field({ type: [ImageInputRef], resolve: (task) => task.request.images }),
    videos: t.stringList({ resolve: (task) => task.request.videos }),
    audios: t.stringList({ resolve: (task) => task.request.audios }),
    generateAudio: t.boolean({ nullable: true, description: 'Null when not asked (the provider\'s default).', resolve: (task) => task.request.generateAudio }),
    returnLastFrame: t.boolean({ resolve: (task) => task.request.returnLastFrame }),
    seed: t.field({ type: SafeIntScalar, nullable: true, resolve: (task) => task.request.seed }),
    videoUrl: t.string({
      nullable: true,
      description: 'The best playable URL: a signed link to our archived copy once there is one, else the provider\'s URL.',
      resolve: (task, _args, ctx) => ctx.media.video(task),
    }),
    lastFrameUrl: t.string({ nullable: true, description: 'The last frame (returnLastFrame): archived copy first.', resolve: (task, _args, ctx) => ctx.media.lastFrame(task) }),
    upstreamVideoUrl: t.exposeString('videoUrl', { nullable: true, description: 'The provider\'s own result URL (valid until expiresAt).' }),
    upstreamLastFrameUrl: t.exposeString('lastFrameUrl', { nullable: true }),
    expiresAt: t.expose('expiresAt', { type: DateTimeScalar, nullable: true, description: 'When the provider\'s result URL stops working.' }),
    archive: t.field({
      type: ArchiveRef,
      nullable: true,
      description: 'Copying the result to this service\'s storage; null while there is no result.',
      resolve: (task) => task.archiveStatus ? task : null,
    }),
    estimatedTimeSeconds: t.exposeInt('estimatedTimeSeconds', { nullable: true, description: 'The provider\'s estimate of the time left.' }),
    usage: t.field({ type: UsageRef, nullable: true, resolve: (task) => task.usage }),
    error: t.field({
      type: TaskErrorRef,
      nullable: true,
      resolve: (task) => task.errorCode || task.errorMessage ? {
        code: task.errorCode ?? 'UNKNOWN',
        type: task.errorType,
        message: task.errorMessage ?? '',
        param: task.errorParam,
        fallbackSuggestion: task.errorFallbackSuggestion,
      } : null,
    }),
    createdAt: t.expose('createdAt', { type: DateTimeScalar }),
    updatedAt: t.expose('updatedAt', { type: DateTimeScalar }),
    completedAt: t.expose('completedAt', { type: DateTimeScalar, nullable: true }),
  }),
});

// Lineage refers to VideoTask itself, so it is added once the type exists.
builder.objectFields(VideoTaskRef, (t) => ({
    parent: t.field({
      type: VideoTaskRef,
      nullable: true,
      description: 'The task whose last frame this one starts from (extendVideoTask).',
      resolve: (task, _args, ctx) => (task.parentTaskId ? ctx.tasks.find(ctx.principal, task.parentTaskId) ?? null : null),
    }),
    children: t.field({
      type: [VideoTaskRef],
      description: 'Tasks started from this one\'s last frame.',
      resolve: (task, _args, ctx) => ctx.tasks.children(ctx.principal, task.id),
    }),
}));

export const VideoTaskFilterInput = builder.inputType('VideoTaskFilter', {
  fields: (t) => ({
    status: t.field({ type: [VideoTaskStatusEnum], required: false, description: 'Only tasks in one of these statuses.' }),
    model: t.stringList({ required: false, description: 'Only tasks of one of these models.' }),
  }),
});

builder.queryField('videoTask', (t) => t.field({
  type: VideoTaskRef,
  nullable: true,
  description: 'A task by id; null when unknown or not the caller\'s.',
  args: { id: t.arg.globalID({ required: true, for: [VideoTaskRef] }) },
  resolve: (_root, { id }, ctx) => ctx.tasks.find(ctx.principal, id.id) ?? null,
}));

const badCursor = (name: string) => new GraphQLError(`"${name}" is not a cursor of this connection`, {
  extensions: { code: 'BAD_USER_INPUT' },
});

builder.queryField('videoTasks', (t) => t.connection({
  type: VideoTaskRef,
  description: 'Tasks, newest first, with stable (keyset) cursors.',
  args: { filter: t.arg({ type: VideoTaskFilterInput, required: false }) },
  resolve: (_root, args, ctx) => resolveCursorConnection(
    { args, toCursor: (task: VideoTaskRow) => encodeCursor(task) },
    ({ before, after, limit, inverted }: ResolveCursorConnectionArgs): VideoTaskRow[] => {
      const afterCursor = after ? decodeCursor(after) : null;
      if (after && !afterCursor) throw badCursor('after');
      const beforeCursor = before ? decodeCursor(before) : null;
      if (before && !beforeCursor) throw badCursor('before');
      return ctx.tasks.list(ctx.principal, {
        statuses: args.filter?.status,
        models: args.filter?.model,
        after: afterCursor,
        before: beforeCursor,
        limit,
        inverted,
      });
    },
  ),
}));
