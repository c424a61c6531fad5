// Reads and writes video task rows. Lookups by id are prepared once: unprepared drizzle
// queries were about 10x slower on this path.
import { and, asc, desc, eq, inArray, isNotNull, isNull, lte, or, sql, type SQL } from 'drizzle-orm';
import type { VideoTaskStatus } from '../tasks/status.ts';
import type { Db } from './database.ts';
import { videoTasks, type NewVideoTaskRow, type VideoTaskRow } from './schema.ts';

/** A position in the newest-first order: (created_at, id) is unique and never changes. */
export interface TaskCursor {
  createdAt: number;
  id: string;
}

export interface TaskListQuery {
  /** Only this owner's tasks; null or absent for every owner. */
  ownerId?: string | null;
  statuses?: readonly VideoTaskStatus[] | null;
  models?: readonly string[] | null;
  /** Rows strictly older than this cursor. */
  after?: TaskCursor | null;
  /** Rows strictly newer than this cursor. */
  before?: TaskCursor | null;
  limit: number;
  /** Walk from the oldest end (for `last`); rows come back oldest first. */
  inverted?: boolean;
}

export type TaskPatch = Partial<Omit<NewVideoTaskRow, 'id' | 'createdAt'>>;

export class TaskStore {
  private readonly byId;
  private readonly deleteById;
  private readonly byIdempotencyKey;
  private readonly unfinishedOf;

  constructor(readonly db: Db) {
    this.byId = db.select().from(videoTasks).where(eq(videoTasks.id, sql.placeholder('id'))).prepare();
    this.deleteById = db.delete(videoTasks).where(eq(videoTasks.id, sql.placeholder('id'))).prepare();
    this.byIdempotencyKey = db.select().from(videoTasks).where(and(
      eq(videoTasks.ownerId, sql.placeholder('ownerId')),
      eq(videoTasks.idempotencyKey, sql.placeholder('key')),
    )).prepare();
    // Unfinished tasks are the ones the poller still has a next-poll time for.
    this.unfinishedOf = db.select({ n: sql<number>`count(*)` }).from(videoTasks).where(and(
      eq(videoTasks.ownerId, sql.placeholder('ownerId')),
      isNotNull(videoTasks.nextPollAt),
    )).prepare();
  }

  findByIdempotencyKey(ownerId: string, key: string): VideoTaskRow | undefined {
    return this.byIdempotencyKey.get({ ownerId, key });
  }

  countUnfinished(ownerId: string): number {
    return this.unfinishedOf.get({ ownerId })?.n ?? 0;
  }

  /** Tasks per status, for metrics. */
  countByStatus(): { status: string; n: number }[] {
    return this.db.select({ status: videoTasks.status, n: sql<number>`count(*)` }).from(videoTasks).groupBy(videoTasks.status).all();
  }

  insert(row: NewVideoTaskRow): VideoTaskRow {
    return this.db.insert(videoTasks).values(row).returning().get();
  }

  get(id: string): VideoTaskRow | undefined {
    return this.byId.get({ id });
  }

  getMany(ids: readonly string[]): VideoTaskRow[] {
    if (ids.length === 0) return [];
    return this.db.select().from(videoTasks).where(inArray(videoTasks.id, [...ids])).all();
  }

  update(id: string, patch: TaskPatch): VideoTaskRow | undefined {
    return this.db.update(videoTasks).set(patch).where(eq(videoTasks.id, id)).returning().get();
  }

  delete(id: string): void {
    this.deleteById.run({ id });
  }

  /**
   * Takes up to `limit` of a provider's due tasks for `owner` until `leaseUntil`, in one statement,
   * so that two processes on the same file never hold the same task: a task is due when its
   * next-poll time has come and nobody holds it, or its holder's lease ran out (the holder crashed).
   */
  claimDue(provider: string, owner: string, now: Date, leaseUntil: Date, limit: number): VideoTaskRow[] {
    if (limit <= 0) return [];
    const due = this.db.select({ id: videoTasks.id }).from(videoTasks).where(and(
      eq(videoTasks.provider, provider),
      isNotNull(videoTasks.nextPollAt),
      lte(videoTasks.nextPollAt, now),
      or(isNull(videoTasks.leaseExpiresAt), lte(videoTasks.leaseExpiresAt, now)),
    )).orderBy(asc(videoTasks.nextPollAt)).limit(limit);
    return this.db.update(videoTasks)
      .set({ leaseOwner: owner, leaseExpiresAt: leaseUntil })
      .where(inArray(videoTasks.id, due))
      .returning().all();
  }

  /** Like claimDue, for results waiting to be archived (the tasks are finished, so the poller never holds them). */
  claimArchives(owner: string, now: Date, leaseUntil: Date, limit: number): VideoTaskRow[] {
    if (limit <= 0) return [];
    const due = this.db.select({ id: videoTasks.id }).from(videoTasks).where(and(
      isNotNull(videoTasks.archiveNextAt),
      lte(videoTasks.archiveNextAt, now),
      or(isNull(videoTasks.leaseExpiresAt), lte(videoTasks.leaseExpiresAt, now)),
    )).orderBy(asc(videoTasks.archiveNextAt)).limit(limit);
    return this.db.update(videoTasks)
      .set({ leaseOwner: owner, leaseExpiresAt: leaseUntil })
      .where(inArray(videoTasks.id, due))
      .returning().all();
  }

  children(parentId: string): VideoTaskRow[] {
    return this.db.select().from(videoTasks).where(eq(videoTasks.parentTaskId, parentId))
      .orderBy(asc(videoTasks.createdAt), asc(videoTasks.id)).all();
  }

  /** Archived tasks whose files were written before `before` (retention). */
  archivedBefore(before: Date, limit: number): VideoTaskRow[] {
    return this.db.select().from(videoTasks).where(and(eq(videoTasks.archiveStatus, 'ARCHIVED'), lte(videoTasks.archivedAt, before)))
      .limit(limit).all();
  }

  /** Runs `work` in one SQLite transaction (IMMEDIATE: it takes the write lock up front). */
  transaction<T>(work: () => T): T {
    return this.db.$client.transaction(work).immediate();
  }

  /** Keyset paging, newest first; the indexes on (created_at, id) serve every page at the same cost. */
  list(query: TaskListQuery): VideoTaskRow[] {
    const conditions: SQL[] = [];
    if (query.ownerId) conditions.push(eq(videoTasks.ownerId, query.ownerId));
    if (query.statuses?.length) conditions.push(inArray(videoTasks.status, [...query.statuses]));
    if (query.models?.length) conditions.push(inArray(videoTasks.model, [...query.models]));
    if (query.after) conditions.push(sql`(${videoTasks.createdAt}, ${videoTasks.id}) < (${query.after.createdAt}, ${query.after.id})`);
    if (query.before) conditions.push(sql`(${videoTasks.createdAt}, ${videoTasks.id}) > (${query.before.createdAt}, ${query.before.id})`);
    const order = query.inverted
      ? [asc(videoTasks.createdAt), asc(videoTasks.id)]
      : [desc(videoTasks.createdAt), desc(videoTasks.id)];
    return this.db.select().from(videoTasks).where(and(...conditions)).orderBy(...order).limit(query.limit).all();
  }
}

export function encodeCursor(row: Pick<VideoTaskRow, 'createdAt' | 'id'>): string {
  return Buffer.from(`${row.createdAt.getTime()}:${row.id}`).toString('base64url');
}

/** Returns null for anything that is not a cursor this service made. */
export function decodeCursor(cursor: string): TaskCursor | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^(\d{1,15}):([\w-]{1,64})$/.exec(text);
  return match ? { createdAt: Number(match[1]), id: match[2]! } : null;
}
