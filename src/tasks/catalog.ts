// The model catalog: what every Seedance model accepts, as data.
// Validation (validation.ts), the `videoModels` query and the upstream field mapping
// (upstream/*-family.ts) are all derived from this table; adding a model is one entry.
// Every number here comes from the seed documents in ../shared/seeds; where a seed is silent
// the assumption is written beside the value, and nowhere else.

export type ImageRole = 'FIRST_FRAME' | 'LAST_FRAME' | 'REFERENCE';
export const IMAGE_ROLES: readonly ImageRole[] = ['FIRST_FRAME', 'LAST_FRAME', 'REFERENCE'];

/** Which endpoint family (request/response dialect) a model is reached through. */
export type EndpointFamily = 'videos' | 'video' | 'odkkk-videos';

/** Which configured provider account can serve a model (the sandbox serves all of them). */
export type ProviderKind = 'toapis' | 'odkkk';

export interface ChoiceLimit {
  /** The upstream body field this value is sent as. */
  field: string;
  values: readonly string[];
  /** Applied when the client gives none; null means the field is left out and the upstream decides. */
  default: string | null;
}

export interface VideoModel {
  id: string;
  name: string;
  description: string;
  family: EndpointFamily;
  providerKind: ProviderKind;
  /** Seed document the entry is taken from. */
  seed: string;
  prompt: {
    /** ALWAYS, or only for text-to-video (no image, video or audio reference given). */
    required: 'ALWAYS' | 'WITHOUT_MEDIA';
    maxLength: number | null;
  };
  duration: { min: number; max: number; default: number };
  aspectRatio: ChoiceLimit & {
    /** Image-to-video accepts other values and another default (seed 003). */
    withImage?: { values: readonly string[]; default: string };
  };
  resolution: (ChoiceLimit & {
    /** Resolutions refused when a REFERENCE image is given (seed 000: 1080p). */
    notWithReference: readonly string[];
  }) | null;
  /** `image_urls`: plain first-frame (or numbered reference) images. */
  imageUrls: { max: number; note: string } | null;
  /** `image_with_roles`: the upstream word for each role the model takes; absent roles are refused. */
  imageRoles: Partial<Record<ImageRole, string>> | null;
  /** Reference videos and audios, and how they are sent. */
  referenceVideos: { form: 'WITH_ROLES' | 'URLS'; role: string | null; max: number } | null;
  referenceAudios: { form: 'WITH_ROLES' | 'URLS'; role: string | null; max: number } | null;
  generateAudio: boolean;
  returnLastFrame: boolean;
  /** Seed 000's extended parameter, sent as `metadata.seed` (see upstream/videos-family.ts). */
  seedParameter: { min: number; max: number } | null;
  /** Whether submissions may carry `callback_url` (seed 003). */
  callback: boolean;
  /** Seed 001 accepts `asset://<ASSET_ID>` for assets already active upstream. */
  acceptsAssetUrls: boolean;
  /** Documented limits of referenced images, shown to clients (a URL's size cannot be checked here). */
  imageFormats: readonly string[];
  maxImageBytes: number | null;
  /** Rough generation time the seed quotes, in seconds, used by the sandbox and for poll pacing. */
  typicalSeconds: { min: number; max: number };
}

const SIX_RATIOS = ['16:9', '9:16', '1:1', '4:3', '3:4', '21:9'] as const;
const RESOLUTIONS = ['480p', '720p', '1080p'] as const;
const TEN_MB = 10 * 1024 * 1024;
/** Seed 000: "Range: -1 ~ 2^32-1". */
const SEED_RANGE = { min: -1, max: 2 ** 32 - 1 };

const seedance10Pro = (id: string, name: string, description: string, lastFrame: boolean,
  typicalSeconds: { min: number; max: number }): VideoModel => ({
  id,
  name,
  description,
  family: 'videos',
  providerKind: 'toapis',
  seed: '000',
  prompt: { required: 'ALWAYS', maxLength: null },
  duration: { min: 2, max: 12, default: 5 },
  aspectRatio: { field: 'aspect_ratio', values: SIX_RATIOS, default: '16:9' },
  resolution: { field: 'resolution', values: RESOLUTIONS, default: '720p', notWithReference: ['1080p'] },
  // Seed 000 lets `image_urls` hold an array of first-frame images; only one first frame makes sense.
  imageUrls: { max: 1, note: 'First-frame image.' },
  // "last_frame is only supported by doubao-seedance-1-0-pro-quality"
  imageRoles: lastFrame
    ? { FIRST_FRAME: 'first_frame', LAST_FRAME: 'last_frame', REFERENCE: 'reference' }
    : { FIRST_FRAME: 'first_frame', REFERENCE: 'reference' },
  referenceVideos: null,
  referenceAudios: null,
  generateAudio: false,
  returnLastFrame: false,
  seedParameter: SEED_RANGE,
  callback: false,
  acceptsAssetUrls: false,
  imageFormats: ['jpeg', 'png', 'webp'],
  maxImageBytes: null,
  typicalSeconds,
});

const seedance2 = (id: string, name: string, description: string): VideoModel => ({
  id,
  name,
  description,
  family: 'video',
  providerKind: 'toapis',
  seed: '001',
  prompt: { required: 'ALWAYS', maxLength: null },
  duration: { min: 4, max: 15, default: 5 },
  // Seed 001 gives no default ratio but recommends setting one explicitly: we send 16:9.
  aspectRatio: { field: 'ratio', values: ['16:9', '9:16', '1:1', '4:3'], default: '16:9' },
  resolution: null,
  // "Only the first image is used": more would be silently dropped, so more are refused.
  imageUrls: { max: 1, note: 'First-frame image; the upstream uses only the first.' },
  imageRoles: { FIRST_FRAME: 'first_frame', LAST_FRAME: 'last_frame', REFERENCE: 'reference_image' },
  referenceVideos: { form: 'WITH_ROLES', role: 'reference_video', max: 1 },
  referenceAudios: { form: 'WITH_ROLES', role: 'reference_audio', max: 1 },
  generateAudio: false,
  returnLastFrame: false,
  seedParameter: null,
  callback: false,
  acceptsAssetUrls: true,
  imageFormats: ['jpeg', 'png', 'webp'],
  maxImageBytes: TEN_MB,
  typicalSeconds: { min: 60, max: 300 },
});

export const VIDEO_MODELS: readonly VideoModel[] = [
  seedance10Pro('doubao-seedance-1-0-pro-fast', 'Seedance 1.0 Pro Fast',
    'Fast version (40-90 seconds generation). Text-to-video, first frame and reference image.', false,
    { min: 40, max: 90 }),
  seedance10Pro('doubao-seedance-1-0-pro-quality', 'Seedance 1.0 Pro Quality',
    'Quality version (90-300 seconds generation). Text-to-video, first and last frame, reference image.', true,
    { min: 90, max: 300 }),
  seedance2('seedance-2', 'Seedance 2', 'Standard version. Text-to-video, first-frame image, image/video/audio references and uploaded assets.'),
  seedance2('seedance-2-fast', 'Seedance 2 Fast', 'Fast version of Seedance 2.'),
  {
    id: 'doubao-seedance-2.0',
    name: 'Seedance 2.0 (multimodal)',
    description: 'Multimodal: reference images, video and audio; optional generated audio and returned last frame.',
    // Seed 002 names no host or path: the `video` family is assumed (UPSTREAM.md, open points).
    family: 'video',
    providerKind: 'toapis',
    seed: '002',
    prompt: { required: 'WITHOUT_MEDIA', maxLength: null },
    // Seed 002 only says "integer" (examples use 5 and 11); the Seedance 2 range of seed 001 is assumed.
    duration: { min: 4, max: 15, default: 5 },
    // Seed 002 shows `size: "16:9"` and no list: the six ratios of seed 000 are assumed, and no default
    // is sent, so that image-led generations keep the upstream's own choice.
    aspectRatio: { field: 'size', values: SIX_RATIOS, default: null },
    resolution: null,
    // Seed 002 numbers several images ("image 1", "image 2"); the upstream's limit of 9 is assumed.
    imageUrls: { max: 9, note: 'Reference images, referred to in the prompt as "image 1", "image 2", ...' },
    imageRoles: null,
    // Counts are not given by seed 002; Seedance 2.0's limit of 3 each is assumed.
    referenceVideos: { form: 'URLS', role: null, max: 3 },
    referenceAudios: { form: 'URLS', role: null, max: 3 },
    generateAudio: true,
    returnLastFrame: true,
    seedParameter: null,
    callback: false,
    acceptsAssetUrls: false,
    imageFormats: ['jpeg', 'png', 'webp'],
    maxImageBytes: null,
    typicalSeconds: { min: 60, max: 300 },
  },
  {
    id: 'doubao-seedance-1.0-pro-fast',
    name: 'Seedance 1.0 Pro Fast (odkkk)',
    description: 'Seedance 1.0 Pro Fast through the second provider: text-to-video and image-to-video, completion callbacks.',
    family: 'odkkk-videos',
    providerKind: 'odkkk',
    seed: '003',
    // "limited to 2000 tokens", `maxLength: 2000` in the OpenAPI schema: characters are what can be checked.
    prompt: { required: 'ALWAYS', maxLength: 2000 },
    duration: { min: 2, max: 12, default: 5 },
    aspectRatio: {
      field: 'aspect_ratio', values: SIX_RATIOS, default: '16:9',
      withImage: { values: [...SIX_RATIOS, 'keep_ratio', 'adaptive'], default: 'adaptive' },
    },
    resolution: { field: 'quality', values: RESOLUTIONS, default: '1080p', notWithReference: [] },
    imageUrls: { max: 1, note: 'Image for image-to-video.' },
    imageRoles: null,
    referenceVideos: null,
    referenceAudios: null,
    generateAudio: false,
    returnLastFrame: false,
    seedParameter: null,
    callback: true,
    acceptsAssetUrls: false,
    imageFormats: ['jpg', 'jpeg', 'png', 'webp'],
    maxImageBytes: TEN_MB,
    typicalSeconds: { min: 40, max: 165 },
  },
];

const byId = new Map(VIDEO_MODELS.map((m) => [m.id, m]));

export function findVideoModel(id: string): VideoModel | undefined {
  return byId.get(id);
}
