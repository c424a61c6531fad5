// video_tasks rows between SQLite and the service, for the hot path (every task change reads one row and
// writes it back). drizzle's generic row mapping (mapResultRow: a reduce over path arrays, an `is` check
// and a decoder lookup per column) was a sixth of a task change's cost (bench/fanout.ts); the table's
// columns are known, so each column's decoding is decided once, here, from the same drizzle definitions.
// test/task-row-codec.test.ts holds it to drizzle's own mapping.
import { getTableColumns, getTableName } from 'drizzle-orm';
import { videoTasks, type VideoTaskRow } from './schema.ts';

type ColumnKey = keyof VideoTaskRow;

/** How a column's stored value becomes the row's value: as is, JSON text, or epoch milliseconds. */
type Decoding = 'plain' | 'json' | 'timestamp_ms';

const COLUMNS = getTableColumns(videoTasks);
const KEYS = Object.keys(COLUMNS) as ColumnKey[];

function decodingOf(key: ColumnKey): Decoding {
  const column = COLUMNS[key];
  switch (column.columnType) {
    case 'SQLiteText': return 'plain';
    case 'SQLiteInteger': return 'plain';
    case 'SQLiteTextJson': return 'json';
    case 'SQLiteTimestamp':
      if ((column as unknown as { mode: string }).mode === 'timestamp_ms') return 'timestamp_ms';
      break;
  }
  // A new kind of column: decide its decoding here rather than decode it wrongly.
  throw new Error(`task-row-codec: no decoding for ${key} (${column.columnType})`);
}

const DECODINGS = KEYS.map(decodingOf);
const DECODINGS_BY_KEY = Object.fromEntries(KEYS.map((key, i) => [key, DECODINGS[i]])) as Record<ColumnKey, Decoding>;
const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Every column, in the order decodeTaskRow reads them. */
const SELECT_LIST = KEYS.map((key) => quote(COLUMNS[key].name)).join(', ');
const TABLE = quote(getTableName(videoTasks));

/** The row of one id, as an array of stored values (run it in raw mode). */
export const SELECT_TASK_BY_ID = `select ${SELECT_LIST} from ${TABLE} where ${quote(COLUMNS.id.name)} = ?`;

/** A row as SQLite returned it in raw mode (SELECT_TASK_BY_ID): one stored value per column, in table order. */
export function decodeTaskRow(stored: readonly unknown[]): VideoTaskRow {
  const row: Record<string, unknown> = {};
  for (let i = 0; i < KEYS.length; i++) {
    const value = stored[i];
    const decoding = DECODINGS[i];
    row[KEYS[i]!] = value === null || decoding === 'plain' ? value
      : decoding === 'json' ? JSON.parse(value as string)
      : new Date(value as number);
  }
  return row as VideoTaskRow;
}

/** The value SQLite stores for a column's value (JSON text, epoch milliseconds); null stays null. */
export function encodeTaskValue(key: ColumnKey, value: unknown): unknown {
  return value === null ? null : COLUMNS[key].mapToDriverValue(value as never);
}

/** Whether a row's value is stored as `stored` already (writing it again would change nothing). */
export function storesAs(key: ColumnKey, value: unknown, stored: unknown): boolean {
  if (value === null || stored === null) return value === stored;
  const decoding = DECODINGS_BY_KEY[key];
  return decoding === 'plain' ? value === stored
    : decoding === 'timestamp_ms' ? (value as Date).getTime() === stored
    : JSON.stringify(value) === stored;
}

/**
 * The row after an update, without reading it back: each written column as it would read back, i.e.
 * the stored value decoded again (a JSON value loses what JSON drops; a date is a new Date).
 */
export function appliedTaskRow(current: VideoTaskRow, written: readonly ColumnKey[], stored: readonly unknown[]): VideoTaskRow {
  const row: Record<string, unknown> = { ...current };
  for (let i = 0; i < written.length; i++) {
    const key = written[i]!;
    const value = stored[i];
    const decoding = DECODINGS_BY_KEY[key];
    row[key] = value === null || decoding === 'plain' ? value
      : decoding === 'json' ? JSON.parse(value as string)
      : new Date(value as number);
  }
  return row as VideoTaskRow;
}

/** `update video_tasks set <columns> = ? ... where id = ?`: values in the order of `columns`, then the id. */
export function updateTaskSql(columns: readonly ColumnKey[]): string {
  return `update ${TABLE} set ${columns.map((key) => `${quote(COLUMNS[key].name)} = ?`).join(', ')} where ${quote(COLUMNS.id.name)} = ?`;
}
