// Checks a createVideoTask input against the catalog and turns it into a VideoRequest.
// Every rule reports a UserError naming the input path, and all problems are reported at once,
// so a client can mark every wrong field of a form in one round trip.
import { VIDEO_MODELS, findVideoModel, type ImageRole, type VideoModel } from './catalog.ts';
import { isInternalHost } from '../net/internal-address.ts';
import type { UpstreamErrorBody } from '../upstream/types.ts';
import type { VideoRequest } from './video-request.ts';

export interface CreateVideoTaskInput {
  model: string;
  prompt?: string | null;
  duration?: number | null;
  aspectRatio?: string | null;
  resolution?: string | null;
  imageUrls?: readonly string[] | null;
  images?: readonly { url: string; role: ImageRole }[] | null;
  videos?: readonly string[] | null;
  audios?: readonly string[] | null;
  generateAudio?: boolean | null;
  returnLastFrame?: boolean | null;
  seed?: number | null;
  provider?: string | null;
  idempotencyKey?: string | null;
}

/** Stable codes clients can switch on. */
export type UserErrorCode =
  | 'REQUIRED' | 'UNKNOWN_MODEL' | 'UNKNOWN_PROVIDER' | 'TOO_LONG' | 'OUT_OF_RANGE' | 'NOT_ALLOWED'
  | 'NOT_SUPPORTED' | 'TOO_MANY' | 'CONFLICT' | 'DUPLICATE_ROLE' | 'INVALID_URL' | 'UPLOAD_REQUIRED'
  | 'UNSUPPORTED_COMBINATION' | 'INVALID_FORMAT';

export interface UserError {
  field: string[];
  message: string;
  code: string;
  /** When the provider refused the request: what it said, as it said it. */
  upstream?: UpstreamRefusal;
  /** For limits: when trying again may succeed. */
  retryAfterSeconds?: number;
}

export interface UpstreamRefusal extends UpstreamErrorBody {
  httpStatus: number;
  retryAfterSeconds: number | null;
}

export type ValidationResult = { ok: true; model: VideoModel; request: VideoRequest } | { ok: false; errors: UserError[] };

/** No provider documents a URL limit except seed 003's callback (2048); the same bound keeps rows small. */
const MAX_URL_LENGTH = 2048;
// Asset ids as the sandbox (standing in for the provider) accepts them: letters, digits, _ and -
// (the seed's example is asset_img_01KXXXXXXX). A `.` passed here used to be refused upstream.
const ASSET_URL = /^asset:\/\/[A-Za-z0-9_-]+$/;

const modelsWith = (has: (m: VideoModel) => boolean) => VIDEO_MODELS.filter(has).map((m) => m.id).join(', ');

export interface ValidationOptions {
  /** URLs (or prefixes) this service itself vouches for: its own uploads, a parent's last frame. */
  trustedUrls?: readonly string[];
}

export function validateCreateVideoTask(input: CreateVideoTaskInput, options: ValidationOptions = {}): ValidationResult {
  const trusted = options.trustedUrls ?? [];
  const errors: UserError[] = [];
  const fail = (field: (string | number)[], code: UserErrorCode, message: string) =>
    errors.push({ field: ['input', ...field.map(String)], code, message });

  const model = findVideoModel(input.model);
  if (!model) {
    fail(['model'], 'UNKNOWN_MODEL', `Unknown model "${input.model}". Known models: ${VIDEO_MODELS.map((m) => m.id).join(', ')}.`);
    return { ok: false, errors };
  }

  // URLs are checked and stored as the upstream will get them: trimmed.
  const trimmed = (urls: readonly string[] | null | undefined) => (urls ?? []).map((url) => url.trim());
  const imageUrls = trimmed(input.imageUrls);
  const images = (input.images ?? []).map((image) => ({ url: image.url.trim(), role: image.role }));
  const videos = trimmed(input.videos);
  const audios = trimmed(input.audios);
  const hasMedia = imageUrls.length + images.length + videos.length + audios.length > 0;

  // Prompt.
  const prompt = input.prompt?.trim() ? input.prompt.trim() : null;
  if (prompt === null) {
    if (model.prompt.required === 'ALWAYS') fail(['prompt'], 'REQUIRED', `A prompt is required by ${model.id}.`);
    else if (!hasMedia) fail(['prompt'], 'REQUIRED', `A prompt is required by ${model.id} for text-to-video (no image, video or audio given).`);
  } else if (model.prompt.maxLength !== null && prompt.length > model.prompt.maxLength) {
    fail(['prompt'], 'TOO_LONG', `The prompt has ${prompt.length} characters; ${model.id} accepts at most ${model.prompt.maxLength}.`);
  }

  // Duration.
  const duration = input.duration ?? model.duration.default;
  if (!Number.isInteger(duration) || duration < model.duration.min || duration > model.duration.max) {
    fail(['duration'], 'OUT_OF_RANGE', `Duration must be a whole number of seconds from ${model.duration.min} to ${model.duration.max} for ${model.id}; got ${duration}.`);
  }

  // Images: plain URLs or URLs with roles, never both.
  if (imageUrls.length > 0) {
    if (!model.imageUrls) fail(['imageUrls'], 'NOT_SUPPORTED', `${model.id} does not take imageUrls.`);
    else if (imageUrls.length > model.imageUrls.max) {
      fail(['imageUrls'], 'TOO_MANY', `${model.id} takes at most ${model.imageUrls.max} image URL(s) in imageUrls; got ${imageUrls.length}.`);
    }
    imageUrls.forEach((url, i) => checkMediaUrl(model, url, ['imageUrls', i], fail, trusted));
  }
  if (images.length > 0) {
    if (imageUrls.length > 0) {
      fail(['images'], 'CONFLICT', 'imageUrls and images (with roles) cannot be used together: put the first frame in images with role FIRST_FRAME.');
    }
    const roles = model.imageRoles;
    if (!roles) {
      fail(['images'], 'NOT_SUPPORTED', `${model.id} does not take images with roles; models that do: ${modelsWith((m) => m.imageRoles !== null)}.`);
    } else {
      const seen = new Set<ImageRole>();
      images.forEach((image, i) => {
        if (!roles[image.role]) {
          fail(['images', i, 'role'], 'NOT_SUPPORTED',
            `${model.id} does not take a ${image.role} image; models that do: ${modelsWith((m) => Boolean(m.imageRoles?.[image.role]))}.`);
        } else if (seen.has(image.role)) {
          fail(['images', i, 'role'], 'DUPLICATE_ROLE', `Only one image per role is supported; ${image.role} is given more than once.`);
        }
        seen.add(image.role);
        checkMediaUrl(model, image.url, ['images', i, 'url'], fail, trusted);
      });
    }
  }
  const hasReferenceImage = images.some((image) => image.role === 'REFERENCE');
  const imageLed = imageUrls.length > 0 || images.some((image) => image.role === 'FIRST_FRAME');

  // Reference video and audio.
  const references = [
    { field: 'videos', urls: videos, limit: model.referenceVideos, what: 'reference videos' },
    { field: 'audios', urls: audios, limit: model.referenceAudios, what: 'reference audios' },
  ] as const;
  for (const { field, urls, limit, what } of references) {
    if (urls.length === 0) continue;
    if (!limit) {
      fail([field], 'NOT_SUPPORTED', `${model.id} does not take ${what}; models that do: ${modelsWith((m) => (field === 'videos' ? m.referenceVideos : m.referenceAudios) !== null)}.`);
      continue;
    }
    if (urls.length > limit.max) fail([field], 'TOO_MANY', `${model.id} takes at most ${limit.max} ${what}; got ${urls.length}.`);
    urls.forEach((url, i) => checkMediaUrl(model, url, [field, i], fail, trusted));
  }

  // Aspect ratio: image-to-video may have its own values and default (seed 003).
  const ratioRule = imageLed && model.aspectRatio.withImage ? model.aspectRatio.withImage : model.aspectRatio;
  const aspectRatio = input.aspectRatio ?? ratioRule.default;
  if (aspectRatio !== null && !ratioRule.values.includes(aspectRatio)) {
    const extra = model.aspectRatio.withImage && !imageLed && model.aspectRatio.withImage.values.includes(aspectRatio)
      ? ' (that value is only accepted with an image)' : '';
    fail(['aspectRatio'], 'NOT_ALLOWED', `Aspect ratio "${aspectRatio}" is not accepted by ${model.id}${extra}; use one of ${ratioRule.values.join(', ')}.`);
  }

  // Resolution.
  let resolution: string | null = null;
  if (!model.resolution) {
    if (input.resolution != null) fail(['resolution'], 'NOT_SUPPORTED', `${model.id} does not take a resolution.`);
  } else {
    resolution = input.resolution ?? model.resolution.default;
    if (resolution !== null && !model.resolution.values.includes(resolution)) {
      fail(['resolution'], 'NOT_ALLOWED', `Resolution "${resolution}" is not accepted by ${model.id}; use one of ${model.resolution.values.join(', ')}.`);
    } else if (resolution !== null && hasReferenceImage && model.resolution.notWithReference.includes(resolution)) {
      fail(['resolution'], 'UNSUPPORTED_COMBINATION', `${resolution} is not supported with a REFERENCE image on ${model.id}; choose ${model.resolution.values.filter((v) => !model.resolution?.notWithReference.includes(v)).join(' or ')}.`);
    }
  }

  // Switches only some models have: refused when asked for, fine when left at false.
  if (input.generateAudio && !model.generateAudio) {
    fail(['generateAudio'], 'NOT_SUPPORTED', `${model.id} cannot generate audio; models that can: ${modelsWith((m) => m.generateAudio)}.`);
  }
  if (input.returnLastFrame && !model.returnLastFrame) {
    fail(['returnLastFrame'], 'NOT_SUPPORTED', `${model.id} cannot return the last frame; models that can: ${modelsWith((m) => m.returnLastFrame)}.`);
  }

  // Seed.
  const seed = input.seed ?? null;
  if (seed !== null) {
    if (!model.seedParameter) {
      fail(['seed'], 'NOT_SUPPORTED', `${model.id} does not take a seed; models that do: ${modelsWith((m) => m.seedParameter !== null)}.`);
    } else if (!Number.isInteger(seed) || seed < model.seedParameter.min || seed > model.seedParameter.max) {
      fail(['seed'], 'OUT_OF_RANGE', `Seed must be an integer from ${model.seedParameter.min} to ${model.seedParameter.max}; got ${seed}.`);
    }
  }

  const idempotencyKey = input.idempotencyKey ?? null;
  if (idempotencyKey !== null && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    fail(['idempotencyKey'], 'INVALID_FORMAT', 'An idempotency key is 1 to 255 printable ASCII characters without spaces.');
  }

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    model,
    request: {
      model: model.id,
      prompt,
      duration,
      aspectRatio,
      resolution,
      imageUrls,
      images,
      videos,
      audios,
      // Left null when not asked: seed 002 documents no default, so the upstream keeps its own.
      generateAudio: model.generateAudio ? input.generateAudio ?? null : null,
      returnLastFrame: model.returnLastFrame ? Boolean(input.returnLastFrame) : false,
      seed,
    },
  };
}

/** Media is passed by URL: http(s), or `asset://` where the model allows it; never inline data. */
function checkMediaUrl(
  model: VideoModel,
  url: string,
  field: (string | number)[],
  fail: (field: (string | number)[], code: UserErrorCode, message: string) => void,
  trusted: readonly string[],
): void {
  const text = url.trim();
  if (trusted.some((prefix) => text.startsWith(prefix))) return;
  if (/^data:/i.test(text)) {
    fail(field, 'UPLOAD_REQUIRED', 'Inline data (data: URLs, base64) is not accepted by the providers: upload the file first with the uploadMedia mutation and pass the URL it returns.');
    return;
  }
  if (text.length > MAX_URL_LENGTH) {
    fail(field, 'TOO_LONG', `URLs may be at most ${MAX_URL_LENGTH} characters.`);
    return;
  }
  if (/^asset:/i.test(text)) {
    if (!model.acceptsAssetUrls) {
      fail(field, 'INVALID_URL', `${model.id} does not accept asset:// URLs; models that do: ${modelsWith((m) => m.acceptsAssetUrls)}.`);
    } else if (!ASSET_URL.test(text)) {
      fail(field, 'INVALID_URL', 'An asset URL must have the form asset://<ASSET_ID> (letters, digits, _ and -).');
    }
    return;
  }
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    fail(field, 'INVALID_URL', `"${text.slice(0, 80)}" is not a URL; media must be given as a public http(s) URL.`);
    return;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    fail(field, 'INVALID_URL', `Only http:// and https:// URLs are accepted${model.acceptsAssetUrls ? ' (or asset://<ASSET_ID>)' : ''}; got ${parsed.protocol}.`);
  } else if (parsed.username || parsed.password) {
    fail(field, 'INVALID_URL', 'URLs with credentials (user:password@) are refused: they would be handed to the provider.');
  } else if (isInternalHost(parsed.hostname)) {
    fail(field, 'INVALID_URL', `"${parsed.hostname}" is a private, loopback or link-local address; media must be on a public host.`);
  }
}

