// A sandbox task is a plan fixed when it is created: how long it queues, when it ends and how.
// Its state at any moment is computed from the clock, so nothing has to move it along, and a test
// that moves the clock sees the task move with it.
import type { VideoModel } from '../tasks/catalog.ts';
import type { SandboxEndpoint } from './endpoints.ts';

export type TaskOutcome = 'completed' | 'failed';
export type TaskStage = 'queued' | 'running' | TaskOutcome;

export interface SandboxTask {
  id: string;
  endpoint: SandboxEndpoint;
  model: VideoModel;
  /** The body exactly as received, for contract tests. */
  body: Record<string, unknown>;
  createdAtMs: number;
  queuedMs: number;
  /** From creation to the end, queueing included. */
  totalMs: number;
  outcome: TaskOutcome;
  videoDurationSeconds: number;
  returnLastFrame: boolean;
  callbackUrl: string | null;
  /** Where result links point when no public base URL is set: the base the task was created through. */
  fallbackBaseUrl: string;
}

export interface TaskPhase {
  stage: TaskStage;
  progress: number;
  remainingMs: number;
  finishedAtMs: number;
}

/** Share of a task's time spent waiting before generation starts. */
const QUEUED_SHARE = 0.2;

/** Marker a prompt can carry to make its task fail, so a client's failure path can be driven on purpose. */
export const FAIL_MARKER = '[sandbox:fail]';

/** How long a task of this model takes: a draw in the seed's quoted range, scaled. */
export function planDuration(model: VideoModel, random: () => number, timeScale: number): { queuedMs: number; totalMs: number } {
  const { min, max } = model.typicalSeconds;
  const totalMs = Math.max(1, Math.round((min + random() * (max - min)) * 1000 * timeScale));
  return { queuedMs: Math.round(totalMs * QUEUED_SHARE), totalMs };
}

export function phaseAt(task: SandboxTask, nowMs: number): TaskPhase {
  const elapsed = nowMs - task.createdAtMs;
  const finishedAtMs = task.createdAtMs + task.totalMs;
  const remainingMs = Math.max(0, finishedAtMs - nowMs);
  if (elapsed >= task.totalMs) return { stage: task.outcome, progress: 100, remainingMs: 0, finishedAtMs };
  if (elapsed < task.queuedMs) return { stage: 'queued', progress: 0, remainingMs, finishedAtMs };
  const share = (elapsed - task.queuedMs) / (task.totalMs - task.queuedMs);
  // Running never reports 0 (that reads as queued) nor 100 (that reads as done).
  const progress = Math.min(99, Math.max(1, Math.floor(share * 100)));
  return { stage: 'running', progress, remainingMs, finishedAtMs };
}

export function isFinished(phase: TaskPhase): boolean {
  return phase.stage === 'completed' || phase.stage === 'failed';
}
