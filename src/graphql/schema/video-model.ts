// The catalog as clients see it: enough to build a form (which fields, which values, which limits).
import { IMAGE_ROLES, VIDEO_MODELS, type ImageRole, type VideoModel } from '../../tasks/catalog.ts';
import { builder } from '../builder.ts';
import { ImageRoleEnum } from './video-task.ts';
import { SafeIntScalar } from './scalars.ts';

const PromptRequirementEnum = builder.enumType('PromptRequirement', {
  values: {
    ALWAYS: { description: 'A prompt must be given.' },
    WITHOUT_MEDIA: { description: 'Required for text-to-video; optional when images, videos or audios are given.' },
  },
});

const RangeRef = builder.objectRef<{ min: number; max: number; default: number }>('IntRange').implement({
  fields: (t) => ({ min: t.exposeInt('min'), max: t.exposeInt('max'), default: t.exposeInt('default') }),
});

const SeedRangeRef = builder.objectRef<{ min: number; max: number }>('SeedRange').implement({
  fields: (t) => ({
    min: t.expose('min', { type: SafeIntScalar }),
    max: t.expose('max', { type: SafeIntScalar }),
  }),
});

const ChoiceRef = builder.objectRef<{ values: readonly string[]; default: string | null }>('Choice').implement({
  fields: (t) => ({
    values: t.stringList({ resolve: (c) => [...c.values] }),
    default: t.exposeString('default', { nullable: true, description: 'Used when none is given; null lets the provider decide.' }),
  }),
});

const AspectRatioChoiceRef = builder.objectRef<VideoModel['aspectRatio']>('AspectRatioChoice').implement({
  fields: (t) => ({
    values: t.stringList({ resolve: (c) => [...c.values] }),
    default: t.exposeString('default', { nullable: true, description: 'Used when none is given; null lets the provider decide.' }),
    withImage: t.field({
      type: ChoiceRef,
      nullable: true,
      description: 'Values and default that apply instead when a first-frame image is given.',
      resolve: (c) => c.withImage ?? null,
    }),
  }),
});

const ResolutionChoiceRef = builder.objectRef<NonNullable<VideoModel['resolution']>>('ResolutionChoice').implement({
  fields: (t) => ({
    values: t.stringList({ resolve: (c) => [...c.values] }),
    default: t.exposeString('default', { nullable: true }),
    notWithReference: t.stringList({ description: 'Resolutions refused when a REFERENCE image is given.', resolve: (c) => [...c.notWithReference] }),
  }),
});

const MediaLimitRef = builder.objectRef<{ max: number }>('MediaLimit').implement({
  fields: (t) => ({ max: t.exposeInt('max', { description: 'How many may be given.' }) }),
});

const ImageUrlsLimitRef = builder.objectRef<NonNullable<VideoModel['imageUrls']>>('ImageUrlsLimit').implement({
  fields: (t) => ({ max: t.exposeInt('max'), note: t.exposeString('note') }),
});

export const VideoModelRef = builder.objectRef<VideoModel>('VideoModel').implement({
  description: 'A model, and everything createVideoTask accepts for it.',
  fields: (t) => ({
    id: t.exposeString('id', { description: 'The upstream model id, passed as `model` to createVideoTask.' }),
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    providers: t.stringList({
      description: 'The configured providers serving this model, first one the default.',
      resolve: (model, _args, ctx) => ctx.providers.providersFor(model.id),
    }),
    promptRequired: t.field({ type: PromptRequirementEnum, resolve: (m) => m.prompt.required }),
    promptMaxLength: t.int({ nullable: true, resolve: (m) => m.prompt.maxLength }),
    duration: t.field({ type: RangeRef, description: 'Seconds.', resolve: (m) => m.duration }),
    aspectRatio: t.field({ type: AspectRatioChoiceRef, resolve: (m) => m.aspectRatio }),
    resolution: t.field({ type: ResolutionChoiceRef, nullable: true, description: 'Null when the model takes no resolution.', resolve: (m) => m.resolution }),
    imageUrls: t.field({ type: ImageUrlsLimitRef, nullable: true, description: 'Null when imageUrls is not accepted.', resolve: (m) => m.imageUrls }),
    imageRoles: t.field({
      type: [ImageRoleEnum],
      description: 'Roles accepted in `images` (one image each); empty when images with roles are not accepted.',
      resolve: (m) => IMAGE_ROLES.filter((role: ImageRole) => m.imageRoles?.[role]),
    }),
    referenceVideos: t.field({ type: MediaLimitRef, nullable: true, resolve: (m) => m.referenceVideos }),
    referenceAudios: t.field({ type: MediaLimitRef, nullable: true, resolve: (m) => m.referenceAudios }),
    generateAudio: t.exposeBoolean('generateAudio', { description: 'Whether generateAudio may be set.' }),
    returnLastFrame: t.exposeBoolean('returnLastFrame', { description: 'Whether returnLastFrame may be set.' }),
    seed: t.field({ type: SeedRangeRef, nullable: true, description: 'Null when the model takes no seed.', resolve: (m) => m.seedParameter }),
    acceptsAssetUrls: t.exposeBoolean('acceptsAssetUrls', { description: 'Whether asset://<ASSET_ID> URLs are accepted for media.' }),
    imageFormats: t.stringList({ resolve: (m) => [...m.imageFormats] }),
    maxImageBytes: t.int({ nullable: true, resolve: (m) => m.maxImageBytes }),
  }),
});

builder.queryField('videoModels', (t) => t.field({
  type: [VideoModelRef],
  description: 'Every model this service knows, and what each accepts.',
  resolve: () => [...VIDEO_MODELS],
}));
