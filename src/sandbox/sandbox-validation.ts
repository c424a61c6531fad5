// What the upstreams refuse, checked on the upstream body itself (field names as the seeds spell them),
// independently of the GraphQL side's validation: the sandbox stands in for the provider, so a body our
// client builds wrongly must be refused here just as the provider would refuse it.
// The limits are read from the catalog; only the rules the catalog cannot express are written here.
import { isInternalHost } from '../net/internal-address.ts';
import type { VideoModel } from '../tasks/catalog.ts';
import type { SandboxEndpoint } from './endpoints.ts';

type Json = Record<string, unknown>;

export interface Refusal {
  status: 400 | 404;
  message: string;
  param?: string;
  suggestion?: string;
}

export type CreateVerdict = { model: VideoModel; body: Json; refusal?: undefined } | { refusal: Refusal };

export interface ValidationPolicy {
  /** Seed 003 refuses callbacks to internal hosts; tests with a loopback receiver lift that. */
  allowInternalCallbacks: boolean;
}

/** Seed 003: "URL length must not exceed 2048 characters". */
const MAX_CALLBACK_URL_LENGTH = 2048;

class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
  }
}

// Seed 003's example pairs `param: prompt` with "provide a valid prompt"; every 400 follows it.
function refuse(param: string, message: string): never {
  throw new Refused({ status: 400, param, message, suggestion: `provide a valid ${param}` });
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A field the body leaves out and one it sends as null mean the same: the upstream's default. */
function given(body: Json, field: string): unknown {
  const value = body[field];
  return value === null ? undefined : value;
}

export function validateCreateBody(body: unknown, endpoint: SandboxEndpoint, policy: ValidationPolicy): CreateVerdict {
  try {
    if (!isObject(body)) return { refusal: { status: 400, message: 'request body must be a JSON object' } };
    const model = requestedModel(body, endpoint);
    checkKnownFields(body, model);
    const media = checkMedia(body, model, endpoint);
    checkPrompt(body, model, media.anyGiven);
    checkDuration(body, model);
    checkRatio(body, model, media.imageUrls > 0);
    checkResolution(body, model, media.hasReferenceImage);
    checkFlags(body, model);
    checkSeed(body, model);
    checkCallbackUrl(body, model, policy);
    return { model, body };
  } catch (error) {
    if (error instanceof Refused) return { refusal: error.refusal };
    throw error;
  }
}

function requestedModel(body: Json, endpoint: SandboxEndpoint): VideoModel {
  const id = given(body, 'model');
  if (id === undefined || id === '') refuse('model', 'model is required');
  if (typeof id !== 'string') refuse('model', 'model must be a string');
  const model = endpoint.models.find((m) => m.id === id);
  if (model) return model;
  // Seed 003's own example: 404, param model, and a model that does exist as the suggestion.
  const suggestion = endpoint.models[0]?.id;
  throw new Refused({
    status: 404,
    message: `Specified model not found: ${id}`,
    param: 'model',
    ...(suggestion ? { suggestion } : {}),
  });
}

/**
 * The fields a model's body may carry, derived from its catalog entry. A real upstream may well
 * ignore unknown fields; refusing them makes a client that maps a field to the wrong name
 * (`aspect_ratio` where `ratio` is meant) fail loudly instead of silently losing the value.
 */
export function acceptedFields(model: VideoModel): Set<string> {
  const fields = new Set(['model', 'prompt', 'duration', model.aspectRatio.field]);
  if (model.resolution) fields.add(model.resolution.field);
  if (model.imageUrls) fields.add('image_urls');
  if (model.imageRoles) fields.add('image_with_roles');
  if (model.referenceVideos) fields.add(model.referenceVideos.form === 'WITH_ROLES' ? 'video_with_roles' : 'video_urls');
  if (model.referenceAudios) fields.add(model.referenceAudios.form === 'WITH_ROLES' ? 'audio_with_roles' : 'audio_urls');
  if (model.generateAudio) fields.add('generate_audio');
  if (model.returnLastFrame) fields.add('return_last_frame');
  // Seed 000's extended parameters travel in `metadata`.
  if (model.seedParameter) fields.add('metadata');
  if (model.callback) fields.add('callback_url');
  return fields;
}

function checkKnownFields(body: Json, model: VideoModel): void {
  const accepted = acceptedFields(model);
  for (const field of Object.keys(body)) {
    if (!accepted.has(field)) refuse(field, `${field} is not a parameter of ${model.id}`);
  }
}

function optionalArray(body: Json, field: string): unknown[] {
  const value = given(body, field);
  if (value === undefined) return [];
  if (!Array.isArray(value)) refuse(field, `${field} must be an array`);
  return value;
}

interface MediaSummary {
  imageUrls: number;
  hasReferenceImage: boolean;
  /** Whether any image, video or audio is referenced: seed 002 then makes the prompt optional. */
  anyGiven: boolean;
}

function checkMedia(body: Json, model: VideoModel, endpoint: SandboxEndpoint): MediaSummary {
  const imageUrls = optionalArray(body, 'image_urls');
  const roleImages = optionalArray(body, 'image_with_roles');
  if (imageUrls.length > 0 && roleImages.length > 0) {
    refuse('image_with_roles', 'image_urls and image_with_roles cannot be used together');
  }
  const max = model.imageUrls?.max ?? 0;
  if (imageUrls.length > max) refuse('image_urls', `${model.id} accepts at most ${max} image URL(s) in image_urls`);
  for (const url of imageUrls) checkMediaUrl(url, 'image_urls', model);
  const roles = checkRoleImages(roleImages, model, endpoint);
  const videos = checkReferences(body, model, 'video');
  const audios = checkReferences(body, model, 'audio');
  const referenceRole = model.imageRoles?.REFERENCE;
  return {
    imageUrls: imageUrls.length,
    hasReferenceImage: referenceRole !== undefined && roles.has(referenceRole),
    anyGiven: imageUrls.length + roleImages.length + videos + audios > 0,
  };
}

/** `image_with_roles`: known roles of this model only, one image per role (seed 000). */
function checkRoleImages(items: unknown[], model: VideoModel, endpoint: SandboxEndpoint): Set<string> {
  const field = 'image_with_roles';
  const allowed = Object.values(model.imageRoles ?? {});
  const seen = new Set<string>();
  for (const item of items) {
    if (!isObject(item) || typeof item.role !== 'string') refuse(field, `${field} entries must be objects with url and role`);
    const role = item.role;
    if (!allowed.includes(role)) {
      const takers = endpoint.models.filter((m) => Object.values(m.imageRoles ?? {}).includes(role)).map((m) => m.id);
      refuse(field, takers.length > 0
        ? `role ${role} is only supported by ${takers.join(', ')}`
        : `role ${role} is not supported; use one of ${allowed.join(', ')}`);
    }
    if (seen.has(role)) refuse(field, `only one image per role is supported (${role} given twice)`);
    seen.add(role);
    checkMediaUrl(item.url, field, model);
  }
  return seen;
}

/** Reference videos or audios, in the form the catalog records (`*_with_roles` or `*_urls`); returns the count. */
function checkReferences(body: Json, model: VideoModel, kind: 'video' | 'audio'): number {
  const limit = kind === 'video' ? model.referenceVideos : model.referenceAudios;
  if (!limit) return 0;
  const field = limit.form === 'WITH_ROLES' ? `${kind}_with_roles` : `${kind}_urls`;
  const items = optionalArray(body, field);
  if (items.length > limit.max) refuse(field, `${model.id} accepts at most ${limit.max} reference ${kind}(s)`);
  for (const item of items) {
    if (limit.form === 'URLS') {
      checkMediaUrl(item, field, model);
      continue;
    }
    if (!isObject(item) || item.role !== limit.role) refuse(field, `${field} entries must be objects with url and role ${limit.role}`);
    checkMediaUrl(item.url, field, model);
  }
  return items.length;
}

// A long run of base64 characters with no scheme is inline data, not a URL.
const BASE64_RUN = /^[A-Za-z0-9+/=\s]{64,}$/;

/** Seed 000: URLs only, base64 "no longer supported"; seed 001 also takes `asset://<ASSET_ID>`. */
function checkMediaUrl(value: unknown, field: string, model: VideoModel): void {
  if (typeof value !== 'string' || value.trim() === '') refuse(field, `${field} entries must be URL strings`);
  if (/^data:/i.test(value) || BASE64_RUN.test(value)) {
    refuse(field, 'base64 data is no longer supported: upload the file first and pass its URL');
  }
  if (/^asset:\/\//i.test(value)) {
    if (model.acceptsAssetUrls && /^asset:\/\/[A-Za-z0-9_-]+$/.test(value)) return;
    refuse(field, model.acceptsAssetUrls ? `malformed asset URL: ${value}` : `${model.id} does not accept asset:// URLs`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse(field, `not a URL: ${value.slice(0, 100)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    refuse(field, `${field} entries must be publicly accessible http:// or https:// URLs`);
  }
}

function checkPrompt(body: Json, model: VideoModel, mediaGiven: boolean): void {
  const prompt = given(body, 'prompt');
  if (prompt !== undefined && typeof prompt !== 'string') refuse('prompt', 'prompt must be a string');
  const required = model.prompt.required === 'ALWAYS' || !mediaGiven;
  if (required && (prompt === undefined || prompt.trim() === '')) {
    refuse('prompt', model.prompt.required === 'ALWAYS'
      ? 'prompt is required'
      : 'prompt is required for text-to-video (no image, video or audio reference given)');
  }
  const max = model.prompt.maxLength;
  // Counted in code points: never stricter than a UTF-16 length check on the GraphQL side.
  if (max !== null && prompt !== undefined && [...prompt].length > max) {
    refuse('prompt', `prompt must be at most ${max} characters`);
  }
}

function checkDuration(body: Json, model: VideoModel): void {
  const duration = given(body, 'duration');
  if (duration === undefined) return;
  const { min, max } = model.duration;
  if (typeof duration !== 'number' || !Number.isInteger(duration) || duration < min || duration > max) {
    refuse('duration', `duration must be an integer between ${min} and ${max} seconds`);
  }
}

/** The ratio field under the model's own name; seed 003 widens the values for image-to-video. */
function checkRatio(body: Json, model: VideoModel, withImage: boolean): void {
  const { field, values, withImage: imageMode } = model.aspectRatio;
  const ratio = given(body, field);
  if (ratio === undefined) return;
  const allowed = withImage && imageMode ? imageMode.values : values;
  if (typeof ratio === 'string' && allowed.includes(ratio)) return;
  if (typeof ratio === 'string' && imageMode?.values.includes(ratio)) {
    refuse(field, `${field} ${ratio} is only accepted for image-to-video (with image_urls)`);
  }
  refuse(field, `${field} must be one of ${allowed.join(', ')}`);
}

function checkResolution(body: Json, model: VideoModel, hasReferenceImage: boolean): void {
  const resolution = model.resolution;
  if (!resolution) return;
  const value = given(body, resolution.field);
  if (value !== undefined && (typeof value !== 'string' || !resolution.values.includes(value))) {
    refuse(resolution.field, `${resolution.field} must be one of ${resolution.values.join(', ')}`);
  }
  // The upstream's default counts too: a reference image with the default resolution must still work.
  const effective = typeof value === 'string' ? value : resolution.default;
  if (hasReferenceImage && effective !== null && resolution.notWithReference.includes(effective)) {
    refuse(resolution.field, `${effective} is not supported when a reference image is given`);
  }
}

function checkFlags(body: Json, model: VideoModel): void {
  const flags = [
    { field: 'generate_audio', accepted: model.generateAudio },
    { field: 'return_last_frame', accepted: model.returnLastFrame },
  ];
  for (const { field, accepted } of flags) {
    const value = given(body, field);
    if (accepted && value !== undefined && typeof value !== 'boolean') refuse(field, `${field} must be a boolean`);
  }
}

function checkSeed(body: Json, model: VideoModel): void {
  const range = model.seedParameter;
  const metadata = given(body, 'metadata');
  if (!range || metadata === undefined) return;
  if (!isObject(metadata)) refuse('metadata', 'metadata must be an object');
  const seed = metadata.seed;
  if (seed === undefined || seed === null) return;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < range.min || seed > range.max) {
    refuse('metadata.seed', `seed must be an integer between ${range.min} and ${range.max}`);
  }
}

/** Seed 003: HTTPS only, no internal network address, at most 2048 characters. */
function checkCallbackUrl(body: Json, model: VideoModel, policy: ValidationPolicy): void {
  const field = 'callback_url';
  const value = given(body, field);
  if (!model.callback || value === undefined) return;
  if (typeof value !== 'string') refuse(field, 'callback_url must be a string');
  if (value.length > MAX_CALLBACK_URL_LENGTH) refuse(field, `callback_url must not exceed ${MAX_CALLBACK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse(field, 'callback_url is not a URL');
  }
  const internal = isInternalHost(url.hostname);
  if (internal && !policy.allowInternalCallbacks) refuse(field, 'callbacks to internal network addresses are prohibited');
  // A loopback receiver in a test has no certificate: plain HTTP is let through only for the internal
  // hosts the test explicitly allowed, so the HTTPS rule still holds for every public host.
  const plainAllowed = internal && policy.allowInternalCallbacks && url.protocol === 'http:';
  if (url.protocol !== 'https:' && !plainAllowed) refuse(field, 'only HTTPS callback URLs are supported');
}
