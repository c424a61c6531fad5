// Opens the SQLite file, sets how it behaves, and brings its schema up to date.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.ts';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations');

export interface DatabaseOptions {
  /** How long a writer waits for another (a request and the poller, or two processes). */
  busyTimeoutMs?: number;
}

export function openDatabase(file: string, options: DatabaseOptions = {}): Db {
  if (file !== ':memory:') mkdirSync(dirname(resolve(file)), { recursive: true });
  const sqlite = new Database(file);
  sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  // WAL lets readers (queries, subscriptions) run while the poller writes.
  untilNotRacing(() => sqlite.pragma('journal_mode = WAL'));
  sqlite.pragma('foreign_keys = ON');
  // Durability: in WAL mode NORMAL never corrupts the file but may lose the last commits on power loss;
  // FULL syncs the WAL on every commit, so an accepted task (a paid upstream submission) survives a crash
  // of the machine, not only of the process. The cost is one fsync per write transaction.
  sqlite.pragma('synchronous = FULL');
  const db = drizzle(sqlite, { schema }) as Db;
  untilNotRacing(() => migrate(db, { migrationsFolder: MIGRATIONS_DIR }));
  return db;
}

/**
 * Two processes opening a new file at once race twice: switching to WAL (SQLite answers BUSY at once
 * to two lock upgrades instead of waiting) and migrating (drizzle reads the applied migrations before
 * its transaction, so the slower one re-runs them and fails). Both heal on another try, since the
 * winner's migration commits whole; a real error still surfaces after the last attempt.
 */
function untilNotRacing<T>(step: () => T, attempts = 5): T {
  for (let attempt = 1; ; attempt++) {
    try {
      return step();
    } catch (error) {
      if (attempt >= attempts) throw error;
      // A synchronous pause: opening the database is synchronous start-up work.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 * attempt);
    }
  }
}
