// Every rule the catalog sets on a createVideoTask input: one refused case each (with the field path and
// code a client switches on), the accepted counterpart, and the normalized request an accepted input yields.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VIDEO_MODELS } from '../src/tasks/catalog.ts';
import { validateCreateVideoTask, type CreateVideoTaskInput, type UserError } from '../src/tasks/validation.ts';
import type { VideoRequest } from '../src/tasks/video-request.ts';

const IMG = 'https://example.com/a.png';
const IMG2 = 'https://example.com/b.png';
const VID = 'https://example.com/v.mp4';
const AUD = 'https://example.com/a.mp3';

function errorsOf(input: CreateVideoTaskInput): UserError[] {
  const result = validateCreateVideoTask(input);
  assert.equal(result.ok, false, `expected a refusal of ${JSON.stringify(input)}`);
  if (result.ok) return assert.fail('accepted');
  for (const error of result.errors) assert.ok(error.message.length > 0, 'every refusal says why');
  return result.errors;
}

/** Refused with exactly one problem, at this path, with this code. */
function assertRefused(input: CreateVideoTaskInput, field: string[], code: string): UserError {
  const errors = errorsOf(input);
  assert.deepEqual(errors.map((e) => ({ field: e.field, code: e.code })), [{ field, code }]);
  return errors[0] ?? assert.fail('no error');
}

function assertAccepted(input: CreateVideoTaskInput): VideoRequest {
  const result = validateCreateVideoTask(input);
  if (!result.ok) return assert.fail(`expected ${JSON.stringify(input)} to be accepted, got ${JSON.stringify(result.errors)}`);
  assert.equal(result.model.id, input.model);
  return result.request;
}

describe('the model', () => {
  it('must be one of the catalog', () => {
    const error = assertRefused({ model: 'seedance-3', prompt: 'x' }, ['input', 'model'], 'UNKNOWN_MODEL');
    assert.match(error.message, /seedance-2/, 'the message lists the known models');
  });

  for (const model of VIDEO_MODELS) {
    it(`accepts a plain prompt for ${model.id}`, () => {
      assertAccepted({ model: model.id, prompt: 'A cat playing piano' });
    });
  }
});

describe('the prompt', () => {
  for (const model of VIDEO_MODELS.filter((m) => m.prompt.required === 'ALWAYS')) {
    it(`is required by ${model.id}`, () => {
      assertRefused({ model: model.id }, ['input', 'prompt'], 'REQUIRED');
    });
  }

  it('counts as missing when it is only whitespace', () => {
    assertRefused({ model: 'seedance-2', prompt: '  \n\t ' }, ['input', 'prompt'], 'REQUIRED');
  });

  it('counts as missing when it is null', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: null }, ['input', 'prompt'], 'REQUIRED');
  });

  it('is required by doubao-seedance-2.0 for text-to-video (no media)', () => {
    assertRefused({ model: 'doubao-seedance-2.0' }, ['input', 'prompt'], 'REQUIRED');
    assertRefused({ model: 'doubao-seedance-2.0', prompt: '   ' }, ['input', 'prompt'], 'REQUIRED');
  });

  it('is optional on doubao-seedance-2.0 when an image, video or audio is given', () => {
    assert.equal(assertAccepted({ model: 'doubao-seedance-2.0', imageUrls: [IMG] }).prompt, null);
    assert.equal(assertAccepted({ model: 'doubao-seedance-2.0', videos: [VID] }).prompt, null);
    assert.equal(assertAccepted({ model: 'doubao-seedance-2.0', audios: [AUD] }).prompt, null);
  });

  it('is still required with media by a model that always needs one', () => {
    assertRefused({ model: 'seedance-2', imageUrls: [IMG] }, ['input', 'prompt'], 'REQUIRED');
  });

  it('may have at most 2000 characters on doubao-seedance-1.0-pro-fast', () => {
    assertRefused({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'a'.repeat(2001) }, ['input', 'prompt'], 'TOO_LONG');
    assertAccepted({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'a'.repeat(2000) });
  });

  it('is measured after trimming', () => {
    assertAccepted({ model: 'doubao-seedance-1.0-pro-fast', prompt: `  ${'a'.repeat(2000)}  ` });
  });

  it('has no length limit on models whose seed gives none', () => {
    assertAccepted({ model: 'seedance-2', prompt: 'a'.repeat(5000) });
  });
});

describe('the duration', () => {
  it('ranges over 2..12 s on the 1.0 models and 4..15 s on the 2 models', () => {
    assert.deepEqual(Object.fromEntries(VIDEO_MODELS.map((m) => [m.id, [m.duration.min, m.duration.max]])), {
      'doubao-seedance-1-0-pro-fast': [2, 12],
      'doubao-seedance-1-0-pro-quality': [2, 12],
      'seedance-2': [4, 15],
      'seedance-2-fast': [4, 15],
      'doubao-seedance-2.0': [4, 15],
      'doubao-seedance-1.0-pro-fast': [2, 12],
    });
  });

  for (const model of VIDEO_MODELS) {
    const { min, max } = model.duration;
    it(`is refused below ${min} s on ${model.id}`, () => {
      assertRefused({ model: model.id, prompt: 'x', duration: min - 1 }, ['input', 'duration'], 'OUT_OF_RANGE');
    });
    it(`is refused above ${max} s on ${model.id}`, () => {
      assertRefused({ model: model.id, prompt: 'x', duration: max + 1 }, ['input', 'duration'], 'OUT_OF_RANGE');
    });
    it(`is accepted at ${min} s and at ${max} s on ${model.id}`, () => {
      assert.equal(assertAccepted({ model: model.id, prompt: 'x', duration: min }).duration, min);
      assert.equal(assertAccepted({ model: model.id, prompt: 'x', duration: max }).duration, max);
    });
  }

  it('must be a whole number of seconds', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', duration: 5.5 }, ['input', 'duration'], 'OUT_OF_RANGE');
  });
});

describe('the aspect ratio', () => {
  it('must be one of the model\'s values (21:9 is not among seedance-2\'s)', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', aspectRatio: '21:9' }, ['input', 'aspectRatio'], 'NOT_ALLOWED');
  });

  it('accepts 21:9 on the 1.0 models', () => {
    assert.equal(assertAccepted({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', aspectRatio: '21:9' }).aspectRatio, '21:9');
  });

  it('refuses adaptive on doubao-seedance-1.0-pro-fast without an image, saying it needs one', () => {
    const error = assertRefused({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'x', aspectRatio: 'adaptive' }, ['input', 'aspectRatio'], 'NOT_ALLOWED');
    assert.match(error.message, /only accepted with an image/);
  });

  it('accepts adaptive and keep_ratio on doubao-seedance-1.0-pro-fast with an image', () => {
    assert.equal(assertAccepted({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'x', aspectRatio: 'adaptive', imageUrls: [IMG] }).aspectRatio, 'adaptive');
    assert.equal(assertAccepted({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'x', aspectRatio: 'keep_ratio', imageUrls: [IMG] }).aspectRatio, 'keep_ratio');
  });

  it('refuses adaptive on a model that never takes it, image or not', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', aspectRatio: 'adaptive', imageUrls: [IMG] }, ['input', 'aspectRatio'], 'NOT_ALLOWED');
  });
});

describe('the resolution', () => {
  it('is refused on a model without one', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', resolution: '720p' }, ['input', 'resolution'], 'NOT_SUPPORTED');
    assertRefused({ model: 'doubao-seedance-2.0', prompt: 'x', resolution: '720p' }, ['input', 'resolution'], 'NOT_SUPPORTED');
  });

  it('must be one of the model\'s values', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', resolution: '4k' }, ['input', 'resolution'], 'NOT_ALLOWED');
    assertRefused({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'x', resolution: '1440p' }, ['input', 'resolution'], 'NOT_ALLOWED');
  });

  for (const model of ['doubao-seedance-1-0-pro-fast', 'doubao-seedance-1-0-pro-quality']) {
    it(`may not be 1080p with a REFERENCE image on ${model}`, () => {
      assertRefused({ model, prompt: 'x', resolution: '1080p', images: [{ url: IMG, role: 'REFERENCE' }] },
        ['input', 'resolution'], 'UNSUPPORTED_COMBINATION');
    });

    it(`may be 1080p without a reference image on ${model}`, () => {
      assertAccepted({ model, prompt: 'x', resolution: '1080p' });
      assertAccepted({ model, prompt: 'x', resolution: '1080p', images: [{ url: IMG, role: 'FIRST_FRAME' }] });
    });

    it(`may be 720p with a REFERENCE image on ${model}`, () => {
      assertAccepted({ model, prompt: 'x', resolution: '720p', images: [{ url: IMG, role: 'REFERENCE' }] });
    });
  }
});

describe('images', () => {
  it('may not be given both as imageUrls and as images with roles', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-quality', prompt: 'x', imageUrls: [IMG], images: [{ url: IMG2, role: 'LAST_FRAME' }] },
      ['input', 'images'], 'CONFLICT');
  });

  it('take at most one image per role', () => {
    assertRefused({
      model: 'seedance-2', prompt: 'x',
      images: [{ url: IMG, role: 'REFERENCE' }, { url: IMG2, role: 'REFERENCE' }],
    }, ['input', 'images', '1', 'role'], 'DUPLICATE_ROLE');
  });

  it('refuse LAST_FRAME on doubao-seedance-1-0-pro-fast', () => {
    assertRefused({
      model: 'doubao-seedance-1-0-pro-fast', prompt: 'x',
      images: [{ url: IMG, role: 'FIRST_FRAME' }, { url: IMG2, role: 'LAST_FRAME' }],
    }, ['input', 'images', '1', 'role'], 'NOT_SUPPORTED');
  });

  it('accept first and last frame on doubao-seedance-1-0-pro-quality', () => {
    assertAccepted({
      model: 'doubao-seedance-1-0-pro-quality', prompt: 'x',
      images: [{ url: IMG, role: 'FIRST_FRAME' }, { url: IMG2, role: 'LAST_FRAME' }],
    });
  });

  for (const model of ['doubao-seedance-2.0', 'doubao-seedance-1.0-pro-fast']) {
    it(`with roles are refused on ${model}`, () => {
      assertRefused({ model, prompt: 'x', images: [{ url: IMG, role: 'FIRST_FRAME' }] }, ['input', 'images'], 'NOT_SUPPORTED');
    });
  }

  const imageUrlLimits = [
    ['doubao-seedance-1.0-pro-fast', 1],
    ['seedance-2', 1],
    ['doubao-seedance-2.0', 9],
  ] as const;
  for (const [model, max] of imageUrlLimits) {
    const urls = (n: number) => Array.from({ length: n }, (_, i) => `https://example.com/${i}.png`);
    it(`as imageUrls are at most ${max} on ${model}`, () => {
      assertRefused({ model, prompt: 'x', imageUrls: urls(max + 1) }, ['input', 'imageUrls'], 'TOO_MANY');
      assertAccepted({ model, prompt: 'x', imageUrls: urls(max) });
    });
  }
});

describe('reference videos and audios', () => {
  it('are refused on models without them', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', videos: [VID] }, ['input', 'videos'], 'NOT_SUPPORTED');
    assertRefused({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'x', audios: [AUD] }, ['input', 'audios'], 'NOT_SUPPORTED');
  });

  it('are at most one video and one audio on seedance-2', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', videos: [VID, VID] }, ['input', 'videos'], 'TOO_MANY');
    assertRefused({ model: 'seedance-2', prompt: 'x', audios: [AUD, AUD] }, ['input', 'audios'], 'TOO_MANY');
    assertAccepted({ model: 'seedance-2', prompt: 'x', videos: [VID], audios: [AUD] });
  });

  it('are at most three videos on doubao-seedance-2.0', () => {
    assertRefused({ model: 'doubao-seedance-2.0', prompt: 'x', videos: [VID, VID, VID, VID] }, ['input', 'videos'], 'TOO_MANY');
    assertAccepted({ model: 'doubao-seedance-2.0', prompt: 'x', videos: [VID, VID, VID] });
  });
});

describe('switches only some models have', () => {
  it('refuse generateAudio true on a model that cannot generate audio, and accept false', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', generateAudio: true }, ['input', 'generateAudio'], 'NOT_SUPPORTED');
    assert.equal(assertAccepted({ model: 'seedance-2', prompt: 'x', generateAudio: false }).generateAudio, null);
    assert.equal(assertAccepted({ model: 'doubao-seedance-2.0', prompt: 'x', generateAudio: true }).generateAudio, true);
  });

  it('refuse returnLastFrame true on a model that cannot return it, and accept false', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', returnLastFrame: true }, ['input', 'returnLastFrame'], 'NOT_SUPPORTED');
    assert.equal(assertAccepted({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', returnLastFrame: false }).returnLastFrame, false);
    assert.equal(assertAccepted({ model: 'doubao-seedance-2.0', prompt: 'x', returnLastFrame: true }).returnLastFrame, true);
  });
});

describe('the seed', () => {
  it('is refused on a model without a seed parameter', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', seed: 1 }, ['input', 'seed'], 'NOT_SUPPORTED');
  });

  it('must lie in -1..2^32-1', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', seed: -2 }, ['input', 'seed'], 'OUT_OF_RANGE');
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', seed: 2 ** 32 }, ['input', 'seed'], 'OUT_OF_RANGE');
    assert.equal(assertAccepted({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', seed: -1 }).seed, -1);
    assert.equal(assertAccepted({ model: 'doubao-seedance-1-0-pro-quality', prompt: 'x', seed: 2 ** 32 - 1 }).seed, 2 ** 32 - 1);
  });

  it('must be an integer', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', seed: 1.5 }, ['input', 'seed'], 'OUT_OF_RANGE');
  });
});

describe('media URLs', () => {
  it('refuse inline data, telling the client to upload first', () => {
    const error = assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', imageUrls: ['data:image/png;base64,iVBORw0KGgo='] },
      ['input', 'imageUrls', '0'], 'UPLOAD_REQUIRED');
    assert.match(error.message, /upload the file first/);
  });

  it('name the exact place of a bad URL in images, videos and audios', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', images: [{ url: 'data:image/png;base64,AAAA', role: 'FIRST_FRAME' }] },
      ['input', 'images', '0', 'url'], 'UPLOAD_REQUIRED');
    assertRefused({ model: 'doubao-seedance-2.0', prompt: 'x', videos: [VID, 'ftp://example.com/v.mp4'] }, ['input', 'videos', '1'], 'INVALID_URL');
    assertRefused({ model: 'doubao-seedance-2.0', prompt: 'x', audios: ['speech.wav'] }, ['input', 'audios', '0'], 'INVALID_URL');
  });

  it('must be http or https', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', imageUrls: ['ftp://example.com/a.png'] },
      ['input', 'imageUrls', '0'], 'INVALID_URL');
    assertAccepted({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', imageUrls: ['http://example.com/a.png'] });
  });

  it('must be URLs', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', imageUrls: ['not a url'] }, ['input', 'imageUrls', '0'], 'INVALID_URL');
  });

  it('may be asset://<ASSET_ID> on seedance-2', () => {
    assertAccepted({
      model: 'seedance-2', prompt: 'x',
      images: [{ url: 'asset://x', role: 'REFERENCE' }], videos: ['asset://asset_vid_01'], audios: ['asset://asset_aud_01'],
    });
    assertAccepted({ model: 'seedance-2-fast', prompt: 'x', imageUrls: ['asset://asset_img_01KXXXXXXX'] });
  });

  it('may not be asset:// on a model whose seed does not accept it', () => {
    assertRefused({ model: 'doubao-seedance-1-0-pro-fast', prompt: 'x', imageUrls: ['asset://x'] }, ['input', 'imageUrls', '0'], 'INVALID_URL');
  });

  it('must name an asset id after asset://', () => {
    assertRefused({ model: 'seedance-2', prompt: 'x', imageUrls: ['asset://'] }, ['input', 'imageUrls', '0'], 'INVALID_URL');
  });

  it('may be at most 2048 characters long', () => {
    const url = (length: number) => `https://example.com/${'a'.repeat(length - 'https://example.com/'.length)}`;
    assertRefused({ model: 'seedance-2', prompt: 'x', imageUrls: [url(2049)] }, ['input', 'imageUrls', '0'], 'TOO_LONG');
    assertAccepted({ model: 'seedance-2', prompt: 'x', imageUrls: [url(2048)] });
  });

  // BUG (src/tasks/validation.ts, checkMediaUrl vs. the request it returns): a URL is checked trimmed
  // (`url.trim()`) but stored and sent as given, so " https://example.com/a.png " passes validation and
  // reaches the upstream with its spaces. Marked todo until the source trims URLs like it trims the prompt.
  it('are stored as they were checked, trimmed', () => {
    const request = assertAccepted({ model: 'doubao-seedance-2.0', prompt: 'x', imageUrls: [` ${IMG} `], videos: [` ${VID}`], audios: [`${AUD} `] });
    assert.deepEqual([request.imageUrls, request.videos, request.audios], [[IMG], [VID], [AUD]]);
  });
});

describe('reporting', () => {
  it('reports every problem of an input at once', () => {
    const errors = errorsOf({
      model: 'doubao-seedance-1-0-pro-fast',
      prompt: ' ',
      duration: 20,
      aspectRatio: '5:4',
      resolution: '4k',
      imageUrls: ['ftp://example.com/a.png'],
      videos: [VID],
      generateAudio: true,
      seed: 2 ** 32,
    });
    assert.deepEqual(
      errors.map((e) => `${e.field.join('.')} ${e.code}`).sort(),
      [
        'input.aspectRatio NOT_ALLOWED',
        'input.duration OUT_OF_RANGE',
        'input.generateAudio NOT_SUPPORTED',
        'input.imageUrls.0 INVALID_URL',
        'input.prompt REQUIRED',
        'input.resolution NOT_ALLOWED',
        'input.seed OUT_OF_RANGE',
        'input.videos NOT_SUPPORTED',
      ],
    );
  });
});

describe('the normalized request', () => {
  it('applies seed 000\'s defaults and trims the prompt', () => {
    assert.deepEqual(assertAccepted({ model: 'doubao-seedance-1-0-pro-fast', prompt: '  Sunset at the beach \n' }), {
      model: 'doubao-seedance-1-0-pro-fast',
      prompt: 'Sunset at the beach',
      duration: 5,
      aspectRatio: '16:9',
      resolution: '720p',
      imageUrls: [],
      images: [],
      videos: [],
      audios: [],
      generateAudio: null,
      returnLastFrame: false,
      seed: null,
    } satisfies VideoRequest);
  });

  it('keeps images with roles and the seed on the quality model', () => {
    assert.deepEqual(assertAccepted({
      model: 'doubao-seedance-1-0-pro-quality', prompt: 'Transition', duration: 8, resolution: '1080p', seed: 7,
      images: [{ url: IMG, role: 'FIRST_FRAME' }, { url: IMG2, role: 'LAST_FRAME' }],
    }), {
      model: 'doubao-seedance-1-0-pro-quality',
      prompt: 'Transition',
      duration: 8,
      aspectRatio: '16:9',
      resolution: '1080p',
      imageUrls: [],
      images: [{ url: IMG, role: 'FIRST_FRAME' }, { url: IMG2, role: 'LAST_FRAME' }],
      videos: [],
      audios: [],
      generateAudio: null,
      returnLastFrame: false,
      seed: 7,
    } satisfies VideoRequest);
  });

  it('applies seed 001\'s defaults: ratio 16:9 and no resolution', () => {
    assert.deepEqual(assertAccepted({ model: 'seedance-2', prompt: 'A calm sunrise', videos: ['asset://asset_vid_01'], generateAudio: false }), {
      model: 'seedance-2',
      prompt: 'A calm sunrise',
      duration: 5,
      aspectRatio: '16:9',
      resolution: null,
      imageUrls: [],
      images: [],
      videos: ['asset://asset_vid_01'],
      audios: [],
      generateAudio: null,
      returnLastFrame: false,
      seed: null,
    } satisfies VideoRequest);
  });

  it('leaves doubao-seedance-2.0\'s size to the upstream and keeps its switches', () => {
    assert.deepEqual(assertAccepted({
      model: 'doubao-seedance-2.0', imageUrls: [IMG, IMG2], audios: [AUD], generateAudio: true, returnLastFrame: true,
    }), {
      model: 'doubao-seedance-2.0',
      prompt: null,
      duration: 5,
      aspectRatio: null,
      resolution: null,
      imageUrls: [IMG, IMG2],
      images: [],
      videos: [],
      audios: [AUD],
      generateAudio: true,
      returnLastFrame: true,
      seed: null,
    } satisfies VideoRequest);
  });

  it('applies seed 003\'s defaults: 1080p, and 16:9 without an image but adaptive with one', () => {
    const base = {
      model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat playing piano', duration: 5, resolution: '1080p',
      images: [], videos: [], audios: [], generateAudio: null, returnLastFrame: false, seed: null,
    };
    assert.deepEqual(assertAccepted({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat playing piano' }),
      { ...base, aspectRatio: '16:9', imageUrls: [] } satisfies VideoRequest);
    assert.deepEqual(assertAccepted({ model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat playing piano', imageUrls: [IMG] }),
      { ...base, aspectRatio: 'adaptive', imageUrls: [IMG] } satisfies VideoRequest);
  });
});
