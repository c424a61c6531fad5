// The task store's hot path (get, updateRow) decodes rows itself instead of through drizzle, and
// returns the updated row without reading it back: it must give exactly what drizzle reads.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { openDatabase, type Db } from '../src/storage/database.ts';
import { videoTasks, type NewVideoTaskRow, type VideoTaskRow } from '../src/storage/schema.ts';
import { TaskStore } from '../src/storage/task-store.ts';
import { validateCreateVideoTask } from '../src/tasks/validation.ts';

const validated = validateCreateVideoTask({ model: 'seedance-2-fast', prompt: 'A codec "test" \u00e9\u{1F600}' });
if (!validated.ok) throw new Error('the test request is invalid');
const at = (ms: number) => new Date(Date.UTC(2025, 0, 1) + ms);

/** A row with every column set (no nulls, no defaults). */
const FULL: NewVideoTaskRow = {
  id: 'full', model: validated.model.id, provider: 'sandbox', request: validated.request, prompt: 'p',
  upstreamTaskId: 'u', status: 'COMPLETED', upstreamStatus: 'succeeded', progress: 100, version: 7,
  videoUrl: 'https://v', lastFrameUrl: 'https://f', expiresAt: at(1), errorCode: 'E', errorType: 't',
  errorMessage: 'm', errorParam: 'x', errorFallbackSuggestion: 's', estimatedTimeSeconds: 12,
  usage: { billingRule: 'b', creditsReserved: 1.5, userGroup: null }, createdAt: at(2), updatedAt: at(3),
  completedAt: at(4), nextPollAt: at(5), leaseOwner: 'o', leaseExpiresAt: at(6), submissionAttemptedAt: at(7),
  pollFailures: 2, lastPollError: 'l', callbackTokenHash: 'h', ownerId: 'k', idempotencyKey: 'i',
  requestFingerprint: 'r', requestId: 'q', archiveStatus: 'ARCHIVED', archiveError: 'a', archiveAttempts: 3,
  archiveNextAt: at(8), archivedAt: at(9), archivedVideoKey: 'vk', archivedLastFrameKey: 'fk',
  archivedVideoBytes: 1234, archivedVideoSha256: 'sha', parentTaskId: null,
};

/** A row with only what is required: the rest null or defaulted. */
const SPARSE: NewVideoTaskRow = {
  id: 'sparse', model: validated.model.id, provider: 'sandbox', request: validated.request,
  status: 'QUEUED', createdAt: at(0), updatedAt: at(0),
};

describe('task rows on the hot path', () => {
  let dir: string;
  let db: Db;
  let store: TaskStore;
  const drizzleRow = (id: string): VideoTaskRow => db.select().from(videoTasks).where(eq(videoTasks.id, id)).get()!;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'seedance-codec-'));
    db = openDatabase(join(dir, 'tasks.sqlite'));
    store = new TaskStore(db);
    store.insert(FULL);
    store.insert(SPARSE);
  });
  after(() => {
    db.$client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a row as drizzle does, every column set or null', () => {
    for (const id of ['full', 'sparse']) assert.deepStrictEqual(store.get(id), drizzleRow(id));
    assert.equal(store.get('missing'), undefined);
  });

  it('returns from an update the row drizzle then reads', () => {
    const changes: Partial<VideoTaskRow>[] = [
      { progress: 55, upstreamStatus: 'running', nextPollAt: at(100), lastPollError: null, pollFailures: 0 },
      // Values equal to the stored ones (a poll repeating the row) and values that read back otherwise.
      { status: 'COMPLETED', expiresAt: at(1), usage: { billingRule: 'b', creditsReserved: 1.5, userGroup: null } },
      { usage: { billingRule: null, creditsReserved: undefined as never, userGroup: 'g' }, completedAt: null, version: 8 },
      { leaseOwner: null, leaseExpiresAt: null, archiveStatus: null, parentTaskId: 'full' },
      {},
    ];
    for (const id of ['full', 'sparse']) {
      for (const patch of changes) {
        const returned = store.transaction(() => store.updateRow(store.get(id)!, patch));
        assert.deepStrictEqual(returned, drizzleRow(id));
      }
    }
  });
});
