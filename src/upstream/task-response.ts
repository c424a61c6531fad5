// Reading provider task objects and error bodies into one shape. Both providers' forms
// (UPSTREAM.md, "Responses") go through here, so that one set of contract tests pins them all.
import { statusFromUpstream } from '../tasks/status.ts';
import { UpstreamProtocolError } from './errors.ts';
import type { UpstreamErrorBody, UpstreamTask } from './types.ts';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : null);
const num = (v: unknown): number | null => {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
};
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
const unixTime = (v: unknown): Date | null => {
  const n = num(v);
  if (n === null || n <= 0) return null;
  // Seconds by every seed; a millisecond value (13 digits) is tolerated rather than read as year 50000.
  return new Date(n > 1e12 ? n : n * 1000);
};
const path = (root: Json, ...keys: (string | number)[]): unknown => {
  let at: unknown = root;
  for (const key of keys) {
    if (typeof key === 'number') at = Array.isArray(at) ? at[key] : undefined;
    else at = isObject(at) ? at[key] : undefined;
  }
  return at;
};
const firstString = (root: Json, candidates: (string | number)[][]): string | null => {
  for (const keys of candidates) {
    const found = str(path(root, ...keys));
    if (found) return found;
  }
  return null;
};

// Where a result sits is not pinned down by the seeds (UPSTREAM.md, open points): every place named there.
const VIDEO_URL_PLACES: (string | number)[][] = [
  ['result', 'url'], ['result', 'video_url'], ['result', 'data', 0, 'url'], ['url'], ['video_url'], ['content', 'video_url'],
];
const LAST_FRAME_URL_PLACES: (string | number)[][] = [
  ['content', 'last_frame_url'], ['result', 'last_frame_url'], ['last_frame_url'],
];

/** Reads an error object (`{code, message, type, param, fallback_suggestion}`) or returns null. */
export function readErrorObject(value: unknown): UpstreamErrorBody | null {
  if (typeof value === 'string' && value) {
    return { code: null, type: null, message: value, param: null, fallbackSuggestion: null };
  }
  if (!isObject(value)) return null;
  const message = str(value.message) ?? str(value.msg);
  const code = str(value.code);
  const type = str(value.type);
  if (!message && !code && !type) return null;
  return {
    code,
    type,
    message: message ?? type ?? `upstream error ${code}`,
    param: str(value.param),
    fallbackSuggestion: str(value.fallback_suggestion),
  };
}

/** Reads the body of an HTTP error answer; a body that is not the documented form still yields a message. */
export function readErrorBody(httpStatus: number, bodyText: string): UpstreamErrorBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    parsed = undefined;
  }
  const fromBody = isObject(parsed) ? readErrorObject(parsed.error) ?? readErrorObject(parsed) : null;
  return fromBody ?? {
    code: String(httpStatus),
    type: null,
    message: bodyText.trim().slice(0, 300) || `HTTP ${httpStatus}`,
    param: null,
    fallbackSuggestion: null,
  };
}

/** Reads a task object of either provider. Throws UpstreamProtocolError when it is not one. */
export function readTaskObject(body: unknown): UpstreamTask {
  const text = () => JSON.stringify(body)?.slice(0, 500) ?? String(body);
  if (!isObject(body)) throw new UpstreamProtocolError('task response is not a JSON object', text());
  // Some relays wrap the task in `data`.
  const task = isObject(body.data) && !('id' in body) ? body.data : body;
  const id = str(task.id) ?? str(task.task_id);
  if (!id) throw new UpstreamProtocolError('task response has no id', text());
  const statusWord = str(task.status);
  if (!statusWord) throw new UpstreamProtocolError('task response has no status', text());

  const progress = num(task.progress);
  const info = isObject(task.task_info) ? task.task_info : null;
  const usage = isObject(task.usage) ? task.usage : null;
  return {
    upstreamTaskId: id,
    status: statusFromUpstream(statusWord),
    statusWord,
    progress: progress === null ? null : Math.max(0, Math.min(100, Math.round(progress))),
    createdAt: unixTime(task.created_at ?? task.created),
    completedAt: unixTime(task.completed_at),
    expiresAt: unixTime(task.expires_at),
    videoUrl: firstString(task, VIDEO_URL_PLACES),
    lastFrameUrl: firstString(task, LAST_FRAME_URL_PLACES),
    error: readErrorObject(task.error),
    taskInfo: info && {
      canCancel: bool(info.can_cancel),
      estimatedTimeSeconds: num(info.estimated_time),
      videoDurationSeconds: num(info.video_duration),
    },
    usage: usage && {
      billingRule: str(usage.billing_rule),
      creditsReserved: num(usage.credits_reserved),
      userGroup: str(usage.user_group),
    },
  };
}
