// The task lifecycle, and how each provider's status words map onto it (API.md).

export const VIDEO_TASK_STATUSES = ['SUBMITTING', 'QUEUED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type VideoTaskStatus = (typeof VIDEO_TASK_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<VideoTaskStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export function isTerminal(status: VideoTaskStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

// Both providers' words (seeds 000-003) and the synonyms API.md names. Anything else is unknown:
// the task stays where it is and the word is recorded (UPSTREAM.md, open points).
const UPSTREAM_STATUS_WORDS: Readonly<Record<string, VideoTaskStatus>> = {
  submitted: 'QUEUED',
  queued: 'QUEUED',
  pending: 'QUEUED',
  in_progress: 'IN_PROGRESS',
  processing: 'IN_PROGRESS',
  running: 'IN_PROGRESS',
  completed: 'COMPLETED',
  succeeded: 'COMPLETED',
  failed: 'FAILED',
  cancelled: 'CANCELLED',
  canceled: 'CANCELLED',
};

/** The status an upstream word means, or null when the word is not known. */
export function statusFromUpstream(word: string): VideoTaskStatus | null {
  return UPSTREAM_STATUS_WORDS[word.trim().toLowerCase()] ?? null;
}
