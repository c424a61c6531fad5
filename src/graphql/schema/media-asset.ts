import GraphQLUpload from 'graphql-upload/GraphQLUpload.mjs';
import type { MediaAssetRow } from '../../storage/schema.ts';
import type { UploadResult } from '../../media/uploads.ts';
import { builder } from '../builder.ts';
import { UserErrorRef } from './create-video-task.ts';
import { DateTimeScalar } from './scalars.ts';

export const UploadScalar = builder.addScalarType('Upload', GraphQLUpload, {});

const MediaKindEnum = builder.enumType('MediaKind', {
  values: {
    IMAGE: { description: 'JPEG, PNG or WEBP: for imageUrls and images.' },
    VIDEO: { description: 'MP4: for videos (reference video).' },
    AUDIO: { description: 'MP3 or WAV: for audios (reference audio).' },
  },
});

export const MediaAssetRef = builder.objectRef<MediaAssetRow>('MediaAsset').implement({
  description: 'An uploaded file, stored once per content, at a stable public URL createVideoTask accepts.',
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.string({ description: 'Pass this URL to createVideoTask (imageUrls, images, videos or audios).', resolve: (asset, _args, ctx) => ctx.media.upload(asset) }),
    kind: t.expose('kind', { type: MediaKindEnum }),
    contentType: t.exposeString('contentType', { description: 'From the file\'s bytes, not its name.' }),
    bytes: t.exposeInt('bytes'),
    sha256: t.exposeString('sha256'),
    filename: t.exposeString('filename', { nullable: true }),
    createdAt: t.expose('createdAt', { type: DateTimeScalar }),
  }),
});

const UploadMediaPayloadRef = builder.objectRef<UploadResult>('UploadMediaPayload').implement({
  fields: (t) => ({
    asset: t.field({ type: MediaAssetRef, nullable: true, resolve: (p) => p.asset }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('uploadMedia', (t) => t.field({
  type: UploadMediaPayloadRef,
  description: 'Uploads an image (JPEG, PNG, WEBP, at most 10 MB), a reference video (MP4) or a reference audio (MP3, WAV) as a GraphQL multipart request. Refused files (empty, truncated, mislabelled, too large, another type) leave nothing behind.',
  args: { file: t.arg({ type: UploadScalar, required: true }) },
  resolve: async (_root, { file }, ctx) => ctx.uploads.upload(ctx.principal, await file),
}));
