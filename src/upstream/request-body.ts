// Pieces of request bodies that more than one endpoint family writes the same way.
// The field names come from the catalog entry, so a model's dialect is data, not code.
import type { VideoModel } from '../tasks/catalog.ts';
import type { VideoRequest } from '../tasks/video-request.ts';

/** model, prompt, duration, the ratio field and the resolution field, as the catalog names them. */
export function commonFields(model: VideoModel, request: VideoRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { model: model.id };
  if (request.prompt !== null) body.prompt = request.prompt;
  body.duration = request.duration;
  if (request.aspectRatio !== null) body[model.aspectRatio.field] = request.aspectRatio;
  if (model.resolution && request.resolution !== null) body[model.resolution.field] = request.resolution;
  return body;
}

/** `image_urls` and `image_with_roles` (never both: validation refuses that). */
export function imageFields(model: VideoModel, request: VideoRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (request.imageUrls.length > 0) body.image_urls = request.imageUrls;
  if (request.images.length > 0 && model.imageRoles) {
    const roles = model.imageRoles;
    body.image_with_roles = request.images.map((image) => ({ url: image.url, role: roles[image.role] }));
  }
  return body;
}

/** Reference videos and audios: `video_with_roles`/`audio_with_roles` or `video_urls`/`audio_urls`. */
export function referenceMediaFields(model: VideoModel, request: VideoRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const media = [
    { kind: 'video', urls: request.videos, limit: model.referenceVideos },
    { kind: 'audio', urls: request.audios, limit: model.referenceAudios },
  ] as const;
  for (const { kind, urls, limit } of media) {
    if (!limit || urls.length === 0) continue;
    if (limit.form === 'WITH_ROLES') body[`${kind}_with_roles`] = urls.map((url) => ({ url, role: limit.role }));
    else body[`${kind}_urls`] = urls;
  }
  return body;
}

/** The createVideoTask input field an upstream `param` refers to, so a refusal can name it. */
export function inputFieldForParam(model: VideoModel, param: string | null): string | null {
  if (!param) return null;
  const name = param.replace(/\[\d+\].*$/, '').replace(/^metadata\./, '');
  if (name === model.aspectRatio.field) return 'aspectRatio';
  if (model.resolution && name === model.resolution.field) return 'resolution';
  const fixed: Record<string, string> = {
    model: 'model', prompt: 'prompt', duration: 'duration', seed: 'seed',
    image_urls: 'imageUrls', image_with_roles: 'images',
    video_with_roles: 'videos', video_urls: 'videos', audio_with_roles: 'audios', audio_urls: 'audios',
    generate_audio: 'generateAudio', return_last_frame: 'returnLastFrame',
  };
  return fixed[name] ?? null;
}
