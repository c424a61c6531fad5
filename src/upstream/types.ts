import type { VideoModel } from '../tasks/catalog.ts';
import type { VideoTaskStatus } from '../tasks/status.ts';
import type { VideoRequest } from '../tasks/video-request.ts';

/** The error body every provider shares: `{"error": {code, message, type, param, fallback_suggestion}}`. */
export interface UpstreamErrorBody {
  code: string | null;
  type: string | null;
  message: string;
  param: string | null;
  fallbackSuggestion: string | null;
}

/** One upstream task, whatever dialect it was read from. */
export interface UpstreamTask {
  upstreamTaskId: string;
  /** Our status, or null when the upstream used a word we do not know (then `statusWord` says which). */
  status: VideoTaskStatus | null;
  statusWord: string;
  progress: number | null;
  createdAt: Date | null;
  completedAt: Date | null;
  expiresAt: Date | null;
  videoUrl: string | null;
  lastFrameUrl: string | null;
  error: UpstreamErrorBody | null;
  /** Seed 003's `task_info`. */
  taskInfo: { canCancel: boolean | null; estimatedTimeSeconds: number | null; videoDurationSeconds: number | null } | null;
  /** Seed 003's `usage`. */
  usage: { billingRule: string | null; creditsReserved: number | null; userGroup: string | null } | null;
}

/** What a family module knows: its paths, how to write a request body, and how to read a task. */
export interface EndpointFamilyAdapter {
  readonly family: VideoModel['family'];
  readonly createPath: string;
  /** Where a task is read back; providers may override it (seed 003 does not give the path). */
  taskPath(upstreamTaskId: string): string;
  buildCreateBody(model: VideoModel, request: VideoRequest, options: { callbackUrl?: string }): Record<string, unknown>;
  readTask(body: unknown): UpstreamTask;
}
