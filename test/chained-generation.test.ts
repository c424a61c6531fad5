// Chained generation: extendVideoTask starts a new task whose first frame is the last frame of a
// completed one, and tasks show their lineage. The catalog decides which models take part.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VIDEO_MODELS } from '../src/tasks/catalog.ts';
import { LAST_FRAME_PNG, eventually, rawId, startMediaApp, type MediaApp } from './support/media-kit.ts';

const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }`;
const EXTEND = `mutation($id: ID!, $input: ExtendVideoTaskInput!) {
  extendVideoTask(id: $id, input: $input) {
    task { id model status imageUrls images { url role } returnLastFrame parent { id } }
    userErrors { field code message }
  }
}`;
const TASK = `query($id: ID!) {
  videoTask(id: $id) {
    id model status returnLastFrame imageUrls videoUrl lastFrameUrl upstreamLastFrameUrl
    archive { status reason }
    parent { id parent { id } }
    children { id children { id } }
  }
}`;

interface Task {
  id: string;
  model: string;
  status: string;
  returnLastFrame: boolean;
  imageUrls: string[];
  videoUrl: string | null;
  lastFrameUrl: string | null;
  upstreamLastFrameUrl: string | null;
  archive: { status: string; reason: string | null } | null;
  parent: { id: string; parent: { id: string } | null } | null;
  children: { id: string; children: { id: string }[] }[];
}

const pathOf = (url: string) => new URL(url).pathname;

describe('extendVideoTask', { concurrency: true }, () => {
  let h: MediaApp;
  let a: string;
  let b: string;

  const create = async (input: Record<string, unknown>, key = a): Promise<string> => {
    const { body } = await h.gql(CREATE, { input: { prompt: 'A paper boat drifting down a gutter', ...input } }, key);
    assert.deepEqual(body.data.createVideoTask.userErrors, [], JSON.stringify(body));
    return body.data.createVideoTask.task.id;
  };
  const extend = async (id: string, input: Record<string, unknown>, key = a) => {
    const { body } = await h.gql(EXTEND, { id, input }, key);
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return body.data.extendVideoTask as { task: Record<string, any> | null; userErrors: { field: string[]; code: string; message: string }[] };
  };
  const read = async (id: string, key = a): Promise<Task> => (await h.gql(TASK, { id }, key)).body.data.videoTask;
  /** Completed, and its result archived (the archived last frame is what the next segment starts from). */
  const archived = (id: string) => eventually(async () => {
    const task = await read(id);
    assert.notEqual(task.status, 'FAILED');
    assert.notEqual(task.archive?.status, 'FAILED', JSON.stringify(task.archive));
    return task.status === 'COMPLETED' && task.archive?.status === 'ARCHIVED' && task;
  }, `task ${rawId(id)} completed and archived`, 15_000);
  const upstreamBody = (taskId: string) => {
    const upstreamId = h.app.tasks.get(rawId(taskId))!.upstreamTaskId!;
    return h.upstream.sandbox.tasks().find((t) => t.id === upstreamId)!.body;
  };

  before(async () => {
    h = await startMediaApp({ env: { ANONYMOUS_ACCESS: 'false' } });
    a = h.app.apiKeys.create('client-a', 'client').key;
    b = h.app.apiKeys.create('client-b', 'client').key;
  });
  after(async () => { await h?.stop(); });

  it('chains two segments from last frames, with parent and children lineage', async () => {
    const rootId = await create({ model: 'doubao-seedance-2.0', returnLastFrame: true });
    const root = await archived(rootId);
    assert.match(root.lastFrameUrl!, /\/media\/archives\/[\w-]+\/last-frame\.png\?expires=/, 'the last frame is archived');

    // Step 1: the child starts on the root's last frame (our archived copy, which outlives the provider's link).
    const first = await extend(rootId, { prompt: 'The boat reaches the river', returnLastFrame: true });
    assert.deepEqual(first.userErrors, []);
    const child = first.task!;
    assert.equal(child.model, 'doubao-seedance-2.0', 'the parent\'s model by default');
    assert.equal(child.parent.id, rootId);
    assert.equal(child.returnLastFrame, true);
    assert.equal(child.imageUrls.length, 1);
    assert.equal(pathOf(child.imageUrls[0]), pathOf(root.lastFrameUrl!));
    const childBody = upstreamBody(child.id);
    assert.deepEqual(childBody.image_urls, child.imageUrls, 'the upstream received the last frame as the image');
    assert.equal(childBody.prompt, 'The boat reaches the river');
    assert.equal(childBody.return_last_frame, true);
    // The URL handed to the provider serves the frame.
    const frame = await fetch((childBody.image_urls as string[])[0]!);
    assert.equal(frame.status, 200);
    assert.equal(frame.headers.get('content-type'), 'image/png');
    assert.ok(Buffer.from(await frame.arrayBuffer()).equals(LAST_FRAME_PNG));

    const childDone = await archived(child.id);

    // Step 2: from the child.
    const second = await extend(child.id, { prompt: 'The river meets the sea', returnLastFrame: true });
    assert.deepEqual(second.userErrors, []);
    const grandchild = second.task!;
    assert.equal(grandchild.parent.id, child.id);
    assert.equal(pathOf(grandchild.imageUrls[0]), `/media/archives/${rawId(child.id)}/last-frame.png`);
    assert.equal(pathOf(grandchild.imageUrls[0]), pathOf(childDone.lastFrameUrl!));
    assert.deepEqual(upstreamBody(grandchild.id).image_urls, grandchild.imageUrls);
    const grandchildDone = await archived(grandchild.id);

    // Lineage, both ways.
    const rootNow = await read(rootId);
    assert.equal(rootNow.parent, null);
    assert.deepEqual(rootNow.children, [{ id: child.id, children: [{ id: grandchild.id }] }]);
    const childNow = await read(child.id);
    assert.deepEqual(childNow.parent, { id: rootId, parent: null });
    assert.deepEqual(childNow.children, [{ id: grandchild.id, children: [] }]);
    assert.deepEqual(grandchildDone.parent, { id: child.id, parent: { id: rootId } });
    assert.deepEqual(grandchildDone.children, []);

    // Another key sees none of it.
    assert.equal(await read(child.id, b), null);
  });

  it('extends onto another model that takes a first frame (images with role FIRST_FRAME)', async () => {
    const rootId = await create({ model: 'doubao-seedance-2.0', returnLastFrame: true });
    const root = await archived(rootId);
    const { task, userErrors } = await extend(rootId, { model: 'seedance-2-fast', prompt: 'Same scene, faster model' });
    assert.deepEqual(userErrors, []);
    assert.equal(task!.model, 'seedance-2-fast');
    assert.deepEqual(task!.imageUrls, []);
    assert.equal(task!.images.length, 1);
    assert.equal(task!.images[0].role, 'FIRST_FRAME');
    assert.equal(pathOf(task!.images[0].url), pathOf(root.lastFrameUrl!));
    assert.deepEqual(upstreamBody(task!.id).image_with_roles, [{ url: task!.images[0].url, role: 'first_frame' }]);
    await archived(task!.id);
  });

  describe('refusals', () => {
    it('NOT_SUPPORTED: a completed task of a model that does not return its last frame', async () => {
      const id = await create({ model: 'seedance-2-fast' });
      await archived(id);
      const { task, userErrors } = await extend(id, { prompt: 'more' });
      assert.equal(task, null);
      assert.equal(userErrors.length, 1);
      assert.deepEqual(userErrors[0]!.field, ['id']);
      assert.equal(userErrors[0]!.code, 'NOT_SUPPORTED');
      assert.match(userErrors[0]!.message, /seedance-2-fast does not return its last frame; models that do: doubao-seedance-2\.0/);
    });

    it('NO_LAST_FRAME: a task created without returnLastFrame', async () => {
      const id = await create({ model: 'doubao-seedance-2.0' });
      const done = await archived(id);
      assert.equal(done.returnLastFrame, false);
      assert.equal(done.lastFrameUrl, null);
      const { task, userErrors } = await extend(id, { prompt: 'more' });
      assert.equal(task, null);
      assert.deepEqual(userErrors.map((e) => e.code), ['NO_LAST_FRAME']);
      assert.match(userErrors[0]!.message, /returnLastFrame/);
    });

    it('NOT_COMPLETED: an unfinished task', async () => {
      // A sandbox running at the seeds' real pace (a minute or more per task), so the task is surely
      // unfinished when extended, however slow this machine is.
      const slow = await startMediaApp({ sandbox: { timeScale: 1 } });
      try {
        const { body } = await slow.gql(CREATE, { input: { model: 'doubao-seedance-2.0', prompt: 'Slowly', returnLastFrame: true } });
        const id = body.data.createVideoTask.task.id as string;
        const extended = (await slow.gql(EXTEND, { id, input: { prompt: 'too soon' } })).body.data.extendVideoTask;
        assert.equal(extended.task, null);
        assert.deepEqual(extended.userErrors.map((e: { code: string }) => e.code), ['NOT_COMPLETED']);
        assert.match(extended.userErrors[0].message, /The task is (QUEUED|IN_PROGRESS); only a completed task can be extended/);
      } finally {
        await slow.stop();
      }
    });

    it('NOT_FOUND: another key\'s task (and an unknown one)', async () => {
      const id = await create({ model: 'doubao-seedance-2.0', returnLastFrame: true }, b);
      await eventually(async () => (await read(id, b)).archive?.status === 'ARCHIVED', 'B\'s task archived', 15_000);
      const theirs = await extend(id, { prompt: 'not mine' }, a);
      assert.equal(theirs.task, null);
      assert.deepEqual(theirs.userErrors.map((e) => e.code), ['NOT_FOUND']);
      const children = h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks WHERE parent_task_id = ?').get(rawId(id)) as { n: number };
      assert.equal(children.n, 0, 'no child was made');
      const unknown = await extend(Buffer.from('VideoTask:00000000-0000-0000-0000-000000000000').toString('base64'), { prompt: 'x' }, a);
      assert.deepEqual(unknown.userErrors.map((e) => e.code), ['NOT_FOUND']);
      // The owner may.
      const mine = await extend(id, { prompt: 'mine' }, b);
      assert.deepEqual(mine.userErrors, []);
      await eventually(async () => (await read(mine.task!.id, b)).archive?.status === 'ARCHIVED', 'B\'s child archived', 15_000);
    });

    it('UNKNOWN_MODEL, and the catalog: every model can start from an image, so no extend is refused for want of one', async () => {
      const id = await create({ model: 'doubao-seedance-2.0', returnLastFrame: true });
      await archived(id);
      const unknown = await extend(id, { model: 'no-such-model', prompt: 'x' });
      assert.deepEqual(unknown.userErrors.map((e) => [e.code, e.field]), [['UNKNOWN_MODEL', ['input', 'model']]]);
      // extend() refuses a target model that takes neither `image_urls` nor a FIRST_FRAME role with
      // NOT_SUPPORTED ("cannot start from an image"). No model in today's catalog is like that, so that
      // refusal cannot be reached through the API; this asserts the catalog fact, so that a model added
      // without image input makes this test ask for that case.
      const withoutFirstFrame = VIDEO_MODELS.filter((m) => !m.imageUrls && !m.imageRoles?.FIRST_FRAME).map((m) => m.id);
      assert.deepEqual(withoutFirstFrame, []);
      // Only models that return their last frame can be extended from.
      assert.deepEqual(VIDEO_MODELS.filter((m) => m.returnLastFrame).map((m) => m.id), ['doubao-seedance-2.0']);
    });
  });
});
