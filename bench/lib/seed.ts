// A database of many finished tasks, written fast: the migrated schema (openDatabase applies the
// migrations), then one transaction of one prepared insert. Rows look like real ones: a normalized
// request, a provider URL for completed tasks, an error for failed ones, newest-first timestamps.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/database.ts';
import { encodeCursor } from '../../src/storage/task-store.ts';
import type { VideoRequest } from '../../src/tasks/video-request.ts';

export interface SeededDatabase {
  dir: string;
  file: string;
  count: number;
  /** Every task id, newest first. */
  ids: string[];
  /** The `after` cursor whose page of `pageSize` rows is the last one (the oldest tasks). */
  lastPageAfter(pageSize: number): string;
  remove(): void;
}

const MODELS = ['seedance-2', 'seedance-2-fast', 'doubao-seedance-1-0-pro-fast', 'doubao-seedance-1-0-pro-quality'];
const PROMPTS = [
  'A lighthouse at dusk, waves breaking on the rocks, slow dolly in',
  'A red fox running through fresh snow, tracking shot, golden hour',
  'Time-lapse of clouds over a mountain lake, reflections, 4k look',
  'A paper boat drifting down a rain-filled street gutter, macro lens',
];

/** A new, migrated, empty database in a temp dir. */
export function emptyDatabase(): { dir: string; file: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-bench-'));
  const file = join(dir, 'tasks.sqlite');
  openDatabase(file).$client.close();
  return { dir, file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Seeds `count` finished tasks (one in ten FAILED) owned by the anonymous principal, into a new temp dir. */
export function seedTasks(count: number): SeededDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'seedance-bench-'));
  const file = join(dir, 'tasks.sqlite');
  const db = openDatabase(file);
  const sqlite = db.$client;
  // Only the seeding is unsafe: a crash here just means seeding again.
  sqlite.pragma('synchronous = OFF');
  const insert = sqlite.prepare(`INSERT INTO video_tasks (
    id, model, provider, request, prompt, upstream_task_id, status, upstream_status, progress, version,
    video_url, expires_at, error_code, error_type, error_message, usage,
    created_at, updated_at, completed_at, owner_id
  ) VALUES (?, ?, 'sandbox', ?, ?, ?, ?, ?, ?, 3, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'anonymous')`);
  const start = Date.UTC(2026, 0, 1);
  const ids: string[] = [];
  const createdAt: number[] = [];
  sqlite.transaction(() => {
    for (let i = 0; i < count; i++) {
      const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
      const model = MODELS[i % MODELS.length]!;
      const prompt = PROMPTS[i % PROMPTS.length]!;
      const request: VideoRequest = {
        model, prompt, duration: 5, aspectRatio: '16:9', resolution: '720p', imageUrls: [], images: [], videos: [],
        audios: [], generateAudio: null, returnLastFrame: false, seed: i % 7 === 0 ? i : null,
      };
      // One task every 30 s, the oldest first; some share a millisecond with the previous one, as
      // concurrent creations do, so the (created_at, id) tie-break is exercised.
      const created = start + i * 30_000 - (i % 50 === 1 ? 30_000 : 0);
      const failed = i % 10 === 9;
      const finished = created + 90_000;
      insert.run(
        id, model, JSON.stringify(request), prompt, `cgt-${created}-${i}`,
        failed ? 'FAILED' : 'COMPLETED', failed ? 'failed' : 'succeeded', failed ? 40 : 100,
        failed ? null : `https://sandbox.example/files/cgt-${i}/video.mp4?expires=${Math.floor(finished / 1000) + 86_400}&sig=${i.toString(36)}`,
        failed ? null : finished + 86_400_000,
        failed ? 'OutputVideoSensitiveContentDetected' : null, failed ? 'BadRequest' : null,
        failed ? 'The generated video may contain sensitive content.' : null,
        JSON.stringify({ billingRule: 'per_second', creditsReserved: 5, userGroup: 'default' }),
        created, finished, finished,
      );
      ids.push(id);
      createdAt.push(created);
    }
  })();
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
  sqlite.close();
  ids.reverse();
  createdAt.reverse();
  return {
    dir,
    file,
    count,
    ids,
    lastPageAfter(pageSize) {
      // Newest first: the last page holds the oldest `pageSize` rows; its `after` is the row before them.
      const index = count - pageSize - 1;
      return encodeCursor({ id: ids[index]!, createdAt: new Date(createdAt[index]!) });
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
