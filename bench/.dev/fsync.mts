import { openDatabase } from '../../src/storage/database.ts';
import { mkdtempSync } from 'node:fs'; import { tmpdir } from 'node:os'; import { join } from 'node:path';
const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'fs-')), 'x.sqlite'));
const s = db.$client; s.exec('create table t (a integer primary key, b text)');
const ins = s.prepare('insert into t (b) values (?)');
for (const mode of ['FULL', 'NORMAL']) { s.pragma(`synchronous = ${mode}`); const t0 = performance.now(); for (let i = 0; i < 500; i++) ins.run('x'.repeat(500)); console.log(mode, ((performance.now() - t0) / 500).toFixed(3), 'ms per commit'); }
