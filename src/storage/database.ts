// Opens the SQLite file, sets how it behaves, and brings its schema up to date.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { walDurability, type Durability } from './durability.ts';
import * as schema from './schema.ts';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations');

export interface DatabaseOptions {
  /** How long a writer waits for another (a request and the poller, or two processes). */
  busyTimeoutMs?: number;
}

/**
 * The database as tools, scripts and benchmarks use it: every commit is durable when it returns.
 * SQLite syncs the WAL before each commit returns (synchronous=FULL), blocking the thread for the disk.
 */
export function openDatabase(file: string, options: DatabaseOptions = {}): Db {
  return open(file, options, 'FULL');
}

/**
 * The database as the service uses it: commits return without waiting for the disk, and become
 * durable when `durability.sync()` resolves (one fsync of the WAL, off the event loop, shared by every
 * caller waiting at once: see durability.ts). Whatever must survive a machine crash awaits it: the row
 * of a submission before its request leaves, and what a mutation answers before the client reads it.
 * Writes nobody waits for (poll results, archive records) are durable at the next sync or checkpoint;
 * a machine crash may lose the last of them, which the poller and archiver learn again.
 */
export function openGroupCommitDatabase(file: string, options: DatabaseOptions = {}): { db: Db; durability: Durability } {
  const db = open(file, options, 'NORMAL');
  try {
    return { db, durability: walDurability(file) };
  } catch (error) {
    db.$client.close();
    throw error;
  }
}

function open(file: string, options: DatabaseOptions, synchronous: 'FULL' | 'NORMAL'): Db {
  if (file !== ':memory:') mkdirSync(dirname(resolve(file)), { recursive: true });
  const sqlite = new Database(file);
  sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  // WAL lets readers (queries, subscriptions) run while the poller writes.
  untilNotRacing(() => sqlite.pragma('journal_mode = WAL'));
  sqlite.pragma('foreign_keys = ON');
  // In WAL mode neither setting can corrupt the file on power loss. FULL syncs the WAL before every
  // commit returns. NORMAL syncs it only before a checkpoint (and the database file after one, and the
  // WAL header when the WAL is reused), so the last commits may be lost on power loss until someone
  // syncs the WAL: openGroupCommitDatabase's durability does.
  sqlite.pragma(`synchronous = ${synchronous}`);
  const db = drizzle(sqlite, { schema }) as Db;
  // The migration reads (and may write) the database, so the -wal file exists afterwards.
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
