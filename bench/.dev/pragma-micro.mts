import Database from 'better-sqlite3';
import { seedTasks } from '../lib/seed.ts';
import { decodeCursor } from '../../src/storage/task-store.ts';
const seeded = seedTasks(100_000);
const after = decodeCursor(seeded.lastPageAfter(20))!;
const configs: [string, string[]][] = [['default', []], ['cache 64MB', ['cache_size = -65536']], ['mmap 256MB', ['mmap_size = 268435456']], ['both', ['cache_size = -65536', 'mmap_size = 268435456']]];
const dbs = configs.map(([name, pragmas]) => { const d = new Database(seeded.file); d.pragma('journal_mode = WAL'); for (const p of pragmas) d.pragma(p); return { name, list: d.prepare('SELECT * FROM video_tasks WHERE owner_id = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?'), first: d.prepare('SELECT * FROM video_tasks WHERE owner_id = ? ORDER BY created_at DESC, id DESC LIMIT ?'), get: d.prepare('SELECT * FROM video_tasks WHERE id = ?') }; });
const N = 3000;
for (let round = 0; round < 3; round++) for (const d of dbs) {
  let t = performance.now(); for (let i = 0; i < N; i++) d.list.all('anonymous', after.createdAt, after.id, 21); const a = (performance.now() - t) / N;
  t = performance.now(); for (let i = 0; i < N; i++) d.first.all('anonymous', 21); const b = (performance.now() - t) / N;
  t = performance.now(); for (let i = 0; i < N * 3; i++) d.get.get(seeded.ids[(i * 37) % 100000]!); const c = (performance.now() - t) / N / 3;
  console.log(d.name.padEnd(12), `last page ${(a*1000).toFixed(0)} µs, first page ${(b*1000).toFixed(0)} µs, get ${(c*1000).toFixed(1)} µs`);
}
seeded.remove();
