// The task object each provider answers with (UPSTREAM.md, "Responses"): toapis' `generation.task`
// and odkkk's `video.generation.task`. Create, query and seed 003's callbacks all send these.
import { isFinished, type SandboxTask, type TaskPhase, type TaskStage } from './sandbox-task.ts';

type Json = Record<string, unknown>;

export interface ResultLinks {
  videoUrl: string;
  lastFrameUrl: string | null;
  expiresAtS: number;
}

const TOAPIS_STATUS: Readonly<Record<TaskStage, string>> = {
  queued: 'queued', running: 'in_progress', completed: 'completed', failed: 'failed',
};
const ODKKK_STATUS: Readonly<Record<TaskStage, string>> = {
  queued: 'pending', running: 'processing', completed: 'completed', failed: 'failed',
};

const GENERATION_FAILED = {
  code: 'generation_failed',
  message: 'The video could not be generated (sandbox failure)',
  type: 'upstream_error',
};

const unixSeconds = (ms: number) => Math.floor(ms / 1000);

/** The task as its provider shows it; `links` is given once the task has completed. */
export function taskObject(task: SandboxTask, phase: TaskPhase, links: ResultLinks | null): Json {
  return task.endpoint.provider === 'odkkk' ? odkkkTask(task, phase, links) : toapisTask(task, phase, links);
}

function toapisTask(task: SandboxTask, phase: TaskPhase, links: ResultLinks | null): Json {
  // The request's `metadata` (seed 000's extended parameters) is echoed, as a relay would.
  const metadata = task.body.metadata;
  const object: Json = {
    id: task.id,
    object: 'generation.task',
    model: task.model.id,
    status: TOAPIS_STATUS[phase.stage],
    progress: phase.progress,
    created_at: unixSeconds(task.createdAtMs),
    metadata: typeof metadata === 'object' && metadata !== null ? metadata : {},
  };
  if (isFinished(phase)) object.completed_at = unixSeconds(phase.finishedAtMs);
  if (phase.stage === 'failed') object.error = GENERATION_FAILED;
  if (phase.stage === 'completed' && links) {
    object.expires_at = links.expiresAtS;
    object.result = task.endpoint.family === 'videos'
      ? { type: 'video', url: links.videoUrl }
      : { type: 'video', video_url: links.videoUrl, ...(links.lastFrameUrl ? { last_frame_url: links.lastFrameUrl } : {}) };
  }
  return object;
}

function odkkkTask(task: SandboxTask, phase: TaskPhase, links: ResultLinks | null): Json {
  const object: Json = {
    id: task.id,
    object: 'video.generation.task',
    model: task.model.id,
    status: ODKKK_STATUS[phase.stage],
    progress: phase.progress,
    created: unixSeconds(task.createdAtMs),
    type: 'video',
    task_info: {
      can_cancel: !isFinished(phase),
      estimated_time: Math.ceil(phase.remainingMs / 1000),
      video_duration: task.videoDurationSeconds,
    },
    // Assumed: one credit reserved per second of video (the seed's field examples are 8 credits and 8 s).
    usage: { billing_rule: 'per_call', credits_reserved: task.videoDurationSeconds, user_group: 'default' },
  };
  if (isFinished(phase)) object.completed_at = unixSeconds(phase.finishedAtMs);
  if (phase.stage === 'failed') object.error = GENERATION_FAILED;
  if (phase.stage === 'completed' && links) {
    object.video_url = links.videoUrl;
    object.expires_at = links.expiresAtS;
  }
  return object;
}
