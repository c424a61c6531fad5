// Contract tests: the exact bodies each model sends, the paths each family uses, and every response
// and error form the seeds document, read into one shape. The seeds (../shared/seeds) are the truth;
// where a body below is a seed's own example, the test says so.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { VIDEO_MODELS, findVideoModel, type VideoModel } from '../src/tasks/catalog.ts';
import { validateCreateVideoTask, type CreateVideoTaskInput } from '../src/tasks/validation.ts';
import type { VideoRequest } from '../src/tasks/video-request.ts';
import { UpstreamProtocolError } from '../src/upstream/errors.ts';
import { ENDPOINT_FAMILIES } from '../src/upstream/families.ts';
import {
  ProviderDirectory, SANDBOX_API_KEY, SANDBOX_PROVIDER, configuredAccounts, sandboxAccounts, type ProviderAccount,
} from '../src/upstream/providers.ts';
import { inputFieldForParam } from '../src/upstream/request-body.ts';
import { readErrorBody, readTaskObject } from '../src/upstream/task-response.ts';
import type { UpstreamTask } from '../src/upstream/types.ts';
import { retryAfterSeconds } from '../src/upstream/upstream-client.ts';

const PROMPT = 'Sunset at the beach, golden sunlight on the sea, waves gently hitting the sand';

function accepted(input: CreateVideoTaskInput): { model: VideoModel; request: VideoRequest } {
  const result = validateCreateVideoTask(input);
  if (!result.ok) return assert.fail(`input refused: ${JSON.stringify(result.errors)}`);
  return { model: result.model, request: result.request };
}

/** The body the model's family adapter sends for a validated input. */
function createBody(input: CreateVideoTaskInput, options: { callbackUrl?: string } = {}): Record<string, unknown> {
  const { model, request } = accepted(input);
  return ENDPOINT_FAMILIES[model.family].buildCreateBody(model, request, options);
}

function modelById(id: string): VideoModel {
  return findVideoModel(id) ?? assert.fail(`no model ${id}`);
}

/** An UpstreamTask with nothing known but id and status; tests spread what a response adds. */
function task(fields: Partial<UpstreamTask> & Pick<UpstreamTask, 'upstreamTaskId' | 'status' | 'statusWord'>): UpstreamTask {
  return {
    progress: null, createdAt: null, completedAt: null, expiresAt: null, videoUrl: null, lastFrameUrl: null,
    error: null, taskInfo: null, usage: null, ...fields,
  };
}

describe('request bodies of Seedance 1.0 Pro (seed 000, family `videos`)', () => {
  it('applies duration 5, aspect_ratio 16:9 and resolution 720p by default (the seed\'s own cURL example)', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-1-0-pro-fast', prompt: PROMPT }), {
      model: 'doubao-seedance-1-0-pro-fast',
      prompt: PROMPT,
      duration: 5,
      aspect_ratio: '16:9',
      resolution: '720p',
    });
  });

  it('applies the same defaults to the quality model', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-1-0-pro-quality', prompt: 'A cat' }), {
      model: 'doubao-seedance-1-0-pro-quality', prompt: 'A cat', duration: 5, aspect_ratio: '16:9', resolution: '720p',
    });
  });

  it('sends the given duration, ratio and resolution, and the seed as metadata.seed', () => {
    assert.deepEqual(createBody({
      model: 'doubao-seedance-1-0-pro-quality', prompt: 'A dancer', duration: 10, aspectRatio: '9:16', resolution: '1080p', seed: 42,
    }), {
      model: 'doubao-seedance-1-0-pro-quality',
      prompt: 'A dancer',
      duration: 10,
      aspect_ratio: '9:16',
      resolution: '1080p',
      metadata: { seed: 42 },
    });
  });

  it('sends a seed of 0 and of -1 (falsy or negative seeds are still seeds)', () => {
    for (const seed of [0, -1]) {
      assert.deepEqual(createBody({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', seed }).metadata, { seed });
    }
  });

  it('leaves metadata out when no seed is given', () => {
    assert.equal('metadata' in createBody({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x' }), false);
  });

  it('sends a first-frame image as image_urls', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'A cat', imageUrls: ['https://example.com/cat.png'] }), {
      model: 'doubao-seedance-1-0-pro-fast', prompt: 'A cat', duration: 5, aspect_ratio: '16:9', resolution: '720p',
      image_urls: ['https://example.com/cat.png'],
    });
  });

  it('sends first and last frame as image_with_roles with the words first_frame and last_frame (the seed\'s example)', () => {
    assert.deepEqual(createBody({
      model: 'doubao-seedance-1-0-pro-quality',
      prompt: 'Dynamic transition',
      images: [
        { url: 'https://example.com/start.png', role: 'FIRST_FRAME' },
        { url: 'https://example.com/end.png', role: 'LAST_FRAME' },
      ],
    }), {
      model: 'doubao-seedance-1-0-pro-quality', prompt: 'Dynamic transition', duration: 5, aspect_ratio: '16:9', resolution: '720p',
      image_with_roles: [
        { url: 'https://example.com/start.png', role: 'first_frame' },
        { url: 'https://example.com/end.png', role: 'last_frame' },
      ],
    });
  });

  it('sends a reference image with the upstream role word `reference`', () => {
    assert.deepEqual(createBody({
      model: 'doubao-seedance-1-0-pro-fast', prompt: 'In this style', resolution: '480p',
      images: [{ url: 'https://example.com/style.png', role: 'REFERENCE' }],
    }), {
      model: 'doubao-seedance-1-0-pro-fast', prompt: 'In this style', duration: 5, aspect_ratio: '16:9', resolution: '480p',
      image_with_roles: [{ url: 'https://example.com/style.png', role: 'reference' }],
    });
  });

  it('never sends callback_url, even when a callback URL is offered', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x' }, { callbackUrl: 'https://hooks.example/cb' }), {
      model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', duration: 5, aspect_ratio: '16:9', resolution: '720p',
    });
  });
});

describe('request bodies of Seedance 2 (seed 001, family `video`)', () => {
  it('sends the ratio as `ratio` (the seed\'s own cURL example)', () => {
    const prompt = 'A calm sunrise over the ocean, with gentle waves and cinematic lighting.';
    assert.deepEqual(createBody({ model: 'seedance-2', prompt, duration: 10, aspectRatio: '16:9' }), {
      model: 'seedance-2', prompt, duration: 10, ratio: '16:9',
    });
  });

  it('applies duration 5 and ratio 16:9 by default, with no resolution field', () => {
    assert.deepEqual(createBody({ model: 'seedance-2-fast', prompt: 'x' }), {
      model: 'seedance-2-fast', prompt: 'x', duration: 5, ratio: '16:9',
    });
  });

  it('sends a first-frame image as image_urls', () => {
    assert.deepEqual(createBody({ model: 'seedance-2', prompt: 'x', aspectRatio: '9:16', imageUrls: ['https://example.com/a.webp'] }), {
      model: 'seedance-2', prompt: 'x', duration: 5, ratio: '9:16', image_urls: ['https://example.com/a.webp'],
    });
  });

  it('sends images with the upstream role words first_frame, last_frame and reference_image', () => {
    assert.deepEqual(createBody({
      model: 'seedance-2', prompt: 'x',
      images: [
        { url: 'https://example.com/1.png', role: 'FIRST_FRAME' },
        { url: 'https://example.com/2.png', role: 'LAST_FRAME' },
        { url: 'https://example.com/3.png', role: 'REFERENCE' },
      ],
    }).image_with_roles, [
      { url: 'https://example.com/1.png', role: 'first_frame' },
      { url: 'https://example.com/2.png', role: 'last_frame' },
      { url: 'https://example.com/3.png', role: 'reference_image' },
    ]);
  });

  it('passes asset:// URLs through and sends video and audio references with roles (the seed\'s example)', () => {
    const prompt = 'Keep the character from image 1, follow the camera movement of video 1, and match the rhythm of audio 1.';
    assert.deepEqual(createBody({
      model: 'seedance-2',
      prompt,
      images: [{ url: 'asset://asset_img_01KXXXXXXX', role: 'REFERENCE' }],
      videos: ['asset://asset_vid_01KXXXXXXX'],
      audios: ['asset://asset_aud_01KXXXXXXX'],
    }), {
      model: 'seedance-2',
      prompt,
      duration: 5,
      ratio: '16:9',
      image_with_roles: [{ url: 'asset://asset_img_01KXXXXXXX', role: 'reference_image' }],
      video_with_roles: [{ url: 'asset://asset_vid_01KXXXXXXX', role: 'reference_video' }],
      audio_with_roles: [{ url: 'asset://asset_aud_01KXXXXXXX', role: 'reference_audio' }],
    });
  });

  it('never sends generate_audio, return_last_frame or callback_url', () => {
    const body = createBody({ model: 'seedance-2', prompt: 'x', generateAudio: false, returnLastFrame: false }, { callbackUrl: 'https://hooks.example/cb' });
    assert.deepEqual(body, { model: 'seedance-2', prompt: 'x', duration: 5, ratio: '16:9' });
  });
});

describe('request bodies of Seedance 2.0 multimodal (seed 002, family `video`)', () => {
  it('sends image_urls, and no size when none is given (the seed\'s image example)', () => {
    assert.deepEqual(createBody({
      model: 'doubao-seedance-2.0', prompt: 'The kitten stands up and walks toward the camera',
      imageUrls: ['https://example.com/cat.jpg'], duration: 5,
    }), {
      model: 'doubao-seedance-2.0',
      prompt: 'The kitten stands up and walks toward the camera',
      image_urls: ['https://example.com/cat.jpg'],
      duration: 5,
    });
  });

  it('sends the ratio as `size` when given, and references as video_urls and audio_urls (the seed\'s example)', () => {
    assert.deepEqual(createBody({
      model: 'doubao-seedance-2.0', prompt: 'A scene of a person speaking',
      videos: ['https://example.com/reference.mp4'], audios: ['https://example.com/speech.wav'], aspectRatio: '16:9', duration: 11,
    }), {
      model: 'doubao-seedance-2.0',
      prompt: 'A scene of a person speaking',
      video_urls: ['https://example.com/reference.mp4'],
      audio_urls: ['https://example.com/speech.wav'],
      size: '16:9',
      duration: 11,
    });
  });

  it('sends generate_audio true when asked, with duration 5 by default (the seed\'s audio example)', () => {
    const prompt = 'A man stops a woman and says: "Remember, you must never point your finger at the moon."';
    assert.deepEqual(createBody({ model: 'doubao-seedance-2.0', prompt, generateAudio: true }), {
      model: 'doubao-seedance-2.0', prompt, duration: 5, generate_audio: true,
    });
  });

  it('sends return_last_frame true when asked', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-2.0', prompt: 'x', returnLastFrame: true }), {
      model: 'doubao-seedance-2.0', prompt: 'x', duration: 5, return_last_frame: true,
    });
  });

  it('sends several numbered images with video, audio, generated audio and size together (the seed\'s case 9)', () => {
    assert.deepEqual(createBody({
      model: 'doubao-seedance-2.0', prompt: 'First-person POV fruit tea advertisement.',
      imageUrls: ['https://example.com/tea_pic1.jpg', 'https://example.com/tea_pic2.jpg'],
      videos: ['https://example.com/tea_video1.mp4'], audios: ['https://example.com/tea_audio1.mp3'],
      generateAudio: true, aspectRatio: '16:9', duration: 11,
    }), {
      model: 'doubao-seedance-2.0',
      prompt: 'First-person POV fruit tea advertisement.',
      image_urls: ['https://example.com/tea_pic1.jpg', 'https://example.com/tea_pic2.jpg'],
      video_urls: ['https://example.com/tea_video1.mp4'],
      audio_urls: ['https://example.com/tea_audio1.mp3'],
      generate_audio: true,
      size: '16:9',
      duration: 11,
    });
  });

  it('leaves the prompt out when the media carry the request', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-2.0', imageUrls: ['https://example.com/cat.jpg'] }), {
      model: 'doubao-seedance-2.0', duration: 5, image_urls: ['https://example.com/cat.jpg'],
    });
  });
});

describe('request bodies of Seedance 1.0 Pro Fast on the second provider (seed 003, family `odkkk-videos`)', () => {
  it('applies duration 5, aspect_ratio 16:9 and quality 1080p to text-to-video', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat playing piano' }), {
      model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat playing piano', duration: 5, aspect_ratio: '16:9', quality: '1080p',
    });
  });

  it('applies aspect_ratio adaptive to image-to-video', () => {
    assert.deepEqual(createBody({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat', imageUrls: ['https://example.com/image.jpg'] }), {
      model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat', duration: 5, aspect_ratio: 'adaptive', quality: '1080p',
      image_urls: ['https://example.com/image.jpg'],
    });
  });

  it('sends the given resolution as `quality` and keep_ratio with an image', () => {
    assert.deepEqual(createBody({
      model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat', duration: 12, resolution: '480p', aspectRatio: 'keep_ratio',
      imageUrls: ['https://example.com/image.jpg'],
    }), {
      model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat', duration: 12, aspect_ratio: 'keep_ratio', quality: '480p',
      image_urls: ['https://example.com/image.jpg'],
    });
  });

  it('sends callback_url only when a callback URL is passed', () => {
    const input = { model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat' };
    assert.deepEqual(createBody(input, { callbackUrl: 'https://your-domain.com/webhooks/video-task-completed' }), {
      model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat', duration: 5, aspect_ratio: '16:9', quality: '1080p',
      callback_url: 'https://your-domain.com/webhooks/video-task-completed',
    });
    assert.equal('callback_url' in createBody(input, {}), false);
  });
});

describe('endpoint families and their paths', () => {
  it('reaches each model through the family its seed documents', () => {
    assert.deepEqual(Object.fromEntries(VIDEO_MODELS.map((m) => [m.id, m.family])), {
      'doubao-seedance-1-0-pro-fast': 'videos',
      'doubao-seedance-1-0-pro-quality': 'videos',
      'seedance-2': 'video',
      'seedance-2-fast': 'video',
      'doubao-seedance-2.0': 'video',
      'doubao-seedance-1.0-pro-fast': 'odkkk-videos',
    });
  });

  it('creates on /v1/videos/generations and reads tasks below it (seed 000)', () => {
    assert.equal(ENDPOINT_FAMILIES.videos.family, 'videos');
    assert.equal(ENDPOINT_FAMILIES.videos.createPath, '/v1/videos/generations');
    assert.equal(ENDPOINT_FAMILIES.videos.taskPath('task_vid_xyz789ghi012'), '/v1/videos/generations/task_vid_xyz789ghi012');
  });

  it('creates on the singular /v1/video/generations and reads tasks below it (seed 001)', () => {
    assert.equal(ENDPOINT_FAMILIES.video.family, 'video');
    assert.equal(ENDPOINT_FAMILIES.video.createPath, '/v1/video/generations');
    assert.equal(ENDPOINT_FAMILIES.video.taskPath('tsk_vid_xxx'), '/v1/video/generations/tsk_vid_xxx');
  });

  it('creates on /v1/videos/generations and assumes the task detail below it (seed 003)', () => {
    assert.equal(ENDPOINT_FAMILIES['odkkk-videos'].family, 'odkkk-videos');
    assert.equal(ENDPOINT_FAMILIES['odkkk-videos'].createPath, '/v1/videos/generations');
    assert.equal(ENDPOINT_FAMILIES['odkkk-videos'].taskPath('task-unified-1761313744-vux2jw0k'),
      '/v1/videos/generations/task-unified-1761313744-vux2jw0k');
  });

  it('escapes a task id so it stays one path segment', () => {
    assert.equal(ENDPOINT_FAMILIES.video.taskPath('a/b?c'), '/v1/video/generations/a%2Fb%3Fc');
  });
});

describe('provider routing', () => {
  const toapis: ProviderAccount = { name: 'toapis', kind: 'toapis', baseUrl: 'https://toapis.com', apiKey: 'tk' };
  const odkkk: ProviderAccount = { name: 'odkkk', kind: 'odkkk', baseUrl: 'https://ai.odkkk.com/apiv1', apiKey: 'ok' };

  it('routes each model to an account of its provider kind, with the family adapter and paths', () => {
    const directory = new ProviderDirectory([toapis, odkkk]);
    for (const model of VIDEO_MODELS) {
      const route = directory.route(model.id) ?? assert.fail(`no route for ${model.id}`);
      const account = model.providerKind === 'toapis' ? toapis : odkkk;
      assert.equal(route.provider, account.name);
      assert.equal(route.model, model);
      assert.equal(route.adapter, ENDPOINT_FAMILIES[model.family]);
      assert.equal(route.baseUrl, account.baseUrl);
      assert.equal(route.apiKey, account.apiKey);
      assert.equal(route.taskPath('t1'), ENDPOINT_FAMILIES[model.family].taskPath('t1'));
    }
  });

  it('has no route for a model no account serves, nor for an unknown model', () => {
    const directory = new ProviderDirectory([toapis]);
    assert.equal(directory.route('doubao-seedance-1.0-pro-fast'), undefined);
    assert.deepEqual(directory.providersFor('doubao-seedance-1.0-pro-fast'), []);
    assert.equal(directory.route('no-such-model'), undefined);
  });

  it('lists every provider serving a model in configuration order, and picks the first unless one is named', () => {
    const relay: ProviderAccount = { name: 'relay', kind: 'toapis', baseUrl: 'https://relay.example', apiKey: 'rk' };
    const directory = new ProviderDirectory([toapis, relay]);
    assert.deepEqual(directory.providersFor('seedance-2'), ['toapis', 'relay']);
    assert.equal(directory.route('seedance-2')?.baseUrl, 'https://toapis.com');
    assert.equal(directory.route('seedance-2', 'relay')?.baseUrl, 'https://relay.example');
    assert.equal(directory.route('seedance-2', 'nobody'), undefined);
  });

  it('reads tasks at the account\'s taskPathTemplate when it has one, with the id escaped', () => {
    const directory = new ProviderDirectory([{ ...odkkk, taskPathTemplate: '/v1/tasks/{id}/detail' }]);
    const route = directory.route('doubao-seedance-1.0-pro-fast') ?? assert.fail('no route');
    assert.equal(route.taskPath('task-unified-1761313744-vux2jw0k'), '/v1/tasks/task-unified-1761313744-vux2jw0k/detail');
    assert.equal(route.taskPath('a/b'), '/v1/tasks/a%2Fb/detail');
    assert.equal(route.adapter.createPath, '/v1/videos/generations');
  });

  it('replaces its routes when the accounts are set again', () => {
    const directory = new ProviderDirectory([]);
    assert.equal(directory.route('seedance-2'), undefined);
    directory.setAccounts([toapis]);
    assert.equal(directory.route('seedance-2')?.provider, 'toapis');
  });

  it('mounts the sandbox\'s toapis API at /toapis and its odkkk API at /odkkk/apiv1', () => {
    const base = 'http://127.0.0.1:4000';
    assert.deepEqual(sandboxAccounts(base), [
      // The sandbox is local: its result host is loopback, and archive downloads from it are allowed.
      { name: SANDBOX_PROVIDER, kind: 'toapis', baseUrl: 'http://127.0.0.1:4000/toapis', apiKey: SANDBOX_API_KEY, resultHosts: ['127.0.0.1'], resultHostsArePrivate: true },
      { name: SANDBOX_PROVIDER, kind: 'odkkk', baseUrl: 'http://127.0.0.1:4000/odkkk/apiv1', apiKey: SANDBOX_API_KEY, resultHosts: ['127.0.0.1'], resultHostsArePrivate: true },
    ]);
    const directory = new ProviderDirectory(sandboxAccounts(base));
    assert.equal(directory.route('seedance-2')?.baseUrl, 'http://127.0.0.1:4000/toapis');
    assert.equal(directory.route('doubao-seedance-1-0-pro-fast')?.baseUrl, 'http://127.0.0.1:4000/toapis');
    assert.equal(directory.route('doubao-seedance-1.0-pro-fast')?.baseUrl, 'http://127.0.0.1:4000/odkkk/apiv1');
    assert.deepEqual(directory.providersFor('doubao-seedance-2.0'), [SANDBOX_PROVIDER]);
  });

  it('configures no account without keys', () => {
    assert.deepEqual(configuredAccounts(loadConfig({})), []);
    assert.deepEqual(configuredAccounts(loadConfig({ TOAPIS_API_KEY: '', ODKKK_API_KEY: '  ' })), []);
  });

  it('configures only the providers that have a key', () => {
    assert.deepEqual(configuredAccounts(loadConfig({ TOAPIS_API_KEY: 'tk' })), [
      { name: 'toapis', kind: 'toapis', baseUrl: 'https://toapis.com', apiKey: 'tk' },
    ]);
    assert.deepEqual(configuredAccounts(loadConfig({ ODKKK_API_KEY: 'ok' })), [
      { name: 'odkkk', kind: 'odkkk', baseUrl: 'https://ai.odkkk.com/apiv1', apiKey: 'ok', taskPathTemplate: '/v1/videos/generations/{id}' },
    ]);
  });

  it('configures both providers with their base URLs and the odkkk task path', () => {
    const config = loadConfig({
      TOAPIS_API_KEY: 'tk', TOAPIS_BASE_URL: 'https://relay.example/',
      ODKKK_API_KEY: 'ok', ODKKK_TASK_PATH: '/v1/tasks/{id}',
    });
    assert.deepEqual(configuredAccounts(config), [
      { name: 'toapis', kind: 'toapis', baseUrl: 'https://relay.example', apiKey: 'tk' },
      { name: 'odkkk', kind: 'odkkk', baseUrl: 'https://ai.odkkk.com/apiv1', apiKey: 'ok', taskPathTemplate: '/v1/tasks/{id}' },
    ]);
    const route = new ProviderDirectory(configuredAccounts(config)).route('doubao-seedance-1.0-pro-fast') ?? assert.fail('no route');
    assert.equal(route.taskPath('task-unified-1'), '/v1/tasks/task-unified-1');
  });
});

describe('reading task objects', () => {
  it('reads seed 000\'s create response verbatim', () => {
    assert.deepEqual(readTaskObject({
      id: 'task_vid_xyz789ghi012',
      object: 'generation.task',
      model: 'doubao-seedance-1-0-pro-fast',
      status: 'queued',
      progress: 0,
      created_at: 1703884800,
      metadata: {},
    }), task({
      upstreamTaskId: 'task_vid_xyz789ghi012', status: 'QUEUED', statusWord: 'queued', progress: 0,
      createdAt: new Date('2023-12-29T21:20:00.000Z'),
    }));
  });

  it('reads seed 001\'s response verbatim', () => {
    assert.deepEqual(readTaskObject({
      id: 'tsk_vid_xxx',
      object: 'generation.task',
      model: 'seedance-2',
      status: 'in_progress',
      progress: 50,
      created_at: 1778569600,
      metadata: {},
    }), task({
      upstreamTaskId: 'tsk_vid_xxx', status: 'IN_PROGRESS', statusWord: 'in_progress', progress: 50,
      createdAt: new Date('2026-05-12T07:06:40.000Z'),
    }));
  });

  it('reads seed 003\'s task-unified response with task_info and usage', () => {
    assert.deepEqual(readTaskObject({
      created: 1761313744,
      id: 'task-unified-1761313744-vux2jw0k',
      model: 'doubao-seedance-1.0-pro-fast',
      object: 'video.generation.task',
      progress: 0,
      status: 'pending',
      task_info: { can_cancel: true, estimated_time: 165, video_duration: 8 },
      type: 'video',
      usage: { billing_rule: 'per_call', credits_reserved: 8, user_group: 'default' },
    }), task({
      upstreamTaskId: 'task-unified-1761313744-vux2jw0k', status: 'QUEUED', statusWord: 'pending', progress: 0,
      createdAt: new Date('2025-10-24T13:49:04.000Z'),
      taskInfo: { canCancel: true, estimatedTimeSeconds: 165, videoDurationSeconds: 8 },
      usage: { billingRule: 'per_call', creditsReserved: 8, userGroup: 'default' },
    }));
  });

  it('reads a completed toapis task with completed_at, expires_at and the video URL in result.url', () => {
    assert.deepEqual(readTaskObject({
      id: 'task_vid_done', object: 'generation.task', model: 'doubao-seedance-1-0-pro-fast', status: 'completed', progress: 100,
      created_at: 1703884800, completed_at: 1703884860, expires_at: 1703971260, metadata: {},
      result: { type: 'video', url: 'https://cdn.example/v.mp4' },
    }), task({
      upstreamTaskId: 'task_vid_done', status: 'COMPLETED', statusWord: 'completed', progress: 100,
      createdAt: new Date(1703884800 * 1000), completedAt: new Date(1703884860 * 1000), expiresAt: new Date(1703971260 * 1000),
      videoUrl: 'https://cdn.example/v.mp4',
    }));
  });

  const videoUrlPlacements: [string, Record<string, unknown>][] = [
    ['result.url', { result: { type: 'video', url: 'https://cdn.example/v.mp4' } }],
    ['result.video_url', { result: { type: 'video', video_url: 'https://cdn.example/v.mp4' } }],
    ['result.data[0].url', { result: { type: 'video', data: [{ url: 'https://cdn.example/v.mp4' }] } }],
    ['top-level url', { url: 'https://cdn.example/v.mp4' }],
    ['top-level video_url', { video_url: 'https://cdn.example/v.mp4' }],
    ['content.video_url', { content: { video_url: 'https://cdn.example/v.mp4' } }],
  ];
  for (const [where, fields] of videoUrlPlacements) {
    it(`finds the video URL at ${where}`, () => {
      const read = readTaskObject({ id: 't', status: 'completed', ...fields });
      assert.equal(read.videoUrl, 'https://cdn.example/v.mp4');
      assert.equal(read.lastFrameUrl, null);
    });
  }

  const lastFramePlacements: [string, Record<string, unknown>][] = [
    ['content.last_frame_url', { content: { video_url: 'https://cdn.example/v.mp4', last_frame_url: 'https://cdn.example/last.png' } }],
    ['result.last_frame_url', { result: { url: 'https://cdn.example/v.mp4', last_frame_url: 'https://cdn.example/last.png' } }],
    ['top-level last_frame_url', { video_url: 'https://cdn.example/v.mp4', last_frame_url: 'https://cdn.example/last.png' }],
  ];
  for (const [where, fields] of lastFramePlacements) {
    it(`finds the last frame URL at ${where}`, () => {
      const read = readTaskObject({ id: 't', status: 'completed', ...fields });
      assert.equal(read.lastFrameUrl, 'https://cdn.example/last.png');
      assert.equal(read.videoUrl, 'https://cdn.example/v.mp4');
    });
  }

  it('reads a failed task\'s error object', () => {
    assert.deepEqual(readTaskObject({
      id: 'task_vid_bad', object: 'generation.task', status: 'failed', progress: 30, created_at: 1703884800,
      completed_at: 1703884900,
      error: { code: 'content_policy_violation', message: 'The prompt was refused', type: 'invalid_request_error', param: 'prompt' },
    }), task({
      upstreamTaskId: 'task_vid_bad', status: 'FAILED', statusWord: 'failed', progress: 30,
      createdAt: new Date(1703884800 * 1000), completedAt: new Date(1703884900 * 1000),
      error: { code: 'content_policy_violation', type: 'invalid_request_error', message: 'The prompt was refused', param: 'prompt', fallbackSuggestion: null },
    }));
  });

  const statusWords = [
    ['queued', 'QUEUED'], ['in_progress', 'IN_PROGRESS'], ['completed', 'COMPLETED'], ['failed', 'FAILED'],
    ['submitted', 'QUEUED'],
    ['pending', 'QUEUED'], ['processing', 'IN_PROGRESS'],
    ['running', 'IN_PROGRESS'], ['succeeded', 'COMPLETED'],
  ] as const;
  for (const [word, status] of statusWords) {
    it(`maps the status word "${word}" to ${status}`, () => {
      const read = readTaskObject({ id: 't', status: word });
      assert.equal(read.status, status);
      assert.equal(read.statusWord, word);
    });
  }

  it('keeps an unknown status word with no status, so the poller neither crashes nor ends the task', () => {
    const read = readTaskObject({ id: 't', status: 'paused_for_review' });
    assert.equal(read.status, null);
    assert.equal(read.statusWord, 'paused_for_review');
  });

  it('clamps progress to 0..100', () => {
    assert.equal(readTaskObject({ id: 't', status: 'in_progress', progress: 150 }).progress, 100);
    assert.equal(readTaskObject({ id: 't', status: 'in_progress', progress: -5 }).progress, 0);
    assert.equal(readTaskObject({ id: 't', status: 'in_progress', progress: 42 }).progress, 42);
  });

  it('reads Unix seconds as dates', () => {
    const read = readTaskObject({ id: 't', status: 'completed', created_at: 1703884800, completed_at: 1703884860, expires_at: 1703971260 });
    assert.equal(read.createdAt?.toISOString(), '2023-12-29T21:20:00.000Z');
    assert.equal(read.completedAt?.toISOString(), '2023-12-29T21:21:00.000Z');
    assert.equal(read.expiresAt?.toISOString(), '2023-12-30T21:21:00.000Z');
  });

  for (const [what, body] of [
    ['null', null], ['a string', 'queued'], ['an array', [{ id: 't', status: 'queued' }]], ['a number', 42],
  ] as const) {
    it(`throws UpstreamProtocolError when the body is ${what}, not an object`, () => {
      assert.throws(() => readTaskObject(body), UpstreamProtocolError);
    });
  }

  it('throws UpstreamProtocolError when the task has no id', () => {
    assert.throws(() => readTaskObject({ object: 'generation.task', status: 'queued' }), UpstreamProtocolError);
    assert.throws(() => readTaskObject({ id: '', status: 'queued' }), UpstreamProtocolError);
  });

  it('throws UpstreamProtocolError when the task has no status', () => {
    assert.throws(() => readTaskObject({ id: 'task_vid_1' }), UpstreamProtocolError);
    assert.throws(() => readTaskObject({ id: 'task_vid_1', status: '' }), UpstreamProtocolError);
  });

  it('reads through every family adapter the same way', () => {
    for (const adapter of Object.values(ENDPOINT_FAMILIES)) {
      assert.equal(adapter.readTask({ id: 'x', status: 'queued' }).status, 'QUEUED');
    }
  });
});

describe('reading error bodies (seed 003\'s documented examples)', () => {
  const examples = [
    [400, { code: 400, message: 'Invalid prompt parameter', type: 'invalid_request_error', param: 'prompt', fallback_suggestion: 'provide a valid prompt' }],
    [401, { code: 401, message: 'Invalid or expired token', type: 'authentication_error' }],
    [402, { code: 402, message: 'Insufficient quota', type: 'insufficient_quota_error', fallback_suggestion: 'https://ai.odkkk.com/apiv1/dashboard/billing' }],
    [403, { code: 403, message: 'Access denied for this model', type: 'permission_error', param: 'model' }],
    [404, { code: 404, message: 'Specified model not found', type: 'not_found_error', param: 'model', fallback_suggestion: 'doubao-seedance-1.0-pro-fast' }],
    [413, { code: 413, message: 'Request body too large', type: 'request_too_large_error', fallback_suggestion: 'reduce prompt length' }],
    [429, { code: 429, message: 'Rate limit exceeded', type: 'rate_limit_error', fallback_suggestion: 'retry after 60 seconds' }],
    [500, { code: 500, message: 'Internal server error', type: 'internal_server_error', fallback_suggestion: 'try again later' }],
    [502, { code: 502, message: 'Upstream AI service unavailable', type: 'upstream_error', fallback_suggestion: 'try different model' }],
    [503, { code: 503, message: 'Service temporarily unavailable', type: 'service_unavailable_error', fallback_suggestion: 'retry after 30 seconds' }],
  ] as const;
  for (const [status, error] of examples) {
    it(`reads the ${status} example into code, type, message, param and fallbackSuggestion`, () => {
      const e: Record<string, unknown> = error;
      assert.deepEqual(readErrorBody(status, JSON.stringify({ error })), {
        code: String(status),
        type: error.type,
        message: error.message,
        param: typeof e.param === 'string' ? e.param : null,
        fallbackSuggestion: typeof e.fallback_suggestion === 'string' ? e.fallback_suggestion : null,
      });
    });
  }

  it('pins the 400 example in full', () => {
    assert.deepEqual(readErrorBody(400, '{"error":{"code":400,"message":"Invalid prompt parameter","type":"invalid_request_error","param":"prompt","fallback_suggestion":"provide a valid prompt"}}'), {
      code: '400', type: 'invalid_request_error', message: 'Invalid prompt parameter', param: 'prompt', fallbackSuggestion: 'provide a valid prompt',
    });
  });

  it('keeps a body that is not JSON as the message, with the HTTP status as the code', () => {
    assert.deepEqual(readErrorBody(502, '<html><body>Bad Gateway</body></html>\n'), {
      code: '502', type: null, message: '<html><body>Bad Gateway</body></html>', param: null, fallbackSuggestion: null,
    });
  });

  it('shortens a long non-JSON body to 300 characters', () => {
    assert.equal(readErrorBody(500, 'x'.repeat(1000)).message.length, 300);
  });

  it('says "HTTP <status>" for an empty body', () => {
    assert.deepEqual(readErrorBody(503, ''), {
      code: '503', type: null, message: 'HTTP 503', param: null, fallbackSuggestion: null,
    });
  });

  it('reads an unwrapped error object too', () => {
    assert.deepEqual(readErrorBody(429, '{"message":"slow down","type":"rate_limit_error"}'), {
      code: null, type: 'rate_limit_error', message: 'slow down', param: null, fallbackSuggestion: null,
    });
  });
});

describe('Retry-After', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

  it('reads delta seconds', () => {
    assert.equal(retryAfterSeconds('120', now), 120);
    assert.equal(retryAfterSeconds('0', now), 0);
    assert.equal(retryAfterSeconds(' 30 ', now), 30);
  });

  it('reads an HTTP date as the seconds until it, never below 0', () => {
    assert.equal(retryAfterSeconds('Wed, 21 Oct 2015 07:29:00 GMT', now), 60);
    assert.equal(retryAfterSeconds('Wed, 21 Oct 2015 07:27:00 GMT', now), 0);
  });

  it('takes the first of repeated headers', () => {
    assert.equal(retryAfterSeconds(['30', '40'], now), 30);
  });

  it('gives null when the header is absent or empty', () => {
    assert.equal(retryAfterSeconds(undefined, now), null);
    assert.equal(retryAfterSeconds('', now), null);
  });

  it('gives null for garbage', () => {
    assert.equal(retryAfterSeconds('soon', now), null);
    assert.equal(retryAfterSeconds('120 seconds', now), null);
  });

  // V8's Date.parse is lenient: "garbage 1", "1.5" and "-5" would parse as dates in the past.
  it('gives null for values that are neither delta seconds nor an HTTP date', () => {
    for (const value of ['garbage 1', '1.5', '-5']) {
      assert.equal(retryAfterSeconds(value, now), null, `Retry-After: ${value}`);
    }
  });
});

describe('naming the input field an upstream `param` refers to', () => {
  const cases: [string, string | null, string | null][] = [
    // seed 000
    ['doubao-seedance-1-0-pro-fast', 'aspect_ratio', 'aspectRatio'],
    ['doubao-seedance-1-0-pro-fast', 'resolution', 'resolution'],
    ['doubao-seedance-1-0-pro-fast', 'image_urls', 'imageUrls'],
    ['doubao-seedance-1-0-pro-fast', 'image_with_roles', 'images'],
    ['doubao-seedance-1-0-pro-quality', 'image_with_roles[1].role', 'images'],
    ['doubao-seedance-1-0-pro-fast', 'metadata.seed', 'seed'],
    ['doubao-seedance-1-0-pro-fast', 'seed', 'seed'],
    ['doubao-seedance-1-0-pro-fast', 'ratio', null],
    ['doubao-seedance-1-0-pro-fast', 'quality', null],
    // seed 001
    ['seedance-2', 'ratio', 'aspectRatio'],
    ['seedance-2', 'image_with_roles[0].url', 'images'],
    ['seedance-2', 'video_with_roles', 'videos'],
    ['seedance-2', 'audio_with_roles', 'audios'],
    ['seedance-2', 'aspect_ratio', null],
    ['seedance-2', 'resolution', null],
    // seed 002
    ['doubao-seedance-2.0', 'size', 'aspectRatio'],
    ['doubao-seedance-2.0', 'image_urls[1]', 'imageUrls'],
    ['doubao-seedance-2.0', 'video_urls', 'videos'],
    ['doubao-seedance-2.0', 'audio_urls', 'audios'],
    ['doubao-seedance-2.0', 'generate_audio', 'generateAudio'],
    ['doubao-seedance-2.0', 'return_last_frame', 'returnLastFrame'],
    // seed 003
    ['doubao-seedance-1.0-pro-fast', 'aspect_ratio', 'aspectRatio'],
    ['doubao-seedance-1.0-pro-fast', 'quality', 'resolution'],
    ['doubao-seedance-1.0-pro-fast', 'resolution', null],
    ['doubao-seedance-1.0-pro-fast', 'prompt', 'prompt'],
    ['doubao-seedance-1.0-pro-fast', 'model', 'model'],
    ['doubao-seedance-1.0-pro-fast', 'duration', 'duration'],
    ['doubao-seedance-1.0-pro-fast', 'callback_url', null],
    // no param
    ['seedance-2', null, null],
    ['seedance-2', '', null],
    ['seedance-2', 'something_else', null],
  ];
  for (const [modelId, param, field] of cases) {
    it(`maps ${JSON.stringify(param)} on ${modelId} to ${JSON.stringify(field)}`, () => {
      assert.equal(inputFieldForParam(modelById(modelId), param), field);
    });
  }
});
