// Property-based (fast-check): whatever a client sends as a createVideoTask input, the service either
// makes a task whose upstream body the provider accepts, or answers with UserErrors naming the fields;
// it never crashes and never answers 500 or with a masked error.
//
// The oracle for "the provider accepts it" is the sandbox's own check of an upstream body against the
// catalog (sandbox/sandbox-validation.ts, validateCreateBody), written independently of validation.ts.
//
// Property A (in-process, many runs): validateCreateVideoTask either returns a request whose body, as
// ENDPOINT_FAMILIES[model.family] builds it, passes validateCreateBody at the model's endpoint, or
// returns UserErrors, each with a field path below "input", a code and a message. It never throws.
// Property B (real HTTP against the harness, fewer runs): HTTP 200 without `errors`, and either a task
// with no UserErrors (the sandbox accepted exactly the body built from the validated request) or no
// task with at least one UserError, never a provider refusal (UPSTREAM_*), with no row and no call.
//
// Seeds are fixed (PROPERTY_SEED overrides); fast-check prints the seed and the shrunk counterexample
// on failure, and the seed is also logged as a test diagnostic.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SANDBOX_ENDPOINTS } from '../src/sandbox/endpoints.ts';
import { validateCreateBody } from '../src/sandbox/sandbox-validation.ts';
import { IMAGE_ROLES, VIDEO_MODELS, type ImageRole, type VideoModel } from '../src/tasks/catalog.ts';
import { validateCreateVideoTask, type CreateVideoTaskInput } from '../src/tasks/validation.ts';
import { ENDPOINT_FAMILIES } from '../src/upstream/families.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { postGraphql } from './support/hardening.ts';

const SEED = process.env.PROPERTY_SEED ? Number(process.env.PROPERTY_SEED) : 20_251_121;
const RUNS_IN_PROCESS = 2000;
const RUNS_OVER_HTTP = 100;

const USER_ERROR_CODES = new Set([
  'REQUIRED', 'UNKNOWN_MODEL', 'UNKNOWN_PROVIDER', 'TOO_LONG', 'OUT_OF_RANGE', 'NOT_ALLOWED', 'NOT_SUPPORTED', 'TOO_MANY',
  'CONFLICT', 'DUPLICATE_ROLE', 'INVALID_URL', 'UPLOAD_REQUIRED', 'UNSUPPORTED_COMBINATION', 'INVALID_FORMAT',
]);

// ---------------------------------------------------------------------------------------------------
// Arbitraries. `graphqlTyped` keeps every value within what GraphQL's types let through (Int is 32-bit,
// SafeInt a safe integer), for the HTTP property; the in-process one also tries what only a direct
// caller could pass (non-integers, huge numbers).

const ALL_RATIOS = [...new Set(VIDEO_MODELS.flatMap((m) => [...m.aspectRatio.values, ...(m.aspectRatio.withImage?.values ?? [])]))];
const ALL_RESOLUTIONS = [...new Set(VIDEO_MODELS.flatMap((m) => m.resolution?.values ?? []))];

const GOOD_URLS = [
  'https://example.com/a.png', 'http://8.8.8.8/a.png', 'https://cdn.example.org/v/clip.mp4?sig=abc&exp=1',
  'https://[2606:4700:4700::1111]/x.wav', '  https://example.com/padded.jpg  ', 'HTTPS://EXAMPLE.COM/UPPER.PNG',
];
const BAD_URLS = [
  'http://localhost/a.png', 'http://127.1/a.png', 'http://0x7f000001/a.png', 'http://[::1]/a.png', 'http://169.254.169.254/latest/meta-data',
  'http://10.0.0.1/a.png', 'http://192.168.1.1/a.png', 'http://172.16.0.1/', 'http://0.0.0.0/', 'http://[::ffff:127.0.0.1]/', 'http://[fe80::1]/',
  'http://[fc00::1]/', 'http://metadata.google.internal/', 'http://printer.local/', 'file:///etc/passwd', 'data:image/png;base64,AAAA',
  'ftp://example.com/a.png', 'https://user:pass@example.com/a.png', 'https://user@example.com/a.png', 'not a url', '', '   ',
  `https://example.com/${'x'.repeat(2100)}`, 'asset://', 'asset:x',
];
// Asset ids: the seed shows asset_img_01KXXXXXXX; other characters are tried too.
const assetUrl = fc.stringMatching(/^[A-Za-z0-9_.-]{0,16}$/).map((id) => `asset://${id}`);
const urlArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...GOOD_URLS) },
  { weight: 2, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  { weight: 2, arbitrary: fc.ipV4().map((ip) => `http://${ip}/a.png`) },
  { weight: 2, arbitrary: assetUrl },
  { weight: 4, arbitrary: fc.constantFrom(...BAD_URLS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
);

const promptArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('A cat playing piano', 'Waves on a pier at dusk', 'x', '  padded prompt  ') },
  { weight: 2, arbitrary: fc.constantFrom('', ' ', '\n\t ', '\u00a0\u2028\ufeff') },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.constantFrom('\ud800', 'a\udc00b', 'nul\u0000byte', '😀'.repeat(1001), 'é'.repeat(2000), ` ${'a'.repeat(2000)} `) },
  { weight: 1, arbitrary: fc.integer({ min: 1990, max: 2010 }).map((n) => 'p'.repeat(n)) },
);

const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,40}$/) },
  { weight: 1, arbitrary: fc.constantFrom('', 'has space', 'k'.repeat(255), 'k'.repeat(256), 'ключ', 'tab\t') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

function numbers(graphqlTyped: boolean) {
  const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
  const safe = fc.maxSafeInteger();
  const duration: fc.Arbitrary<number> = graphqlTyped
    ? fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -2, max: 20 }) }, { weight: 1, arbitrary: int32 })
    : fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -2, max: 20 }) }, { weight: 1, arbitrary: int32 }, { weight: 1, arbitrary: fc.double() });
  const edgeSeeds = fc.constantFrom(-1, 0, 2 ** 32 - 1, 2 ** 32, -2, 2 ** 53 - 1, -(2 ** 53 - 1));
  const seed: fc.Arbitrary<number> = graphqlTyped
    ? fc.oneof({ weight: 3, arbitrary: fc.integer({ min: -1, max: 2 ** 32 - 1 }) }, { weight: 2, arbitrary: edgeSeeds }, { weight: 1, arbitrary: safe })
    : fc.oneof({ weight: 3, arbitrary: fc.integer({ min: -1, max: 2 ** 32 - 1 }) }, { weight: 2, arbitrary: edgeSeeds }, { weight: 1, arbitrary: fc.double() });
  return { duration, seed };
}

const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 3 });

/** Anything, field by field, with no regard for the model. */
function randomInput(graphqlTyped: boolean, withProvider: boolean): fc.Arbitrary<CreateVideoTaskInput> {
  const { duration, seed } = numbers(graphqlTyped);
  const image = fc.record({ url: urlArb, role: fc.constantFrom<ImageRole>(...IMAGE_ROLES) });
  return fc.record({
    model: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...VIDEO_MODELS.map((m) => m.id)) },
      { weight: 1, arbitrary: fc.constantFrom('seedance-3', 'SEEDANCE-2', ' seedance-2', '') },
      { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
    ),
    prompt: nullable(promptArb),
    duration: nullable(duration),
    aspectRatio: nullable(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ALL_RATIOS) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) })),
    resolution: nullable(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ALL_RESOLUTIONS) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) })),
    imageUrls: nullable(fc.array(urlArb, { maxLength: 4 })),
    images: nullable(fc.array(image, { maxLength: 4 })),
    videos: nullable(fc.array(urlArb, { maxLength: 4 })),
    audios: nullable(fc.array(urlArb, { maxLength: 4 })),
    generateAudio: nullable(fc.boolean()),
    returnLastFrame: nullable(fc.boolean()),
    seed: nullable(seed),
    idempotencyKey: nullable(keyArb),
    ...(withProvider ? { provider: fc.option(fc.constantFrom('sandbox', 'nobody', ''), { nil: null, freq: 1 }) } : {}),
  }, { requiredKeys: ['model'] });
}

/** An input shaped for one model: mostly what it accepts, so that many runs reach the provider. */
function inputFor(model: VideoModel, graphqlTyped: boolean): fc.Arbitrary<CreateVideoTaskInput> {
  const { seed } = numbers(graphqlTyped);
  const goodUrl = model.acceptsAssetUrls
    ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...GOOD_URLS) }, { weight: 2, arbitrary: assetUrl })
    : fc.constantFrom(...GOOD_URLS);
  const upTo = (limit: { max: number } | null) => (limit ? fc.array(goodUrl, { maxLength: limit.max }) : fc.constant([]));
  const roles = (Object.keys(model.imageRoles ?? {}) as ImageRole[]);
  const images = roles.length > 0
    ? fc.subarray(roles).chain((chosen) => fc.tuple(...chosen.map((role) => goodUrl.map((url) => ({ url, role })))))
    : fc.constant([]);
  return fc.record({
    model: fc.constant(model.id),
    prompt: model.prompt.required === 'ALWAYS'
      ? fc.constantFrom('A cat playing piano', 'Waves on a pier at dusk', '  padded  ')
      : fc.option(fc.constantFrom('A cat playing piano', ''), { nil: null }),
    duration: fc.option(fc.integer({ min: model.duration.min, max: model.duration.max }), { nil: null }),
    aspectRatio: fc.option(fc.constantFrom(...model.aspectRatio.values), { nil: null }),
    resolution: model.resolution ? fc.option(fc.constantFrom(...model.resolution.values), { nil: null }) : fc.constant(null),
    // imageUrls and images are exclusive: one or the other.
    media: fc.boolean(),
    imageUrls: upTo(model.imageUrls),
    images,
    videos: upTo(model.referenceVideos),
    audios: upTo(model.referenceAudios),
    generateAudio: model.generateAudio ? fc.option(fc.boolean(), { nil: null }) : fc.constantFrom(null, false),
    returnLastFrame: model.returnLastFrame ? fc.option(fc.boolean(), { nil: null }) : fc.constantFrom(null, false),
    seed: model.seedParameter ? fc.option(seed, { nil: null }) : fc.constant(null),
    idempotencyKey: fc.option(fc.stringMatching(/^[\x21-\x7e]{1,40}$/), { nil: null }),
  }).map(({ media, imageUrls, images, ...rest }) => ({
    ...rest,
    imageUrls: media ? imageUrls : null,
    images: media ? null : images,
  }));
}

/** Mostly-valid inputs with a few fields replaced by arbitrary ones, plus wholly arbitrary inputs. */
function createInput(graphqlTyped: boolean, withProvider = false): fc.Arbitrary<CreateVideoTaskInput> {
  const fields = ['prompt', 'duration', 'aspectRatio', 'resolution', 'imageUrls', 'images', 'videos', 'audios', 'generateAudio', 'returnLastFrame', 'seed', 'idempotencyKey'] as const;
  const shaped = fc.constantFrom(...VIDEO_MODELS).chain((model) => inputFor(model, graphqlTyped));
  const perturbed = fc.tuple(shaped, randomInput(graphqlTyped, withProvider), fc.subarray([...fields], { maxLength: 2 }))
    .map(([good, random, replaced]) => {
      const input: Record<string, unknown> = { ...good };
      for (const field of replaced) input[field] = (random as unknown as Record<string, unknown>)[field] ?? null;
      if (withProvider && random.provider !== undefined) input.provider = random.provider;
      return input as unknown as CreateVideoTaskInput;
    });
  return fc.oneof({ weight: 3, arbitrary: shaped }, { weight: 4, arbitrary: perturbed }, { weight: 3, arbitrary: randomInput(graphqlTyped, withProvider) });
}

// ---------------------------------------------------------------------------------------------------

function endpointOf(model: VideoModel) {
  const endpoint = SANDBOX_ENDPOINTS.find((e) => e.models.some((m) => m.id === model.id));
  assert.ok(endpoint, `no sandbox endpoint serves ${model.id}`);
  return endpoint;
}

/** The body exactly as it would travel: built by the model's family, then through JSON. */
function upstreamBody(model: VideoModel, request: Parameters<(typeof ENDPOINT_FAMILIES)['videos']['buildCreateBody']>[1]): Record<string, unknown> {
  const callbackUrl = model.callback ? 'https://seedance.example.com/webhooks/upstream/00000000-0000-4000-8000-000000000000/token' : undefined;
  return JSON.parse(JSON.stringify(ENDPOINT_FAMILIES[model.family].buildCreateBody(model, request, { callbackUrl }))) as Record<string, unknown>;
}

function assertUserErrors(errors: { field: string[] | null; code: string; message: string }[], where: string): void {
  assert.ok(errors.length >= 1, `${where}: no UserError`);
  for (const error of errors) {
    assert.ok(Array.isArray(error.field) && error.field.length >= 2 && error.field[0] === 'input', `${where}: field ${JSON.stringify(error.field)}`);
    assert.ok(error.field.every((part) => typeof part === 'string' && part.length > 0), `${where}: field ${JSON.stringify(error.field)}`);
    assert.ok(USER_ERROR_CODES.has(error.code), `${where}: code ${error.code}`);
    assert.ok(typeof error.message === 'string' && error.message.trim().length > 0, `${where}: empty message`);
  }
}

describe('createVideoTask input validation (property-based)', () => {
  it(`in-process: a task the provider accepts, or UserErrors, never a throw (${RUNS_IN_PROCESS} runs)`, (t) => {
    t.diagnostic(`fast-check seed ${SEED} (set PROPERTY_SEED to replay another)`);
    let accepted = 0;
    let refused = 0;
    const acceptedModels = new Set<string>();
    fc.assert(fc.property(createInput(false), (input) => {
      const result = validateCreateVideoTask(input);
      if (!result.ok) {
        refused++;
        assertUserErrors(result.errors, JSON.stringify(input));
        return;
      }
      accepted++;
      acceptedModels.add(result.model.id);
      const body = upstreamBody(result.model, result.request);
      const verdict = validateCreateBody(body, endpointOf(result.model), { allowInternalCallbacks: false });
      assert.equal(verdict.refusal, undefined, `the provider would refuse ${JSON.stringify(body)}: ${JSON.stringify(verdict.refusal)}`);
      assert.equal(verdict.model?.id, result.model.id);
    }), { seed: SEED, numRuns: RUNS_IN_PROCESS, verbose: 1 });
    t.diagnostic(`accepted ${accepted}, refused ${refused}; accepted models: ${[...acceptedModels].sort().join(', ')}`);
    // The property says something about both branches, for every model.
    assert.ok(accepted >= RUNS_IN_PROCESS * 0.2, `only ${accepted} accepted inputs`);
    assert.ok(refused >= RUNS_IN_PROCESS * 0.2, `only ${refused} refused inputs`);
    assert.equal(acceptedModels.size, VIDEO_MODELS.length);
  });

  describe('over HTTP', () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({
        env: {
          RATE_LIMIT_REQUESTS_PER_MINUTE: '1000000', RATE_LIMIT_TASKS_PER_MINUTE: '1000000', MAX_UNFINISHED_TASKS_PER_KEY: '1000000',
          UPSTREAM_TIMEOUT_MS: '4000', POLL_LEASE_MS: '6000',
        },
      });
    });
    after(async () => { await h.stop(); });

    const CREATE = `mutation($input: CreateVideoTaskInput!) {
      createVideoTask(input: $input) { task { id upstreamTaskId status } userErrors { field code message } }
    }`;

    it(`a 200 with a task the sandbox accepted, or with UserErrors; never a 500 or a GraphQL error (${RUNS_OVER_HTTP} runs)`, async (t) => {
      t.diagnostic(`fast-check seed ${SEED} (set PROPERTY_SEED to replay another)`);
      const rowCount = () => (h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n;
      let run = 0;
      let created = 0;
      let refused = 0;
      await fc.assert(fc.asyncProperty(createInput(true, true), async (generated) => {
        run++;
        // Keys are made unique per run, so that a key met twice is not a replay of an earlier run's task.
        const input = typeof generated.idempotencyKey === 'string'
          ? { ...generated, idempotencyKey: `r${run}-${generated.idempotencyKey}` }
          : generated;
        const where = JSON.stringify(input).slice(0, 2000);
        const rows = rowCount();
        const calls = h.sandbox!.stats().requests.create;
        const response = await postGraphql(h.url, CREATE, { input });
        assert.equal(response.status, 200, `${where}: HTTP ${response.status} ${response.raw.slice(0, 500)}`);
        assert.equal(response.body.errors, undefined, `${where}: ${response.raw.slice(0, 500)}`);
        const { task, userErrors } = response.body.data.createVideoTask as {
          task: { id: string; upstreamTaskId: string | null; status: string } | null;
          userErrors: { field: string[]; code: string; message: string }[];
        };
        const local = validateCreateVideoTask(input);
        if (task) {
          created++;
          assert.deepEqual(userErrors, [], where);
          assert.ok(local.ok, `${where}: the service made a task of an input validation refuses`);
          assert.ok(task.upstreamTaskId, `${where}: no upstream id`);
          const upstream = h.sandbox!.tasks().find((s) => s.id === task.upstreamTaskId);
          assert.ok(upstream, `${where}: the sandbox has no task ${task.upstreamTaskId}`);
          // What the provider received is the body built from the validated request, nothing else.
          assert.deepEqual(upstream.body, upstreamBody({ ...local.model, callback: false }, local.request), where);
          assert.equal(rowCount(), rows + 1);
        } else {
          refused++;
          assertUserErrors(userErrors, where);
          assert.ok(!userErrors.some((e) => e.code.startsWith('UPSTREAM_')), `${where}: the provider refused what validation passed: ${JSON.stringify(userErrors)}`);
          if (local.ok) {
            // Refused for a reason only the service knows: the provider named for the model.
            assert.deepEqual(userErrors.map((e) => e.code), ['UNKNOWN_PROVIDER'], where);
          } else {
            assert.deepEqual(userErrors, local.errors.map(({ field, code, message }) => ({ field, code, message })), where);
          }
          assert.equal(rowCount(), rows, `${where}: a refused input left a row`);
          assert.equal(h.sandbox!.stats().requests.create, calls, `${where}: a refused input reached the provider`);
        }
      }), { seed: SEED, numRuns: RUNS_OVER_HTTP, verbose: 1 });
      t.diagnostic(`created ${created}, refused ${refused}`);
      assert.ok(created >= RUNS_OVER_HTTP * 0.15, `only ${created} tasks created`);
      assert.ok(refused >= RUNS_OVER_HTTP * 0.15, `only ${refused} refused`);
    });
  });
});
