import { openDatabase } from '../../src/storage/database.ts';
import { TaskStore } from '../../src/storage/task-store.ts';
import { emptyDatabase } from '../lib/seed.ts';
const d = emptyDatabase(); const db = openDatabase(d.file); db.$client.pragma('synchronous = OFF');
const store = new TaskStore(db);
const ins = db.$client.prepare(`INSERT INTO video_tasks (id, model, provider, request, status, created_at, updated_at, next_poll_at, owner_id) VALUES (?, 'm', 'sandbox', '{"model":"m","prompt":"a lighthouse at dusk with waves on the rocks","duration":5}', 'QUEUED', ?, ?, ?, 'anonymous')`);
let n = 0;
const bounded = db.$client.prepare('SELECT count(*) AS n FROM (SELECT 1 FROM video_tasks WHERE owner_id = ? AND next_poll_at IS NOT NULL LIMIT ?)');
for (const target of [1000, 5000, 20000]) {
  db.$client.transaction(() => { for (; n < target; n++) ins.run(`id-${n}`, n, n, n + 1e12); })();
  let t = performance.now(); for (let i = 0; i < 200; i++) store.countUnfinished('anonymous'); const a = (performance.now() - t) / 200 * 1000;
  db.$client.exec('CREATE INDEX IF NOT EXISTS x_owner_unfinished ON video_tasks (owner_id) WHERE next_poll_at IS NOT NULL');
  const s2 = new TaskStore(db);
  t = performance.now(); for (let i = 0; i < 200; i++) s2.countUnfinished('anonymous'); const b = (performance.now() - t) / 200 * 1000;
  t = performance.now(); for (let i = 0; i < 200; i++) bounded.get('anonymous', 20); const c = (performance.now() - t) / 200 * 1000;
  console.log(target, `count now ${a.toFixed(0)} µs; with partial index ${b.toFixed(0)} µs; bounded at 20 ${c.toFixed(1)} µs`);
  db.$client.exec('DROP INDEX x_owner_unfinished');
}
console.log(db.$client.prepare('EXPLAIN QUERY PLAN SELECT count(*) FROM video_tasks WHERE owner_id = ? AND next_poll_at IS NOT NULL').all('a'));
d.remove();
