import { openDatabase } from '../../src/storage/database.ts';
import { TaskStore, decodeCursor } from '../../src/storage/task-store.ts';
import { videoTasks } from '../../src/storage/schema.ts';
import { seedTasks } from '../lib/seed.ts';
import { and, desc, eq, sql } from 'drizzle-orm';
const seeded = seedTasks(100_000);
const db = openDatabase(seeded.file);
const store = new TaskStore(db);
const after = decodeCursor(seeded.lastPageAfter(20))!;
const prepared = db.select().from(videoTasks).where(and(eq(videoTasks.ownerId, sql.placeholder('owner')), sql`(${videoTasks.createdAt}, ${videoTasks.id}) < (${sql.placeholder('c')}, ${sql.placeholder('i')})`)).orderBy(desc(videoTasks.createdAt), desc(videoTasks.id)).limit(sql.placeholder('limit')).prepare();
const rawStmt = db.$client.prepare('SELECT * FROM video_tasks WHERE owner_id = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?');
const byIdRaw = db.$client.prepare('SELECT * FROM video_tasks WHERE id = ?');
const N = 3000;
for (let round = 0; round < 3; round++) {
  let t = performance.now(); for (let i = 0; i < N; i++) store.list({ ownerId: "anonymous", after, limit: 21 }); const a = (performance.now() - t) / N;
  t = performance.now(); for (let i = 0; i < N; i++) prepared.all({ owner: 'anonymous', c: after.createdAt, i: after.id, limit: 21 }); const b = (performance.now() - t) / N;
  t = performance.now(); for (let i = 0; i < N; i++) rawStmt.all('anonymous', after.createdAt, after.id, 21); const c = (performance.now() - t) / N;
  t = performance.now(); for (let i = 0; i < N; i++) store.list({ ownerId: 'anonymous', limit: 21 }); const d = (performance.now() - t) / N;
  t = performance.now(); for (let i = 0; i < N; i++) store.get(seeded.ids[(i * 37) % 100000]!); const e = (performance.now() - t) / N;
  t = performance.now(); for (let i = 0; i < N; i++) byIdRaw.get(seeded.ids[(i * 37) % 100000]!); const f = (performance.now() - t) / N;
  console.log(`list(after) drizzle ${(a*1000).toFixed(0)} µs, prepared drizzle ${(b*1000).toFixed(0)} µs, raw ${(c*1000).toFixed(0)} µs; first page drizzle ${(d*1000).toFixed(0)} µs; get prepared drizzle ${(e*1000).toFixed(1)} µs raw ${(f*1000).toFixed(1)} µs`);
}
console.log(db.$client.prepare('EXPLAIN QUERY PLAN SELECT * FROM video_tasks WHERE owner_id = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?').all('anonymous', 1, 'x', 21));
console.log(db.$client.prepare("EXPLAIN QUERY PLAN SELECT count(*) FROM video_tasks WHERE owner_id = ? AND next_poll_at IS NOT NULL").all('anonymous'));
seeded.remove();
