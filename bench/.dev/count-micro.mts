import { openDatabase } from '../../src/storage/database.ts';
import { TaskStore } from '../../src/storage/task-store.ts';
import { emptyDatabase } from '../lib/seed.ts';
const d = emptyDatabase(); const db = openDatabase(d.file); db.$client.pragma('synchronous = OFF');
const store = new TaskStore(db);
const ins = db.$client.prepare(`INSERT INTO video_tasks (id, model, provider, request, status, created_at, updated_at, next_poll_at, owner_id) VALUES (?, 'm', 'sandbox', '{}', 'QUEUED', ?, ?, ?, 'anonymous')`);
let n = 0;
for (const target of [100, 1000, 5000, 20000]) {
  db.$client.transaction(() => { for (; n < target; n++) ins.run(`id-${n}`, n, n, n + 1e12); })();
  const t = performance.now(); for (let i = 0; i < 200; i++) store.countUnfinished('anonymous'); console.log(target, 'unfinished:', ((performance.now() - t) / 200 * 1000).toFixed(0), 'µs per count');
}
d.remove();
