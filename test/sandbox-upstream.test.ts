// The sandbox upstream behaves as the seed documents say: real HTTP on port 0, global fetch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSandboxServer, type SandboxOptions, type SandboxUpstream } from '../src/sandbox/sandbox-upstream.ts';
import { VIDEO_MODELS } from '../src/tasks/catalog.ts';
import type { VideoRequest } from '../src/tasks/video-request.ts';
import { ProviderDirectory, SANDBOX_API_KEY, SANDBOX_MOUNTS, sandboxAccounts } from '../src/upstream/providers.ts';
import { readTaskObject } from '../src/upstream/task-response.ts';
import { UpstreamClient } from '../src/upstream/upstream-client.ts';

type Json = Record<string, unknown>;

const KEY = SANDBOX_API_KEY;
const PATHS = {
  videos: `${SANDBOX_MOUNTS.toapis}/v1/videos/generations`,
  video: `${SANDBOX_MOUNTS.toapis}/v1/video/generations`,
  odkkk: `${SANDBOX_MOUNTS.odkkk}/v1/videos/generations`,
} as const;
const HOUR_MS = 3600_000;

/** mulberry32: the same ids and durations on every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A clock a test can move forward, for the parts of the seeds measured in hours. */
class TestClock {
  private offsetMs = 0;
  readonly now = (): number => Date.now() + this.offsetMs;
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

type Sandbox = Awaited<ReturnType<typeof startSandboxServer>>;

function sandboxFor(options: Partial<SandboxOptions> = {}): { get: () => Sandbox } {
  let sandbox: Sandbox | null = null;
  before(async () => {
    sandbox = await startSandboxServer({ apiKey: KEY, timeScale: 0.005, random: seededRandom(7), ...options });
  });
  after(async () => {
    await sandbox?.close();
  });
  return {
    get: () => {
      if (!sandbox) throw new Error('sandbox not started');
      return sandbox;
    },
  };
}

function post(url: string, body: unknown, key: string | null = KEY): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function get(url: string, key: string | null = KEY, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { headers: { ...headers, ...(key ? { authorization: `Bearer ${key}` } : {}) } });
}

async function json(response: Response): Promise<Json> {
  return (await response.json()) as Json;
}

async function createTask(sandbox: Sandbox, path: string, body: Json): Promise<Json> {
  const response = await post(sandbox.url + path, body);
  assert.equal(response.status, 200, JSON.stringify(await response.clone().json()));
  return json(response);
}

async function pollUntilFinished(url: string, timeoutMs = 5000): Promise<Json[]> {
  const seen: Json[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const task = await json(await get(url));
    seen.push(task);
    if (task.status === 'completed' || task.status === 'failed') return seen;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`task did not finish in ${timeoutMs} ms: ${JSON.stringify(seen.at(-1))}`);
}

async function eventually<T>(read: () => T | null, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function errorOf(body: Json): Json {
  assert.ok(typeof body.error === 'object' && body.error !== null, `no error object in ${JSON.stringify(body)}`);
  return body.error as Json;
}

/** Consecutive duplicates removed: the order in which statuses were seen. */
function statusSequence(tasks: Json[]): string[] {
  return tasks.map((t) => String(t.status)).filter((status, i, all) => status !== all[i - 1]);
}

describe('authentication', () => {
  const sandbox = sandboxFor();

  it('refuses a request without a bearer key with the seed 003 body', async () => {
    const response = await post(sandbox.get().url + PATHS.videos, { model: 'doubao-seedance-1-0-pro-fast', prompt: 'a cat' }, null);
    assert.equal(response.status, 401);
    assert.deepEqual(await json(response), {
      error: { code: 401, message: 'Invalid or expired token', type: 'authentication_error' },
    });
  });

  it('refuses a wrong key on queries too, and creates nothing', async () => {
    const response = await get(`${sandbox.get().url}${PATHS.odkkk}/task-unified-1-abcdefgh`, 'wrong-key');
    assert.equal(response.status, 401);
    assert.equal(errorOf(await json(response)).type, 'authentication_error');
    assert.equal(sandbox.get().sandbox.stats().submissions, 0);
  });
});

describe('task lifecycle', () => {
  const sandbox = sandboxFor();

  const cases = [
    { family: 'videos', path: PATHS.videos, idPattern: /^task_vid_[a-z0-9]{12}$/, words: ['queued', 'in_progress', 'completed'],
      body: { model: 'doubao-seedance-1-0-pro-fast', prompt: 'Sunset at the beach', duration: 5, aspect_ratio: '16:9', resolution: '720p' } },
    { family: 'video', path: PATHS.video, idPattern: /^tsk_vid_[a-z0-9]{12}$/, words: ['queued', 'in_progress', 'completed'],
      body: { model: 'seedance-2-fast', prompt: 'A calm sunrise over the ocean', duration: 4, ratio: '16:9' } },
    { family: 'odkkk-videos', path: PATHS.odkkk, idPattern: /^task-unified-\d{10}-[a-z0-9]{8}$/, words: ['pending', 'processing', 'completed'],
      body: { model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat playing piano', duration: 8 } },
  ];

  for (const { family, path, idPattern, words, body } of cases) {
    it(`runs a ${family} task from ${words[0]} to completed with a downloadable MP4`, async () => {
      const { url } = sandbox.get();
      const created = await createTask(sandbox.get(), path, body);
      assert.match(String(created.id), idPattern);
      assert.equal(created.status, words[0]);
      assert.equal(created.progress, 0);
      assert.equal(created.model, body.model);

      const polled = await pollUntilFinished(`${url}${path}/${encodeURIComponent(String(created.id))}`);
      assert.deepEqual(statusSequence([created, ...polled]), words);
      const progress = polled.map((t) => Number(t.progress));
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
      const final = polled.at(-1) ?? {};
      assert.equal(final.progress, 100);

      const task = readTaskObject(final);
      assert.equal(task.status, 'COMPLETED');
      assert.ok(task.videoUrl);
      assert.ok(task.videoUrl.startsWith(url + '/files/'), `video url ${task.videoUrl}`);
      assert.ok(task.completedAt && task.expiresAt);
      assert.equal((task.expiresAt.getTime() - task.completedAt.getTime()) / 1000, 24 * 3600);

      const video = await fetch(task.videoUrl);
      assert.equal(video.status, 200);
      assert.equal(video.headers.get('content-type'), 'video/mp4');
      const bytes = Buffer.from(await video.arrayBuffer());
      assert.equal(video.headers.get('content-length'), String(bytes.length));
      assert.ok(bytes.subarray(0, 16).includes('ftyp'), 'starts with an ftyp box');

      const part = await fetch(task.videoUrl, { headers: { range: 'bytes=0-99' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 0-99/${bytes.length}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(0, 100));
    });
  }

  it('shows odkkk task_info and usage, and cannot cancel a finished task', async () => {
    const created = await createTask(sandbox.get(), PATHS.odkkk, { model: 'doubao-seedance-1.0-pro-fast', prompt: 'waves', duration: 6 });
    assert.equal(created.object, 'video.generation.task');
    assert.equal(created.type, 'video');
    assert.deepEqual(created.usage, { billing_rule: 'per_call', credits_reserved: 6, user_group: 'default' });
    const info = created.task_info as Json;
    assert.equal(info.can_cancel, true);
    assert.equal(info.video_duration, 6);
    const polled = await pollUntilFinished(`${sandbox.get().url}${PATHS.odkkk}/${String(created.id)}`);
    const final = polled.at(-1) ?? {};
    assert.deepEqual(final.task_info, { can_cancel: false, estimated_time: 0, video_duration: 6 });
    assert.equal(typeof final.video_url, 'string');
  });

  it('returns the last frame of doubao-seedance-2.0 only when return_last_frame is true', async () => {
    const withFrame = await createTask(sandbox.get(), PATHS.video, { model: 'doubao-seedance-2.0', prompt: 'a kitten yawns', return_last_frame: true });
    const without = await createTask(sandbox.get(), PATHS.video, { model: 'doubao-seedance-2.0', prompt: 'a kitten sleeps' });
    const [framed, plain] = await Promise.all([withFrame, without].map(async (t) =>
      (await pollUntilFinished(`${sandbox.get().url}${PATHS.video}/${String(t.id)}`)).at(-1) ?? {}));
    const framedResult = framed?.result as Json;
    assert.equal(framedResult.type, 'video');
    assert.equal(typeof framedResult.video_url, 'string');
    const frame = await fetch(String(framedResult.last_frame_url));
    assert.equal(frame.status, 200);
    assert.equal(frame.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await frame.arrayBuffer()).subarray(1, 4), Buffer.from('PNG'));
    assert.equal((plain?.result as Json).last_frame_url, undefined);
  });

  it('answers 404 not_found_error for an unknown task id, and for an id asked on another family\'s path', async () => {
    const unknown = await get(`${sandbox.get().url}${PATHS.videos}/task_vid_doesnotexist`);
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(await json(unknown)).type, 'not_found_error');
    const created = await createTask(sandbox.get(), PATHS.video, { model: 'seedance-2', prompt: 'rain' });
    const elsewhere = await get(`${sandbox.get().url}${PATHS.videos}/${String(created.id)}`);
    assert.equal(elsewhere.status, 404);
  });
});

describe('result links', () => {
  const clock = new TestClock();
  const sandbox = sandboxFor({ now: clock.now });

  async function completedVideoUrl(): Promise<string> {
    const created = await createTask(sandbox.get(), PATHS.videos, { model: 'doubao-seedance-1-0-pro-quality', prompt: 'a lighthouse' });
    clock.advance(HOUR_MS);
    const task = readTaskObject(await json(await get(`${sandbox.get().url}${PATHS.videos}/${String(created.id)}`)));
    assert.equal(task.status, 'COMPLETED');
    assert.ok(task.videoUrl);
    return task.videoUrl;
  }

  it('serves HEAD with the length and no body', async () => {
    const response = await fetch(await completedVideoUrl(), { method: 'HEAD' });
    assert.equal(response.status, 200);
    assert.ok(Number(response.headers.get('content-length')) > 1000);
    assert.equal(response.headers.get('accept-ranges'), 'bytes');
  });

  it('refuses a link after its 24 hours with 403 permission_error', async () => {
    const videoUrl = await completedVideoUrl();
    assert.equal((await fetch(videoUrl)).status, 200);
    clock.advance(25 * HOUR_MS);
    const response = await fetch(videoUrl);
    assert.equal(response.status, 403);
    const error = errorOf(await json(response));
    assert.equal(error.type, 'permission_error');
    assert.match(String(error.message), /expired/);
  });

  it('refuses a link whose signature or expiry was altered', async () => {
    const videoUrl = new URL(await completedVideoUrl());
    const longer = new URL(videoUrl);
    longer.searchParams.set('expires', String(Number(videoUrl.searchParams.get('expires')) + 3600));
    const forged = new URL(videoUrl);
    forged.searchParams.set('sig', 'A'.repeat(43));
    for (const url of [longer, forged]) {
      const response = await fetch(url);
      assert.equal(response.status, 403);
      assert.equal(errorOf(await json(response)).type, 'permission_error');
    }
  });

  it('answers an unsatisfiable range with 416', async () => {
    const response = await fetch(await completedVideoUrl(), { headers: { range: 'bytes=999999-' } });
    assert.equal(response.status, 416);
    assert.match(String(response.headers.get('content-range')), /^bytes \*\/\d+$/);
  });
});

describe('validation of upstream bodies', () => {
  const sandbox = sandboxFor();
  const fast = { model: 'doubao-seedance-1-0-pro-fast', prompt: 'a cat' };
  const quality = { model: 'doubao-seedance-1-0-pro-quality', prompt: 'a cat' };
  const s2 = { model: 'seedance-2', prompt: 'a cat' };
  const multimodal = { model: 'doubao-seedance-2.0' };
  const odkkk = { model: 'doubao-seedance-1.0-pro-fast', prompt: 'a cat' };
  const img = 'https://example.com/cat.png';

  const refusals: { rule: string; path: string; body: unknown; status: number; type: string; param?: string }[] = [
    { rule: 'the body must be JSON', path: PATHS.videos, body: '{"model": ', status: 400, type: 'invalid_request_error' },
    { rule: 'the body must be an object', path: PATHS.videos, body: '[1,2]', status: 400, type: 'invalid_request_error' },
    { rule: 'model is required', path: PATHS.videos, body: { prompt: 'a cat' }, status: 400, type: 'invalid_request_error', param: 'model' },
    { rule: 'a model of another endpoint is not found', path: PATHS.videos, body: s2, status: 404, type: 'not_found_error', param: 'model' },
    { rule: 'prompt is required', path: PATHS.videos, body: { model: fast.model }, status: 400, type: 'invalid_request_error', param: 'prompt' },
    { rule: 'seed 002 needs a prompt for text-to-video', path: PATHS.video, body: { ...multimodal, generate_audio: true }, status: 400, type: 'invalid_request_error', param: 'prompt' },
    { rule: 'seed 003 prompts stop at 2000 characters', path: PATHS.odkkk, body: { ...odkkk, prompt: 'x'.repeat(2001) }, status: 400, type: 'invalid_request_error', param: 'prompt' },
    { rule: 'duration must be in the model range', path: PATHS.videos, body: { ...fast, duration: 13 }, status: 400, type: 'invalid_request_error', param: 'duration' },
    { rule: 'seedance-2 durations start at 4', path: PATHS.video, body: { ...s2, duration: 3 }, status: 400, type: 'invalid_request_error', param: 'duration' },
    { rule: 'duration must be an integer', path: PATHS.odkkk, body: { ...odkkk, duration: 5.5 }, status: 400, type: 'invalid_request_error', param: 'duration' },
    { rule: 'aspect_ratio must be a listed value', path: PATHS.videos, body: { ...fast, aspect_ratio: '2:1' }, status: 400, type: 'invalid_request_error', param: 'aspect_ratio' },
    { rule: 'seedance-2 takes four ratios', path: PATHS.video, body: { ...s2, ratio: '21:9' }, status: 400, type: 'invalid_request_error', param: 'ratio' },
    { rule: 'seedance-2 takes `ratio`, not `aspect_ratio`', path: PATHS.video, body: { ...s2, aspect_ratio: '16:9' }, status: 400, type: 'invalid_request_error', param: 'aspect_ratio' },
    { rule: 'seed 003 keeps `adaptive` for image-to-video', path: PATHS.odkkk, body: { ...odkkk, aspect_ratio: 'adaptive' }, status: 400, type: 'invalid_request_error', param: 'aspect_ratio' },
    { rule: 'resolution must be a listed value', path: PATHS.videos, body: { ...fast, resolution: '4k' }, status: 400, type: 'invalid_request_error', param: 'resolution' },
    { rule: 'seed 003 calls it quality', path: PATHS.odkkk, body: { ...odkkk, quality: '2k' }, status: 400, type: 'invalid_request_error', param: 'quality' },
    { rule: 'image_urls and image_with_roles not together', path: PATHS.videos,
      body: { ...fast, image_urls: [img], image_with_roles: [{ url: img, role: 'reference' }] }, status: 400, type: 'invalid_request_error', param: 'image_with_roles' },
    { rule: 'one image per role', path: PATHS.videos,
      body: { ...quality, image_with_roles: [{ url: img, role: 'first_frame' }, { url: img, role: 'first_frame' }] }, status: 400, type: 'invalid_request_error', param: 'image_with_roles' },
    { rule: 'last_frame only on the quality model', path: PATHS.videos,
      body: { ...fast, image_with_roles: [{ url: img, role: 'first_frame' }, { url: img, role: 'last_frame' }] }, status: 400, type: 'invalid_request_error', param: 'image_with_roles' },
    { rule: 'no 1080p with a reference image', path: PATHS.videos,
      body: { ...quality, resolution: '1080p', image_with_roles: [{ url: img, role: 'reference' }] }, status: 400, type: 'invalid_request_error', param: 'resolution' },
    { rule: 'images are http(s) URLs', path: PATHS.videos, body: { ...fast, image_urls: ['ftp://example.com/cat.png'] }, status: 400, type: 'invalid_request_error', param: 'image_urls' },
    { rule: 'base64 images are no longer accepted', path: PATHS.videos, body: { ...fast, image_urls: ['data:image/png;base64,iVBORw0KGgo='] }, status: 400, type: 'invalid_request_error', param: 'image_urls' },
    { rule: 'asset:// only on seedance-2 models', path: PATHS.videos, body: { ...fast, image_urls: ['asset://asset_img_01'] }, status: 400, type: 'invalid_request_error', param: 'image_urls' },
    { rule: 'seed 003 takes one image', path: PATHS.odkkk, body: { ...odkkk, image_urls: [img, img] }, status: 400, type: 'invalid_request_error', param: 'image_urls' },
    { rule: 'seed 000 seeds stay in range', path: PATHS.videos, body: { ...fast, metadata: { seed: 2 ** 32 } }, status: 400, type: 'invalid_request_error', param: 'metadata.seed' },
    { rule: 'callbacks are HTTPS only', path: PATHS.odkkk, body: { ...odkkk, callback_url: 'http://example.com/hook' }, status: 400, type: 'invalid_request_error', param: 'callback_url' },
    { rule: 'no callbacks to loopback', path: PATHS.odkkk, body: { ...odkkk, callback_url: 'https://127.0.0.1/hook' }, status: 400, type: 'invalid_request_error', param: 'callback_url' },
    { rule: 'no callbacks to private networks', path: PATHS.odkkk, body: { ...odkkk, callback_url: 'https://172.20.1.1/hook' }, status: 400, type: 'invalid_request_error', param: 'callback_url' },
    { rule: 'no callbacks to localhost by name', path: PATHS.odkkk, body: { ...odkkk, callback_url: 'https://localhost:8443/hook' }, status: 400, type: 'invalid_request_error', param: 'callback_url' },
    { rule: 'callback URLs stop at 2048 characters', path: PATHS.odkkk,
      body: { ...odkkk, callback_url: `https://example.com/${'a'.repeat(2048)}` }, status: 400, type: 'invalid_request_error', param: 'callback_url' },
    { rule: 'toapis models take no callback', path: PATHS.videos, body: { ...fast, callback_url: 'https://example.com/hook' }, status: 400, type: 'invalid_request_error', param: 'callback_url' },
  ];

  for (const { rule, path, body, status, type, param } of refusals) {
    it(`refuses: ${rule}`, async () => {
      const response = await post(sandbox.get().url + path, body);
      const error = errorOf(await json(response));
      assert.equal(response.status, status);
      assert.equal(error.code, status);
      assert.equal(error.type, type);
      assert.equal(error.param, param);
      assert.equal(typeof error.message, 'string');
    });
  }

  it('suggests a served model when the model is not found (seed 003 example)', async () => {
    const error = errorOf(await json(await post(sandbox.get().url + PATHS.odkkk, { ...odkkk, model: 'no-such-model' })));
    assert.equal(error.fallback_suggestion, 'doubao-seedance-1.0-pro-fast');
  });

  it('refuses a body over 1 MB with 413 request_too_large_error', async () => {
    const response = await post(sandbox.get().url + PATHS.odkkk, { ...odkkk, prompt: 'x'.repeat(1024 * 1024 + 10) });
    assert.equal(response.status, 413);
    assert.deepEqual(errorOf(await json(response)), {
      code: 413, message: 'Request body too large', type: 'request_too_large_error', fallback_suggestion: 'reduce prompt length',
    });
  });

  const accepted: { rule: string; path: string; body: Json }[] = [
    { rule: 'seed 002 without a prompt when media are referenced', path: PATHS.video,
      body: { ...multimodal, video_urls: ['https://example.com/ref.mp4'], audio_urls: ['https://example.com/a.wav'], size: '16:9', duration: 11 } },
    { rule: 'seed 003 adaptive ratio with an image', path: PATHS.odkkk, body: { ...odkkk, image_urls: [img], aspect_ratio: 'adaptive', quality: '720p' } },
    { rule: 'first and last frame on the quality model', path: PATHS.videos,
      body: { ...quality, image_with_roles: [{ url: img, role: 'first_frame' }, { url: 'https://example.com/end.png', role: 'last_frame' }] } },
    { rule: 'a reference image at the default resolution', path: PATHS.videos, body: { ...fast, image_with_roles: [{ url: img, role: 'reference' }] } },
    { rule: 'asset:// references on seedance-2', path: PATHS.video,
      body: { ...s2, image_with_roles: [{ url: 'asset://asset_img_01', role: 'reference_image' }],
        video_with_roles: [{ url: 'asset://asset_vid_01', role: 'reference_video' }], audio_with_roles: [{ url: 'asset://asset_aud_01', role: 'reference_audio' }] } },
    { rule: 'a seed in metadata', path: PATHS.videos, body: { ...fast, metadata: { seed: -1 } } },
    { rule: 'an HTTPS public callback', path: PATHS.odkkk, body: { ...odkkk, callback_url: 'https://example.com/webhooks/video' } },
  ];

  for (const { rule, path, body } of accepted) {
    it(`accepts: ${rule}`, async () => {
      const created = await createTask(sandbox.get(), path, body);
      assert.equal(created.model, body.model);
      const recorded = sandbox.get().sandbox.tasks().find((t) => t.id === created.id);
      assert.deepEqual(recorded?.body, body);
    });
  }

  it('creates no task for a refused body', () => {
    assert.equal(sandbox.get().sandbox.stats().submissions, accepted.length);
  });
});

describe('fault switches', () => {
  const sandbox = sandboxFor();
  const body = { model: 'doubao-seedance-1-0-pro-fast', prompt: 'a cat' };

  it('answers a queued 429 burst with Retry-After, then succeeds', async () => {
    const { url, sandbox: upstream } = sandbox.get();
    const before = upstream.stats().submissions;
    upstream.queueErrors('create', 429, 2, 7);
    for (let i = 0; i < 2; i++) {
      const response = await post(url + PATHS.videos, body);
      assert.equal(response.status, 429);
      assert.equal(response.headers.get('retry-after'), '7');
      assert.deepEqual(errorOf(await json(response)), {
        code: 429, message: 'Rate limit exceeded', type: 'rate_limit_error', fallback_suggestion: 'retry after 7 seconds',
      });
    }
    assert.equal((await post(url + PATHS.videos, body)).status, 200);
    assert.equal(upstream.stats().submissions, before + 1);
    assert.equal(upstream.stats().byStatus['429'], 2);
  });

  it('defaults a 429 to Retry-After 60 and leaves other kinds alone', async () => {
    const { url, sandbox: upstream } = sandbox.get();
    const created = await createTask(sandbox.get(), PATHS.videos, body);
    upstream.queueErrors('create', 429, 1);
    assert.equal((await get(`${url}${PATHS.videos}/${String(created.id)}`)).status, 200);
    const response = await post(url + PATHS.videos, body);
    assert.equal(response.status, 429);
    assert.equal(response.headers.get('retry-after'), '60');
  });

  it('drops the connection without answering, and creates no task', async () => {
    const { url, sandbox: upstream } = sandbox.get();
    const before = upstream.stats().submissions;
    upstream.setFaults({ dropRate: 1 });
    try {
      await assert.rejects(post(url + PATHS.videos, body));
    } finally {
      upstream.setFaults({ dropRate: 0 });
    }
    assert.equal(upstream.stats().submissions, before);
  });

  it('answers 200 with a body that is not JSON, and does create the task', async () => {
    const { url, sandbox: upstream } = sandbox.get();
    const before = upstream.stats().submissions;
    upstream.setFaults({ malformedRate: 1 });
    let text: string;
    try {
      const response = await post(url + PATHS.odkkk, { model: 'doubao-seedance-1.0-pro-fast', prompt: 'malformed' });
      assert.equal(response.status, 200);
      text = await response.text();
    } finally {
      upstream.setFaults({ malformedRate: 0 });
    }
    assert.throws(() => JSON.parse(text));
    assert.equal(upstream.stats().submissions, before + 1);
    assert.equal(upstream.tasks().at(-1)?.body.prompt, 'malformed');
  });

  it('answers errors at the configured rate from the configured statuses, creating nothing', async () => {
    const { url, sandbox: upstream } = sandbox.get();
    const before = upstream.stats().submissions;
    upstream.setFaults({ errorRate: { create: 1, query: 0, media: 0 }, errorStatuses: [503] });
    try {
      const response = await post(url + PATHS.videos, body);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get('retry-after'), '30');
      assert.equal(errorOf(await json(response)).fallback_suggestion, 'retry after 30 seconds');
    } finally {
      upstream.setFaults({ errorRate: { create: 0, query: 0, media: 0 }, errorStatuses: [500, 502, 503] });
    }
    assert.equal(upstream.stats().submissions, before);
  });

  it('adds latency before answering', async () => {
    const { url, sandbox: upstream } = sandbox.get();
    upstream.setFaults({ latencyMs: 120 });
    const started = performance.now();
    try {
      assert.equal((await post(url + PATHS.videos, body)).status, 200);
    } finally {
      upstream.setFaults({ latencyMs: 0 });
    }
    assert.ok(performance.now() - started >= 110);
  });

  it('fails a task when failRate picks it, or when the prompt says [sandbox:fail]', async () => {
    const { url, sandbox: upstream } = sandbox.get();
    upstream.setFaults({ failRate: 1 });
    const picked = await createTask(sandbox.get(), PATHS.videos, body).finally(() => upstream.setFaults({ failRate: 0 }));
    const marked = await createTask(sandbox.get(), PATHS.odkkk, { model: 'doubao-seedance-1.0-pro-fast', prompt: 'a dog [sandbox:fail]' });
    const finals = await Promise.all([
      pollUntilFinished(`${url}${PATHS.videos}/${String(picked.id)}`),
      pollUntilFinished(`${url}${PATHS.odkkk}/${String(marked.id)}`),
    ]);
    for (const polled of finals) {
      const task = readTaskObject(polled.at(-1));
      assert.equal(task.status, 'FAILED');
      assert.equal(task.videoUrl, null);
      assert.equal(task.error?.code, 'generation_failed');
      assert.equal(task.error?.type, 'upstream_error');
    }
    assert.deepEqual(upstream.tasks().filter((t) => t.outcome === 'failed').map((t) => t.id), [picked.id, marked.id]);
  });
});

describe('seed 003 callbacks', () => {
  const clock = new TestClock();
  const sandbox = sandboxFor({ now: clock.now, allowInternalCallbacks: true, timeScale: 0.01 });
  let receiver: Server;
  let receiverUrl = '';
  const received: { body: Json; at: number }[] = [];
  let answerWith = [500, 200];
  let notify: () => void = () => {};

  before(async () => {
    receiver = createServer((req: IncomingMessage, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => { text += chunk; });
      req.on('end', () => {
        received.push({ body: JSON.parse(text) as Json, at: performance.now() });
        res.writeHead(answerWith[received.length - 1] ?? 200).end();
        notify();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  after(async () => {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  function callsReach(count: number, timeoutMs = 3000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} callback(s) arrived`)), timeoutMs);
      notify = () => {
        if (received.length < count) return;
        clearTimeout(timer);
        resolve();
      };
      notify();
    });
  }

  it('posts the finished task to callback_url, retrying after a 500', async () => {
    answerWith = [500, 200];
    const created = await createTask(sandbox.get(), PATHS.odkkk, { model: 'doubao-seedance-1.0-pro-fast', prompt: 'callback', callback_url: receiverUrl });
    assert.equal(received.length, 0, 'nothing is sent before the task ends');
    clock.advance(HOUR_MS);
    await callsReach(2);
    const [first, second] = received;
    assert.ok(first && second);
    assert.deepEqual(second.body, first.body, 'a retry sends the same task object');
    assert.equal(second.body.id, created.id);
    assert.equal(second.body.object, 'video.generation.task');
    const task = readTaskObject(second.body);
    assert.equal(task.status, 'COMPLETED');
    assert.ok(task.videoUrl?.includes('/files/'));
    // 1 s scaled by timeScale 0.01.
    assert.ok(second.at - first.at >= 9, `retried after ${second.at - first.at} ms`);
    // The receiver answers before the sandbox has recorded the outcome of its request.
    const attempts = await eventually(() => {
      const log = sandbox.get().sandbox.report().callbacks as { status: number }[];
      return log.length === 2 ? log : null;
    });
    assert.deepEqual(attempts.map((a) => a.status), [500, 200]);
  });

  it('stops after three retries when the receiver keeps failing', async () => {
    received.length = 0;
    answerWith = [500, 502, 503, 500, 200];
    await createTask(sandbox.get(), PATHS.odkkk, { model: 'doubao-seedance-1.0-pro-fast', prompt: 'always failing [sandbox:fail]', callback_url: receiverUrl });
    clock.advance(HOUR_MS);
    await callsReach(4);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(received.length, 4, 'one attempt and three retries');
    assert.equal(received[0]?.body.status, 'failed');
  });
});

describe('control routes', () => {
  const sandbox = sandboxFor();
  const body = { model: 'seedance-2', prompt: 'control' };

  it('sets faults over HTTP', async () => {
    const { url } = sandbox.get();
    const created = await createTask(sandbox.get(), PATHS.video, body);
    const set = await post(`${url}/_control/faults`, { errorRate: { query: 1 }, errorStatuses: [502] }, null);
    assert.equal(set.status, 200);
    const response = await get(`${url}${PATHS.video}/${String(created.id)}`);
    await post(`${url}/_control/faults`, { errorRate: { query: 0 } }, null);
    assert.equal(response.status, 502);
    assert.deepEqual(errorOf(await json(response)), {
      code: 502, message: 'Upstream AI service unavailable', type: 'upstream_error', fallback_suggestion: 'try different model',
    });
    assert.equal((await get(`${url}${PATHS.video}/${String(created.id)}`)).status, 200);
  });

  it('queues errors over HTTP', async () => {
    const { url } = sandbox.get();
    const queued = await post(`${url}/_control/errors`, { kind: 'any', status: 503, count: 1 }, null);
    assert.equal(queued.status, 200);
    const response = await post(url + PATHS.video, body);
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '30');
    assert.equal((await post(url + PATHS.video, body)).status, 200);
  });

  it('refuses a control body it cannot read', async () => {
    const response = await post(`${sandbox.get().url}/_control/faults`, { dropRate: 2 }, null);
    assert.equal(response.status, 400);
  });

  it('reports counters and the tasks with their exact bodies', async () => {
    const report = await json(await get(`${sandbox.get().url}/_control/stats`, null));
    const requests = report.requests as Json;
    assert.equal(requests.create, 3);
    assert.equal(requests.query, 2);
    assert.ok(Number(requests.control) >= 4);
    assert.equal(report.submissions, 2);
    assert.deepEqual(report.byStatus, { 200: 3, 502: 1, 503: 1 });
    const tasks = report.tasks as Json[];
    assert.deepEqual(tasks.map((t) => [t.model, t.provider, t.body]), [['seedance-2', 'toapis', body], ['seedance-2', 'toapis', body]]);
  });
});

describe('mounting under a base path', () => {
  const sandbox = sandboxFor({ basePath: '/sandbox/' });

  it('serves below the base path and leaves other paths to the next handler', async () => {
    const { url } = sandbox.get();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/sandbox$/);
    const created = await createTask(sandbox.get(), PATHS.videos, { model: 'doubao-seedance-1-0-pro-fast', prompt: 'mounted' });
    assert.ok(created.id);
    const outside = await post(url.replace(/\/sandbox$/, '') + PATHS.videos, { model: 'doubao-seedance-1-0-pro-fast', prompt: 'outside' });
    assert.equal(outside.status, 404);
    assert.equal(sandbox.get().sandbox.stats().submissions, 1);
  });
});

describe('contract with our upstream client', () => {
  const sandbox = sandboxFor();

  function requestFor(modelId: string): VideoRequest {
    const model = VIDEO_MODELS.find((m) => m.id === modelId);
    assert.ok(model);
    return {
      model: model.id,
      prompt: 'A calm sunrise over the ocean',
      duration: model.duration.default,
      aspectRatio: model.aspectRatio.default,
      resolution: model.resolution?.default ?? null,
      imageUrls: model.imageUrls ? ['https://example.com/first.png'] : [],
      images: [],
      videos: model.referenceVideos ? ['https://example.com/ref.mp4'] : [],
      audios: model.referenceAudios ? ['https://example.com/ref.wav'] : [],
      generateAudio: model.generateAudio,
      returnLastFrame: model.returnLastFrame,
      seed: model.seedParameter ? 42 : null,
    };
  }

  for (const model of VIDEO_MODELS) {
    it(`accepts the body our client builds for ${model.id}, and the client reads the task back`, async () => {
      const directory = new ProviderDirectory(sandboxAccounts(sandbox.get().url));
      const route = directory.route(model.id);
      assert.ok(route, `no sandbox route for ${model.id}`);
      const client = new UpstreamClient({ timeoutMs: 5000 });
      try {
        const request = requestFor(model.id);
        const submitted = await client.submit(route, request, model.callback ? { callbackUrl: 'https://example.com/hook' } : {});
        assert.equal(submitted.status, 'QUEUED');
        const recorded = sandbox.get().sandbox.tasks().find((t) => t.id === submitted.upstreamTaskId);
        assert.deepEqual(recorded?.body, route.adapter.buildCreateBody(model, request, model.callback ? { callbackUrl: 'https://example.com/hook' } : {}));
        const fetched = await client.fetchTask(route, submitted.upstreamTaskId);
        assert.equal(fetched.upstreamTaskId, submitted.upstreamTaskId);
      } finally {
        await client.close();
      }
    });
  }
});
