// End to end over real HTTP: GraphQL -> task service -> SQLite + adapter -> sandbox upstream.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VIDEO_MODELS } from '../src/tasks/catalog.ts';
import { startHarness, type Harness } from './support/harness.ts';

const TASK_FIELDS = `id model provider status progress prompt duration aspectRatio resolution upstreamTaskId upstreamStatus
  createdAt updatedAt videoUrl error { code type message param fallbackSuggestion }`;
const CREATE = `mutation Create($input: CreateVideoTaskInput!) {
  createVideoTask(input: $input) {
    task { ${TASK_FIELDS} }
    userErrors { field message code upstream { httpStatus code type message param fallbackSuggestion retryAfterSeconds } }
  }
}`;

/** One valid input per model, using what sets each apart. */
const EXAMPLES: Record<string, Record<string, unknown>> = {
  'doubao-seedance-1-0-pro-fast': { prompt: 'Sunset at the beach', duration: 5, aspectRatio: '16:9', resolution: '720p', seed: 4294967295 },
  'doubao-seedance-1-0-pro-quality': {
    prompt: 'A transition', images: [{ url: 'https://example.com/start.png', role: 'FIRST_FRAME' }, { url: 'https://example.com/end.png', role: 'LAST_FRAME' }],
  },
  'seedance-2': { prompt: 'A calm sunrise', duration: 10, aspectRatio: '16:9' },
  'seedance-2-fast': { prompt: 'Keep the person', images: [{ url: 'asset://asset_img_01K', role: 'REFERENCE' }], videos: ['asset://asset_vid_01K'] },
  'doubao-seedance-2.0': { videos: ['https://example.com/reference.mp4'], audios: ['https://example.com/speech.wav'], aspectRatio: '16:9', duration: 11, generateAudio: true, returnLastFrame: true },
  'doubao-seedance-1.0-pro-fast': { prompt: 'A cat playing piano', imageUrls: ['https://example.com/cat.jpg'] },
};

describe('GraphQL tasks against the sandbox upstream', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(async () => { await h.stop(); });

  const countRows = () => (h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n;
  const creates = () => h.sandbox!.stats().requests.create;

  describe('createVideoTask', () => {
    for (const model of VIDEO_MODELS) {
      it(`submits a ${model.id} task and returns it QUEUED with the upstream id`, async () => {
        const { data, errors } = await h.gql(CREATE, { input: { model: model.id, ...EXAMPLES[model.id] } });
        assert.equal(errors, undefined);
        const { task, userErrors } = data.createVideoTask;
        assert.deepEqual(userErrors, []);
        assert.equal(task.model, model.id);
        assert.equal(task.provider, 'sandbox');
        assert.ok(['QUEUED', 'IN_PROGRESS'].includes(task.status), task.status);
        assert.ok(task.upstreamTaskId);
        const upstream = h.sandbox!.tasks().find((t) => t.id === task.upstreamTaskId);
        assert.ok(upstream, 'the sandbox saw the submission');
        assert.equal(upstream.body.model, model.id);
      });
    }

    it('refuses input the catalog rejects with one UserError per problem, writing no row and calling no upstream', async () => {
      const rows = countRows();
      const calls = creates();
      const { data } = await h.gql(CREATE, { input: { model: 'seedance-2', duration: 99, aspectRatio: '21:9', resolution: '1080p' } });
      assert.equal(data.createVideoTask.task, null);
      assert.deepEqual(
        data.createVideoTask.userErrors.map((e: { field: string[]; code: string }) => [e.field.join('.'), e.code]).sort(),
        [['input.aspectRatio', 'NOT_ALLOWED'], ['input.duration', 'OUT_OF_RANGE'], ['input.prompt', 'REQUIRED'], ['input.resolution', 'NOT_SUPPORTED']],
      );
      assert.equal(countRows(), rows);
      assert.equal(creates(), calls);
    });

    it('refuses a data: URL, telling the client to upload first', async () => {
      const { data } = await h.gql(CREATE, { input: { model: 'seedance-2', prompt: 'x', imageUrls: ['data:image/png;base64,iVBOR'] } });
      const [error] = data.createVideoTask.userErrors;
      assert.equal(error.code, 'UPLOAD_REQUIRED');
      assert.deepEqual(error.field, ['input', 'imageUrls', '0']);
      assert.match(error.message, /upload the file first/);
    });

    it('refuses an unknown provider for the model', async () => {
      const { data } = await h.gql(CREATE, { input: { model: 'seedance-2', prompt: 'x', provider: 'nobody' } });
      assert.deepEqual(data.createVideoTask.userErrors.map((e: { code: string }) => e.code), ['UNKNOWN_PROVIDER']);
    });

    for (const [status, code, type] of [
      [402, 'UPSTREAM_INSUFFICIENT_QUOTA', 'insufficient_quota_error'],
      [403, 'UPSTREAM_PERMISSION_DENIED', 'permission_error'],
      [429, 'UPSTREAM_RATE_LIMITED', 'rate_limit_error'],
      [503, 'UPSTREAM_UNAVAILABLE', 'service_unavailable_error'],
    ] as const) {
      it(`passes a provider's ${status} refusal to the client typed, and keeps no row`, async () => {
        const rows = countRows();
        h.sandbox!.queueErrors('create', status, 1);
        const { data, errors } = await h.gql(CREATE, { input: { model: 'doubao-seedance-1.0-pro-fast', prompt: 'A cat' } });
        assert.equal(errors, undefined);
        assert.equal(data.createVideoTask.task, null);
        const [error] = data.createVideoTask.userErrors;
        assert.equal(error.code, code);
        assert.equal(error.upstream.httpStatus, status);
        assert.equal(error.upstream.type, type);
        assert.ok(error.upstream.message);
        if (status === 429) assert.ok(error.upstream.retryAfterSeconds > 0);
        if (status === 503) assert.match(error.upstream.fallbackSuggestion, /30 seconds/);
        assert.equal(countRows(), rows);
      });
    }

    it('reports a provider 400 without a param against the whole input', async () => {
      h.sandbox!.queueErrors('create', 400, 1);
      const { data } = await h.gql(CREATE, { input: { model: 'seedance-2', prompt: 'x' } });
      const [error] = data.createVideoTask.userErrors;
      assert.equal(error.code, 'UPSTREAM_INVALID_REQUEST');
      assert.equal(error.upstream.type, 'invalid_request_error');
      assert.deepEqual(error.field, error.upstream.param ? error.field : ['input']);
    });

    it('keeps the task, FAILED and saying so, when the provider never confirmed the submission', async () => {
      h.sandbox!.setFaults({ dropRate: 1 });
      try {
        const { data } = await h.gql(CREATE, { input: { model: 'seedance-2', prompt: 'dropped' } });
        assert.equal(data.createVideoTask.task.status, 'FAILED');
        assert.equal(data.createVideoTask.task.error.code, 'SUBMISSION_UNCONFIRMED');
        assert.equal(data.createVideoTask.userErrors[0].code, 'UPSTREAM_UNAVAILABLE');
      } finally {
        h.sandbox!.setFaults({ dropRate: 0 });
      }
    });
  });

  describe('reading tasks', () => {
    it('videoTask and node return a created task by its global id; unknown ids are null', async () => {
      const { data } = await h.gql(CREATE, { input: { model: 'seedance-2', prompt: 'read me back' } });
      const id = data.createVideoTask.task.id;
      const read = await h.gql(`query($id: ID!) { videoTask(id: $id) { id prompt duration aspectRatio } node(id: $id) { id ... on VideoTask { model } } }`, { id });
      assert.deepEqual(read.data.videoTask, { id, prompt: 'read me back', duration: 5, aspectRatio: '16:9' });
      assert.deepEqual(read.data.node, { id, model: 'seedance-2' });
      const unknown = Buffer.from('VideoTask:00000000-0000-0000-0000-000000000000').toString('base64');
      const missing = await h.gql(`query($id: ID!) { videoTask(id: $id) { id } }`, { id: unknown });
      assert.equal(missing.data.videoTask, null);
    });

    it('videoTasks pages newest first with stable cursors, forwards and backwards', async () => {
      const all = await h.gql(`{ videoTasks(first: 100) { edges { node { id createdAt } } } }`);
      const ids: string[] = all.data.videoTasks.edges.map((e: { node: { id: string } }) => e.node.id);
      assert.ok(ids.length >= 8);
      const times = all.data.videoTasks.edges.map((e: { node: { createdAt: string } }) => Date.parse(e.node.createdAt));
      assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');

      const seen: string[] = [];
      let cursor: string | null = null;
      for (;;) {
        const page: any = await h.gql(`query($after: String) { videoTasks(first: 3, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, { after: cursor });
        seen.push(...page.data.videoTasks.edges.map((e: { node: { id: string } }) => e.node.id));
        if (!page.data.videoTasks.pageInfo.hasNextPage) break;
        cursor = page.data.videoTasks.pageInfo.endCursor;
      }
      assert.deepEqual(seen, ids);

      const tail = await h.gql(`{ videoTasks(last: 2) { edges { node { id } } pageInfo { hasPreviousPage } } }`);
      assert.deepEqual(tail.data.videoTasks.edges.map((e: { node: { id: string } }) => e.node.id), ids.slice(-2));
      assert.equal(tail.data.videoTasks.pageInfo.hasPreviousPage, true);
    });

    it('videoTasks filters by status and model', async () => {
      const failed = await h.gql(`{ videoTasks(first: 50, filter: { status: [FAILED] }) { edges { node { status } } } }`);
      assert.ok(failed.data.videoTasks.edges.length >= 1);
      assert.ok(failed.data.videoTasks.edges.every((e: { node: { status: string } }) => e.node.status === 'FAILED'));
      const byModel = await h.gql(`{ videoTasks(first: 50, filter: { model: ["doubao-seedance-2.0"] }) { edges { node { model } } } }`);
      assert.deepEqual(byModel.data.videoTasks.edges.map((e: { node: { model: string } }) => e.node.model), ['doubao-seedance-2.0']);
    });

    it('refuses a cursor it did not make, typed', async () => {
      const { errors } = await h.gql(`{ videoTasks(first: 2, after: "bm9wZQ") { edges { cursor } } }`);
      assert.equal(errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    });
  });

  describe('videoModels', () => {
    it('lists all six models with what each accepts', async () => {
      const { data } = await h.gql(`{ videoModels { id providers promptRequired duration { min max default }
        aspectRatio { values default withImage { values default } } resolution { values default notWithReference }
        imageRoles referenceVideos { max } generateAudio returnLastFrame seed { min max } acceptsAssetUrls } }`);
      assert.deepEqual(data.videoModels.map((m: { id: string }) => m.id), VIDEO_MODELS.map((m) => m.id));
      const quality = data.videoModels.find((m: { id: string }) => m.id === 'doubao-seedance-1-0-pro-quality');
      assert.deepEqual(quality.imageRoles, ['FIRST_FRAME', 'LAST_FRAME', 'REFERENCE']);
      assert.deepEqual(quality.resolution, { values: ['480p', '720p', '1080p'], default: '720p', notWithReference: ['1080p'] });
      assert.deepEqual(quality.seed, { min: -1, max: 4294967295 });
      assert.deepEqual(quality.providers, ['sandbox']);
      const odkkk = data.videoModels.find((m: { id: string }) => m.id === 'doubao-seedance-1.0-pro-fast');
      assert.equal(odkkk.aspectRatio.withImage.default, 'adaptive');
      assert.equal(odkkk.resolution.default, '1080p');
      const multimodal = data.videoModels.find((m: { id: string }) => m.id === 'doubao-seedance-2.0');
      assert.equal(multimodal.promptRequired, 'WITHOUT_MEDIA');
      assert.equal(multimodal.generateAudio, true);
    });
  });

  describe('errors', () => {
    it('masks unexpected errors', async () => {
      const broken = await startHarness();
      try {
        broken.app.db.$client.exec('DROP TABLE video_tasks');
        const { errors } = await broken.gql(`{ videoTasks(first: 1) { edges { cursor } } }`);
        assert.equal(errors?.[0]?.message, 'Unexpected error.');
        assert.doesNotMatch(JSON.stringify(errors), /video_tasks|SQLITE/);
      } finally {
        await broken.stop();
      }
    });
  });
});

describe('with no provider key', () => {
  it('serves every model through the built-in sandbox on the same server', async () => {
    const h = await startHarness({ embeddedSandbox: true });
    try {
      for (const model of VIDEO_MODELS) {
        const { data } = await h.gql(CREATE, { input: { model: model.id, ...EXAMPLES[model.id] } });
        assert.deepEqual(data.createVideoTask.userErrors, [], model.id);
        assert.equal(data.createVideoTask.task.provider, 'sandbox');
      }
    } finally {
      await h.stop();
    }
  });
});
