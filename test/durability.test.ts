// Group commit: the service's commits return without waiting for the disk (synchronous=NORMAL), and
// whoever needs them durable awaits sync(), one fsync of the WAL shared by everybody waiting at once.
// The flush is injected, so these specifications count fsyncs and decide when each one ends.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openDatabase, openGroupCommitDatabase } from '../src/storage/database.ts';
import { GroupCommit, walDurability } from '../src/storage/durability.ts';

/** A flush whose every call waits until the test ends it. */
function heldFlush() {
  const calls: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  return {
    calls,
    flush: () => new Promise<void>((resolve, reject) => { calls.push({ resolve, reject }); }),
    /** Ends flush number `n` (0-based) and lets the promise callbacks it triggers run. */
    async end(n: number, error?: Error) {
      if (error) calls[n]!.reject(error);
      else calls[n]!.resolve();
      await settle();
    },
  };
}

/** Lets pending promise callbacks (and the next flush's start) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Records when a promise settles, without awaiting it. */
function track(promise: Promise<void>) {
  const state = { done: false, error: undefined as unknown };
  promise.then(() => { state.done = true; }, (error: unknown) => { state.done = true; state.error = error; });
  return state;
}

describe('group commit (GroupCommit over an injected fsync)', () => {
  it('a caller with no fsync running starts one and resolves when it ends', async () => {
    const disk = heldFlush();
    const durability = new GroupCommit({ flush: disk.flush });
    const caller = track(durability.sync());
    await settle();
    assert.equal(disk.calls.length, 1);
    assert.equal(caller.done, false, 'not before the fsync ends');
    await disk.end(0);
    assert.equal(caller.done, true);
    assert.equal(caller.error, undefined);
  });

  it('a caller arriving while an fsync runs waits for the next one, which starts when the running one ends', async () => {
    const disk = heldFlush();
    const durability = new GroupCommit({ flush: disk.flush });
    const first = track(durability.sync());
    await settle();
    const late = track(durability.sync());
    await settle();
    assert.equal(disk.calls.length, 1, 'no second fsync while one runs');
    await disk.end(0);
    assert.equal(first.done, true);
    assert.equal(late.done, false, 'the fsync it arrived during may not cover its commit');
    assert.equal(disk.calls.length, 2, 'the next fsync started when the first ended');
    await disk.end(1);
    assert.equal(late.done, true);
  });

  it('everybody arriving during one fsync shares the next: 1 + 50 callers, 2 fsyncs', async () => {
    const disk = heldFlush();
    const durability = new GroupCommit({ flush: disk.flush });
    const callers = [track(durability.sync())];
    for (let i = 0; i < 50; i++) callers.push(track(durability.sync()));
    await settle();
    await disk.end(0);
    await disk.end(1);
    assert.equal(disk.calls.length, 2);
    assert.ok(callers.every((caller) => caller.done && caller.error === undefined));
    // Idle again: the next caller starts a third.
    const again = track(durability.sync());
    await settle();
    assert.equal(disk.calls.length, 3);
    await disk.end(2);
    assert.equal(again.done, true);
  });

  it('a failed fsync fails its waiters and the ones queued behind it, and every later sync: which commits reached the disk is unknown', async () => {
    const disk = heldFlush();
    const durability = new GroupCommit({ flush: disk.flush });
    const first = [track(durability.sync())];
    await settle();
    const queued = [track(durability.sync()), track(durability.sync())];
    assert.equal(durability.healthy(), true);
    const failure = new Error('EIO: i/o error, fsync');
    await disk.end(0, failure);
    for (const caller of [...first, ...queued]) assert.equal(caller.error, failure);
    assert.equal(disk.calls.length, 1, 'no fsync after a failed one');
    await assert.rejects(durability.sync(), failure);
    assert.equal(durability.healthy(), false, 'reported (/readyz) until a restart');
  });

  it('a waiter of a successful fsync is not failed by a later one', async () => {
    const disk = heldFlush();
    const durability = new GroupCommit({ flush: disk.flush });
    const first = track(durability.sync());
    await settle();
    const second = track(durability.sync());
    await disk.end(0);
    await disk.end(1, new Error('EIO'));
    assert.equal(first.error, undefined);
    assert.ok(second.error instanceof Error);
  });

  it('close waits for the fsync running and the one queued, then lets go of the file; a later sync fails', async () => {
    const disk = heldFlush();
    let released = 0;
    const durability = new GroupCommit({ flush: disk.flush, release: async () => { released++; } });
    const first = track(durability.sync());
    await settle();
    const queued = track(durability.sync());
    const closed = track(durability.close());
    await disk.end(0);
    assert.equal(closed.done, false);
    await disk.end(1);
    await settle();
    assert.deepEqual([first.done, queued.done, closed.done, released], [true, true, true, 1]);
    assert.equal(queued.error, undefined);
    await assert.rejects(durability.sync(), /closed/);
  });

  it('an in-memory database has nothing to sync', async () => {
    const durability = walDurability(':memory:');
    await durability.sync();
    await durability.close();
  });
});

describe('the service database (openGroupCommitDatabase) on a real file', () => {
  // Real path: /proc reports descriptors by it.
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'seedance-durability-')));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Descriptors of this process open on `path` (Linux); null where /proc is not there to ask. */
  const descriptorsOn = (path: string) => existsSync('/proc/self/fd')
    ? readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`) === path; } catch { return false; } }).length
    : null;

  it('commits without syncing (synchronous=NORMAL, WAL); sync() fsyncs a descriptor of the -wal file, across a truncating checkpoint', async () => {
    const file = join(dir, 'group.sqlite');
    const { db, durability } = openGroupCommitDatabase(file);
    assert.equal(db.$client.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.$client.pragma('synchronous', { simple: true }), 1);
    const held = descriptorsOn(`${file}-wal`);
    if (held !== null) assert.equal(held, 2, "SQLite's descriptor of the WAL, and the durability's");
    db.$client.exec('CREATE TABLE notes (text TEXT)');
    db.$client.prepare('INSERT INTO notes VALUES (?)').run('before the first sync');
    await Promise.all([durability.sync(), durability.sync(), durability.sync()]);
    // A checkpoint truncates the WAL in place; the same file keeps growing after it.
    db.$client.pragma('wal_checkpoint(TRUNCATE)');
    db.$client.prepare('INSERT INTO notes VALUES (?)').run('after a truncating checkpoint');
    await durability.sync();
    await durability.close();
    if (held !== null) assert.equal(descriptorsOn(`${file}-wal`), 1, 'close let go of it');
    db.$client.pragma('wal_checkpoint(TRUNCATE)');
    db.$client.close();
    assert.equal(existsSync(`${file}-wal`), false, 'the last connection removed the WAL');
    const reopened = openDatabase(file);
    assert.deepEqual(reopened.$client.prepare('SELECT count(*) AS n FROM notes').get(), { n: 2 });
    reopened.$client.close();
  });

  it('openDatabase (tools, scripts) still syncs every commit (synchronous=FULL)', () => {
    const db = openDatabase(join(dir, 'full.sqlite'));
    assert.equal(db.$client.pragma('synchronous', { simple: true }), 2);
    db.$client.close();
  });

  it('an in-memory database opens with a durability that has nothing to do', async () => {
    const { db, durability } = openGroupCommitDatabase(':memory:');
    await durability.sync();
    await durability.close();
    db.$client.close();
  });
});
