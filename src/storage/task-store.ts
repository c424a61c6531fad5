// Reads and writes video task rows. Lookups by id, plain pages, inserts and updates run prepared
// statements: unprepared drizzle queries were about 10x slower on lookups by id, and building and
// preparing a statement cost more than running it on the other hot paths (bench/).
import type BetterSqlite3 from 'better-sqlite3';
import { and, asc, desc, eq, getTableColumns, inArray, isNotNull, isNull, lte, or, sql, type Placeholder, type SQL } from 'drizzle-orm';
import type { VideoTaskStatus } from '../tasks/status.ts';
import type { Db } from './database.ts';
import { SELECT_TASK_BY_ID, appliedTaskRow, decodeTaskRow, encodeTaskValue, storesAs, updateTaskSql } from './task-row-codec.ts';
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

type PreparedWrite = { get(values: Record<string, unknown>): VideoTaskRow | undefined };

/** The placeholder of the row id in prepared updates (no column is named so). */
const ROW_ID = '$rowId';
const COLUMNS = getTableColumns(videoTasks);

/** The columns a write sets: those with a value (undefined means "not written", as drizzle reads it). */
const writtenColumns = (values: Record<string, unknown>) =>
  Object.keys(values).filter((key) => values[key] !== undefined).sort() as (keyof typeof COLUMNS)[];

const placeholders = (columns: readonly (keyof typeof COLUMNS)[]) =>
  Object.fromEntries(columns.map((column) => [column, sql`${sql.placeholder(column)}`]));

/**
 * Each column's value as SQLite stores it (JSON text, epoch milliseconds), done here because drizzle
 * hands placeholder values to the column's encoder even when null (the timestamp encoder then throws).
 */
function driverValues(values: Record<string, unknown>, columns: readonly (keyof typeof COLUMNS)[]): Record<string, unknown> {
  const mapped: Record<string, unknown> = {};
  for (const column of columns) {
    const value = values[column];
    mapped[column] = value === null ? null : COLUMNS[column].mapToDriverValue(value as never);
  }
  return mapped;
}

/** Prepared row updates kept at most (one per set of changed columns). */
const MAX_ROW_UPDATE_SHAPES = 256;

/** A cursor's values, or the placeholders a prepared page statement binds them to. */
type Cursorish = { createdAt: number | Placeholder; id: string | Placeholder };

export type TaskPatch = Partial<Omit<NewVideoTaskRow, 'id' | 'createdAt'>>;

export class TaskStore {
  private readonly byId: BetterSqlite3.Statement<[string], unknown[]>;
  /** Runs its argument in one IMMEDIATE transaction; made once (better-sqlite3 builds four wrappers per transaction()). */
  private readonly immediate: <T>(work: () => T) => T;
  private readonly rowUpdates = new Map<string, BetterSqlite3.Statement<unknown[]>>();
  private readonly deleteById;
  private readonly byIdempotencyKey;
  private readonly unfinishedOf;
  private readonly listStatements = new Map<string, { all(values: Record<string, unknown>): VideoTaskRow[] }>();
  private readonly writeStatements = new Map<string, PreparedWrite>();

  constructor(readonly db: Db) {
    // The hot lookup runs on the SQLite handle and decodes rows itself (see task-row-codec.ts).
    this.byId = db.$client.prepare<[string], unknown[]>(SELECT_TASK_BY_ID).raw();
    this.immediate = db.$client.transaction((work: () => unknown) => work()).immediate as <T>(work: () => T) => T;
    this.deleteById = db.delete(videoTasks).where(eq(videoTasks.id, sql.placeholder('id'))).prepare();
    this.byIdempotencyKey = db.select().from(videoTasks).where(and(
      eq(videoTasks.ownerId, sql.placeholder('ownerId')),
      eq(videoTasks.idempotencyKey, sql.placeholder('key')),
    )).prepare();
    // Unfinished tasks are the ones the poller still has a next-poll time for. Counted up to a bound:
    // the question is only whether a key reached its limit, and a full count grew with every task.
    const unfinished = db.select({ one: sql`1` }).from(videoTasks).where(and(
      eq(videoTasks.ownerId, sql.placeholder('ownerId')),
      isNotNull(videoTasks.nextPollAt),
    )).limit(sql.placeholder('atMost')).as('unfinished');
    this.unfinishedOf = db.select({ n: sql<number>`count(*)` }).from(unfinished).prepare();
  }

  findByIdempotencyKey(ownerId: string, key: string): VideoTaskRow | undefined {
    return this.byIdempotencyKey.get({ ownerId, key });
  }

  /** The owner's unfinished tasks, counted up to `atMost` (a larger count reads as `atMost`). */
  countUnfinished(ownerId: string, atMost: number): number {
    return this.unfinishedOf.get({ ownerId, atMost })?.n ?? 0;
  }

  /** Tasks per status, for metrics. */
  countByStatus(): { status: string; n: number }[] {
    return this.db.select({ status: videoTasks.status, n: sql<number>`count(*)` }).from(videoTasks).groupBy(videoTasks.status).all();
  }

  insert(row: NewVideoTaskRow): VideoTaskRow {
    const columns = writtenColumns(row);
    const statement = this.writeStatement(`insert ${columns}`, () =>
      this.db.insert(videoTasks).values(placeholders(columns) as unknown as NewVideoTaskRow).returning().prepare());
    return statement.get(driverValues(row, columns))!;
  }

  get(id: string): VideoTaskRow | undefined {
    const stored = this.byId.get(id);
    return stored && decodeTaskRow(stored);
  }

  getMany(ids: readonly string[]): VideoTaskRow[] {
    if (ids.length === 0) return [];
    return this.db.select().from(videoTasks).where(inArray(videoTasks.id, [...ids])).all();
  }

  update(id: string, patch: TaskPatch): VideoTaskRow | undefined {
    const columns = writtenColumns(patch);
    // Nothing to set: drizzle's own error ("No values to set"), as before.
    if (columns.length === 0) return this.db.update(videoTasks).set(patch).where(eq(videoTasks.id, id)).returning().get();
    const statement = this.writeStatement(`update ${columns}`, () =>
      this.db.update(videoTasks).set(placeholders(columns)).where(eq(videoTasks.id, sql.placeholder(ROW_ID))).returning().prepare());
    return statement.get({ ...driverValues(patch, columns), [ROW_ID]: id });
  }

  /**
   * Writes `patch` over `current`, a row read in the same transaction, and returns the row as it now is
   * without reading it back (no RETURNING, no second decoding): the write path has just read it. Only
   * the columns whose stored value changes are written: a poll answer repeats most of the row, and
   * setting an indexed column (status, upstream id), even to its own value, rewrites its index entries.
   */
  updateRow(current: VideoTaskRow, patch: TaskPatch): VideoTaskRow {
    const columns: (keyof VideoTaskRow)[] = [];
    const stored: unknown[] = [];
    for (const column of writtenColumns(patch)) {
      const value = encodeTaskValue(column, patch[column as keyof TaskPatch]);
      if (storesAs(column, current[column], value)) continue;
      columns.push(column);
      stored.push(value);
    }
    if (columns.length === 0) return current;
    this.rowUpdate(columns).run(...stored, current.id);
    return appliedTaskRow(current, columns, stored);
  }

  /** The update of these columns, prepared once per set of columns (a few dozen sets occur; past a bound, not kept). */
  private rowUpdate(columns: readonly (keyof VideoTaskRow)[]): BetterSqlite3.Statement<unknown[]> {
    const shape = columns.join();
    let statement = this.rowUpdates.get(shape);
    if (!statement) {
      statement = this.db.$client.prepare(updateTaskSql(columns));
      if (this.rowUpdates.size < MAX_ROW_UPDATE_SHAPES) this.rowUpdates.set(shape, statement);
    }
    return statement;
  }

  /**
   * Inserts and updates run statements prepared once per set of columns written (a handful of shapes
   * occur): building and preparing the statement on every write cost more than running it
   * (bench/create.ts), as unprepared lookups by id did.
   */
  private writeStatement(shape: string, prepare: () => PreparedWrite): PreparedWrite {
    let statement = this.writeStatements.get(shape);
    if (!statement) {
      statement = prepare();
      this.writeStatements.set(shape, statement);
    }
    return statement;
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

  renewLease(id: string, owner: string, until: Date): void {
    this.db.update(videoTasks).set({ leaseExpiresAt: until }).where(and(eq(videoTasks.id, id), eq(videoTasks.leaseOwner, owner))).run();
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
    return this.immediate(work);
  }

  /** Keyset paging, newest first; the indexes on (created_at, id) serve every page at the same cost. */
  list(query: TaskListQuery): VideoTaskRow[] {
    // Pages without a status or model filter (nearly all of them) run a statement prepared once per
    // shape: building and preparing the query was half the cost of a page (bench/task-list.ts).
    if (!query.statuses?.length && !query.models?.length) {
      return this.listStatement(query).all({
        ownerId: query.ownerId ?? null,
        afterCreatedAt: query.after?.createdAt ?? null, afterId: query.after?.id ?? null,
        beforeCreatedAt: query.before?.createdAt ?? null, beforeId: query.before?.id ?? null,
        limit: query.limit,
      });
    }
    return this.listQuery(query, {
      ownerId: query.ownerId, after: query.after, before: query.before, limit: query.limit,
    }).all();
  }

  /** The prepared statement of a filterless page: one per (owner or not, after, before, direction). */
  private listStatement(query: TaskListQuery) {
    const shape = `${query.ownerId ? 1 : 0}${query.after ? 1 : 0}${query.before ? 1 : 0}${query.inverted ? 1 : 0}`;
    let statement = this.listStatements.get(shape);
    if (!statement) {
      const p = sql.placeholder;
      statement = this.listQuery(query, {
        ownerId: query.ownerId ? p('ownerId') : null,
        after: query.after ? { createdAt: p('afterCreatedAt'), id: p('afterId') } : null,
        before: query.before ? { createdAt: p('beforeCreatedAt'), id: p('beforeId') } : null,
        limit: p('limit'),
      }).prepare();
      this.listStatements.set(shape, statement);
    }
    return statement;
  }

  /** The page query, with the given values (or placeholders) for owner, cursors and limit. */
  private listQuery(query: TaskListQuery, values: {
    ownerId?: string | Placeholder | null; after?: Cursorish | null; before?: Cursorish | null; limit: number | Placeholder;
  }) {
    const conditions: SQL[] = [];
    if (values.ownerId) conditions.push(eq(videoTasks.ownerId, values.ownerId));
    if (query.statuses?.length) conditions.push(inArray(videoTasks.status, [...query.statuses]));
    if (query.models?.length) conditions.push(inArray(videoTasks.model, [...query.models]));
    if (values.after) conditions.push(sql`(${videoTasks.createdAt}, ${videoTasks.id}) < (${values.after.createdAt}, ${values.after.id})`);
    if (values.before) conditions.push(sql`(${videoTasks.createdAt}, ${videoTasks.id}) > (${values.before.createdAt}, ${values.before.id})`);
    const order = query.inverted
      ? [asc(videoTasks.createdAt), asc(videoTasks.id)]
      : [desc(videoTasks.createdAt), desc(videoTasks.id)];
    return this.db.select().from(videoTasks).where(and(...conditions)).orderBy(...order).limit(values.limit);
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
