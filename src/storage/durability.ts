// Makes the commits so far durable. The service's connection runs with synchronous=NORMAL (see
// database.ts): a commit appends to the WAL without waiting for the disk, and whoever must not answer
// (or send a paid request) before a commit is on stable storage awaits sync(). One fdatasync of the
// -wal file, on libuv's threadpool rather than the event loop, covers every commit made before it
// started, so everybody waiting at once shares one (group commit).
import { close, fdatasync, openSync } from 'node:fs';
import { promisify } from 'node:util';

export interface Durability {
  /** Resolves once every commit made before the call is on stable storage. */
  sync(): Promise<void>;
  /** Waits for the fsync in flight and lets go of the file; a later sync() fails. */
  close(): Promise<void>;
  /** False once a sync has failed: from then on every sync() fails (see GroupCommit), until a restart. */
  healthy(): boolean;
}

interface Waiters {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((ok, fail) => { resolve = ok; reject = fail; });
  return { promise, resolve, reject };
}

/**
 * Group commit over a flush (fsync) function. A caller arriving while no flush runs starts one; a caller
 * arriving while one runs waits for the next, which starts when the running one ends: the running one
 * may have begun before the caller's commit. Everybody arriving meanwhile shares that next flush.
 *
 * A failed flush fails its waiters, and every later sync() too: after a failed fsync the kernel may
 * have dropped the unwritten pages and a later fsync can succeed without them, so which commits reached
 * the disk is unknown until a restart (SQLite's recovery then reads what the disk really holds).
 */
export class GroupCommit implements Durability {
  private running: Promise<void> | null = null;
  /** The waiters of the flush that starts when the running one ends. */
  private next: Waiters | null = null;
  private failure: { error: unknown } | null = null;
  private closed = false;

  constructor(private readonly deps: { flush: () => Promise<void>; release?: () => Promise<void> }) {}

  healthy(): boolean {
    return this.failure === null;
  }

  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.closed) return Promise.reject(new Error('the database is closed'));
    if (!this.running) return this.start();
    this.next ??= waiters();
    return this.next.promise;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The queued flush still runs (its waiters committed before close): settle both, then let go.
    while (this.running) await this.running.catch(() => undefined);
    await this.deps.release?.();
  }

  private start(): Promise<void> {
    const flush = (async () => this.deps.flush())();
    const running: Promise<void> = flush.then(
      () => this.finished(running),
      (error: unknown) => {
        this.failure ??= { error };
        this.finished(running);
        throw error;
      },
    );
    this.running = running;
    return running;
  }

  private finished(running: Promise<void>): void {
    if (this.running !== running) return;
    this.running = null;
    const next = this.next;
    this.next = null;
    if (!next) return;
    if (this.failure) next.reject(this.failure.error);
    else this.start().then(next.resolve, next.reject);
  }
}

/** Nothing to make durable: an in-memory database, or one whose every commit syncs (synchronous=FULL). */
export const ALREADY_DURABLE: Durability = {
  sync: () => Promise.resolve(),
  close: () => Promise.resolve(),
  healthy: () => true,
};

/**
 * Group commit of the WAL of `file`, which must be open in WAL mode (the -wal file exists while a
 * connection has the database open). The descriptor stays valid across the WAL's life: a checkpoint
 * truncates it or restarts it from its start, in place (same inode); it is deleted only when the last
 * connection closes, after ours (close() first). Syncing this descriptor flushes the inode's pages,
 * whichever descriptor SQLite wrote them through; the directory entry of a new -wal file is synced by
 * SQLite itself (it syncs the header, and with it the directory, when a WAL starts).
 */
export function walDurability(file: string): Durability {
  if (file === ':memory:' || file === '') return ALREADY_DURABLE;
  // Read-write: syncing a read-only descriptor is refused on some systems. Neither creates nor truncates.
  const fd = openSync(`${file}-wal`, 'r+');
  // fdatasync: the frames and the file's size, all a WAL needs to be read back, but not its times. The
  // WAL is mostly rewritten in place (it restarts after each checkpoint), and there fsync's update of
  // the modification time cost a filesystem journal commit per sync: about a fifth of the create
  // throughput at 50 ms upstream latency on ext4 (bench/create.ts). libuv runs fdatasync(2) on Linux,
  // F_FULLFSYNC on macOS (whose fsync does not reach the disk) and fsync elsewhere. (This SQLite build
  // calls fsync for its own syncs: its authors do not trust every system's fdatasync; Linux's is sound.)
  const syncFd = promisify(fdatasync);
  const closeFd = promisify(close);
  return new GroupCommit({ flush: () => syncFd(fd), release: () => closeFd(fd) });
}
