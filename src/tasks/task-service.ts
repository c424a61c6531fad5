// The one place that creates video tasks and changes their state. GraphQL calls it to create, read,
// cancel and watch; the poller and upstream callbacks hand it what the upstream said. Every change is
// written in one transaction and then published.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { canSee, ownerScope, type Principal } from '../auth/principal.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { MediaStorage } from '../media/media-storage.ts';
import type { TaskEvents } from '../events/task-events.ts';
import type { PollSchedule } from '../poller/poll-schedule.ts';
import { ALREADY_DURABLE, type Durability } from '../storage/durability.ts';
import type { VideoTaskRow } from '../storage/schema.ts';
import type { TaskListQuery, TaskPatch, TaskStore } from '../storage/task-store.ts';
import {
  UpstreamHttpError, UpstreamProtocolError, UpstreamTransportError, type UpstreamFailure,
} from '../upstream/errors.ts';
import { ENDPOINT_FAMILIES } from '../upstream/families.ts';
import type { ProviderDirectory, ProviderRoute } from '../upstream/providers.ts';
import { inputFieldForParam } from '../upstream/request-body.ts';
import type { UpstreamClient } from '../upstream/upstream-client.ts';
import type { UpstreamErrorBody, UpstreamTask } from '../upstream/types.ts';
import { VIDEO_MODELS, findVideoModel } from './catalog.ts';
import { isTerminal, type VideoTaskStatus } from './status.ts';
import { TaskStream, type TaskStreamOptions } from './task-stream.ts';
import { validateCreateVideoTask, type CreateVideoTaskInput, type UserError } from './validation.ts';
import type { VideoRequest } from './video-request.ts';

export interface CreateVideoTaskResult {
  task: VideoTaskRow | null;
  userErrors: UserError[];
}

export interface CancelVideoTaskResult {
  task: VideoTaskRow | null;
  /** Whether the provider was told to stop. The seeds document no cancel call, so never yet. */
  upstreamCancelled: boolean;
  message: string;
  userErrors: UserError[];
}

export type CallbackOutcome = 'applied' | 'not_found' | 'unreadable';

export interface TaskFilter {
  statuses?: readonly VideoTaskStatus[] | null;
  models?: readonly string[] | null;
}

export interface TaskServiceDeps {
  store: TaskStore;
  /**
   * Makes the commits so far durable (see openGroupCommitDatabase): awaited before a submission leaves.
   * Absent when every commit is durable as it returns (openDatabase).
   */
  durability?: Durability;
  upstream: UpstreamClient;
  providers: ProviderDirectory;
  events: TaskEvents;
  schedule: PollSchedule;
  logger: Logger;
  /** Who this process is when it holds a task's lease. */
  owner: string;
  /** How long a holder keeps a task before others may take it over (longer than one upstream call). */
  leaseMs: number;
  /** Base URL the providers can call back (PUBLIC_URL); callbacks are off without it. */
  publicUrl?: string;
  /** Per-key limits on task creation; none when absent. */
  limits?: { tasksPerMinute: RateLimiter; maxUnfinishedTasks: number };
  /** Where archived results live (deleteVideoTask removes them). */
  storage?: MediaStorage;
  /** URL prefixes of this service's own media (uploads): accepted as inputs although they may be local. */
  trustedMediaPrefixes?: () => readonly string[];
  now?: () => Date;
  newId?: () => string;
}

/** Stable codes for the provider's refusals, by HTTP status. */
const REFUSAL_CODES: Readonly<Record<number, string>> = {
  400: 'UPSTREAM_INVALID_REQUEST',
  401: 'UPSTREAM_AUTHENTICATION',
  402: 'UPSTREAM_INSUFFICIENT_QUOTA',
  403: 'UPSTREAM_PERMISSION_DENIED',
  404: 'UPSTREAM_NOT_FOUND',
  413: 'UPSTREAM_REQUEST_TOO_LARGE',
  429: 'UPSTREAM_RATE_LIMITED',
};

/** Statuses only move forward: an older answer arriving late (poll vs. callback) cannot undo a newer one. */
const STATUS_RANK: Readonly<Record<VideoTaskStatus, number>> = {
  SUBMITTING: 0, QUEUED: 1, IN_PROGRESS: 2, COMPLETED: 3, FAILED: 3, CANCELLED: 3,
};

const sha256 = (text: string) => createHash('sha256').update(text).digest();

const isUniqueViolation = (error: unknown) =>
  typeof error === 'object' && error !== null && (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';

export class VideoTaskService {
  private readonly now: () => Date;
  private readonly newId: () => string;
  private readonly durability: Durability;

  constructor(private readonly deps: TaskServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.newId = deps.newId ?? randomUUID;
    this.durability = deps.durability ?? ALREADY_DURABLE;
  }

  /** A task by id, whoever owns it: for the poller, callbacks and tests, never for a client. */
  get(id: string): VideoTaskRow | undefined {
    return this.deps.store.get(id);
  }

  /** A task as a client may see it: another key's task reads as not found. */
  find(principal: Principal, id: string): VideoTaskRow | undefined {
    const task = this.deps.store.get(id);
    return task && canSee(principal, task) ? task : undefined;
  }

  findMany(principal: Principal, ids: readonly string[]): VideoTaskRow[] {
    return this.deps.store.getMany(ids).filter((task) => canSee(principal, task));
  }

  list(principal: Principal, query: Omit<TaskListQuery, 'ownerId'>): VideoTaskRow[] {
    return this.deps.store.list({ ...query, ownerId: ownerScope(principal) });
  }

  /**
   * Validates, records, then submits. The row is written (SUBMITTING, leased to this process) and made
   * durable before the upstream call, so that a crash in between, of the process or the machine, leaves
   * a task to reconcile (see resumeSubmission) rather than an upstream task nobody knows of. A request
   * refused here or by the provider leaves no row. What it returns is durable only once the caller has
   * awaited the durability too: the GraphQL layer does, for every mutation (durable-mutations.ts).
   */
  async create(
    principal: Principal, input: CreateVideoTaskInput,
    meta: { requestId?: string; parentTaskId?: string; trustedUrls?: readonly string[] } = {},
  ): Promise<CreateVideoTaskResult> {
    const validation = validateCreateVideoTask(input, { trustedUrls: [...(meta.trustedUrls ?? []), ...(this.deps.trustedMediaPrefixes?.() ?? [])] });
    if (!validation.ok) return { task: null, userErrors: validation.errors };
    const { model, request } = validation;

    const route = this.deps.providers.route(model.id, input.provider);
    if (!route) {
      const serving = this.deps.providers.providersFor(model.id);
      return {
        task: null,
        userErrors: [serving.length > 0
          ? { field: ['input', 'provider'], code: 'UNKNOWN_PROVIDER', message: `Provider "${input.provider}" does not serve ${model.id}; providers that do: ${serving.join(', ')}.` }
          : { field: ['input', 'model'], code: 'NOT_SUPPORTED', message: `No configured provider serves ${model.id}.` }],
      };
    }

    // The same key with the same input is the same task: no second row, no second submission.
    const idempotencyKey = input.idempotencyKey ?? null;
    const fingerprint = idempotencyKey
      ? createHash('sha256').update(JSON.stringify({ provider: route.provider, request })).digest('hex')
      : null;
    if (idempotencyKey) {
      const earlier = this.deps.store.findByIdempotencyKey(principal.ownerId, idempotencyKey);
      if (earlier) return this.replay(earlier, fingerprint);
    }

    const limited = this.checkCreationLimits(principal);
    if (limited) return { task: null, userErrors: [limited] };

    let row: VideoTaskRow;
    let callbackUrl: string | undefined;
    try {
      ({ row, callbackUrl } = this.insertSubmitting({ principal, route, request, idempotencyKey, fingerprint, requestId: meta.requestId, parentTaskId: meta.parentTaskId }));
    } catch (error) {
      // Another process won a race for the same idempotency key: its task is the answer.
      const earlier = idempotencyKey ? this.deps.store.findByIdempotencyKey(principal.ownerId, idempotencyKey) : undefined;
      if (earlier && isUniqueViolation(error)) return this.replay(earlier, fingerprint);
      throw error;
    }

    let upstreamTask: UpstreamTask;
    try {
      upstreamTask = await this.sendSubmission(row, route, { callbackUrl });
    } catch (error) {
      return this.submissionFailed(row, route, error as UpstreamFailure, 'request');
    }
    return { task: this.applyUpstream(row.id, upstreamTask, 'submission') ?? null, userErrors: [] };
  }

  /**
   * The row written before the create request leaves, leased to this process (see resumeSubmission),
   * with the submission attempt (and callback token) already recorded: the request leaves right after
   * this commit is durable, so one write and one sync cover both (a second commit would be a second
   * write to wait for). A crash before the request leaves now reads as "may have left"
   * (SUBMISSION_UNCONFIRMED) rather than being resubmitted, but the client got no answer either way.
   */
  private insertSubmitting(task: {
    principal: Principal; route: ProviderRoute; request: VideoRequest;
    idempotencyKey: string | null; fingerprint: string | null; requestId?: string; parentTaskId?: string;
  }): { row: VideoTaskRow; callbackUrl?: string } {
    const id = this.newId();
    const callbackUrl = this.callbackUrlFor({ id }, task.route);
    const token = callbackUrl ? randomBytes(32).toString('base64url') : null;
    const createdAt = this.now();
    const leaseUntil = new Date(createdAt.getTime() + this.deps.leaseMs);
    const row = this.deps.store.insert({
      id,
      submissionAttemptedAt: createdAt,
      callbackTokenHash: token ? sha256(token).toString('hex') : null,
      model: task.request.model,
      provider: task.route.provider,
      request: task.request,
      prompt: task.request.prompt,
      status: 'SUBMITTING',
      progress: 0,
      createdAt,
      updatedAt: createdAt,
      // If this process dies mid-submission, the task becomes due when the lease runs out.
      nextPollAt: leaseUntil,
      leaseOwner: this.deps.owner,
      leaseExpiresAt: leaseUntil,
      ownerId: task.principal.ownerId,
      idempotencyKey: task.idempotencyKey,
      requestFingerprint: task.fingerprint,
      requestId: task.requestId ?? null,
      parentTaskId: task.parentTaskId ?? null,
    });
    return { row, callbackUrl: callbackUrl && token ? callbackUrl(token) : undefined };
  }

  private replay(earlier: VideoTaskRow, fingerprint: string | null): CreateVideoTaskResult {
    if (earlier.requestFingerprint === fingerprint) return { task: earlier, userErrors: [] };
    return {
      task: null,
      userErrors: [{
        field: ['input', 'idempotencyKey'],
        code: 'IDEMPOTENCY_KEY_REUSED',
        message: 'This idempotency key was already used with a different input; use a new key for a new task.',
      }],
    };
  }

  /** Tasks per minute and unfinished tasks at once, per key; each aliased mutation counts on its own. */
  private checkCreationLimits(principal: Principal): UserError | null {
    const limits = this.deps.limits;
    if (!limits) return null;
    // Counted only up to the limit: whether the key reached it is all that matters here.
    if (this.deps.store.countUnfinished(principal.ownerId, limits.maxUnfinishedTasks) >= limits.maxUnfinishedTasks) {
      return {
        field: ['input'],
        code: 'TOO_MANY_UNFINISHED_TASKS',
        message: `This key has reached its limit of ${limits.maxUnfinishedTasks} unfinished tasks at once; retry when one finishes, or cancel one.`,
        retryAfterSeconds: 10,
      };
    }
    const rate = limits.tasksPerMinute.take(principal.ownerId);
    if (!rate.ok) {
      return {
        field: ['input'],
        code: 'RATE_LIMITED',
        message: `Too many tasks created by this key in the last minute; retry in ${rate.retryAfterSeconds} s.`,
        retryAfterSeconds: rate.retryAfterSeconds,
      };
    }
    return null;
  }

  /**
   * Resolves a task left SUBMITTING by a process that stopped mid-submission (its lease ran out):
   * - the request never left (no attempt recorded): it is submitted now, for the first time;
   * - it left and a callback URL went with it: the provider will call back if it got the task, so the
   *   task waits for that callback (which adopts the upstream id) until its deadline;
   * - it left without a callback: the outcome cannot be learnt (the seeds have no lookup by client
   *   reference), so the task ends FAILED with SUBMISSION_UNCONFIRMED. It is never sent twice: a second
   *   paid generation is worse than an honest "unknown".
   */
  async resumeSubmission(row: VideoTaskRow, deadline: Date): Promise<void> {
    const route = this.deps.providers.route(row.model, row.provider);
    if (!row.submissionAttemptedAt && route) {
      this.deps.logger.info({ taskId: row.id }, 'submitting a task whose submission never left');
      let upstreamTask: UpstreamTask;
      try {
        upstreamTask = await this.sendSubmission(row, route);
      } catch (error) {
        this.submissionFailed(row, route, error as UpstreamFailure, 'background');
        return;
      }
      this.applyUpstream(row.id, upstreamTask, 'submission');
      // The upstream id cannot be learnt again (the providers have no lookup by client reference):
      // durable now rather than at the next sync, as a create's is before its answer.
      await this.durability.sync();
      return;
    }
    if (row.submissionAttemptedAt && row.callbackTokenHash) {
      this.write(row.id, (current) => current.status === 'SUBMITTING' ? {
        nextPollAt: deadline, leaseOwner: null, leaseExpiresAt: null,
        lastPollError: 'submission unconfirmed: waiting for the provider\'s callback',
      } : null, false);
      return;
    }
    this.fail(row.id, {
      code: 'SUBMISSION_UNCONFIRMED',
      type: 'submission_interrupted',
      message: route
        ? 'The service stopped while submitting this task; the provider may have created it, but it cannot be tracked, and it is not resubmitted to avoid paying twice.'
        : `Provider "${row.provider}" is no longer configured.`,
      param: null,
      fallbackSuggestion: 'create the task again',
    });
  }

  /**
   * Records what the upstream said, in one transaction, then publishes it. Progress never goes
   * backwards, statuses only move forward, and a terminal status is never left (a late result of a
   * cancelled task is recorded without reviving it). Returns the row as it now is.
   */
  applyUpstream(taskId: string, upstream: UpstreamTask, source: 'submission' | 'poll' | 'callback'): VideoTaskRow | undefined {
    // Made only when there is something to say: a child logger per answer cost more than its SQL.
    const log = () => this.deps.logger.child({ taskId, source });
    return this.write(taskId, (current) => {
      if (current.upstreamTaskId && current.upstreamTaskId !== upstream.upstreamTaskId) {
        log().warn({ expected: current.upstreamTaskId, got: upstream.upstreamTaskId }, 'answer about another upstream task ignored');
        return null;
      }
      if (isTerminal(current.status)) {
        if (current.status !== 'CANCELLED' || !upstream.status || !isTerminal(upstream.status)) return null;
        // Recorded for the record; the task stays cancelled.
        return {
          upstreamStatus: upstream.statusWord,
          videoUrl: upstream.videoUrl ?? current.videoUrl,
          lastFrameUrl: upstream.lastFrameUrl ?? current.lastFrameUrl,
          expiresAt: upstream.expiresAt ?? current.expiresAt,
        };
      }
      if (upstream.status === null) log().warn({ statusWord: upstream.statusWord }, 'unknown upstream status word; task kept as it was');
      let status = upstream.status ?? (current.status === 'SUBMITTING' ? 'QUEUED' : current.status);
      // An answer older than what is known (a late poll, a callback out of order) can add progress at
      // most: its status word and estimate describe the past.
      const stale = STATUS_RANK[status] < STATUS_RANK[current.status];
      if (stale) status = current.status;
      const now = this.now();
      const patch: TaskPatch = {
        upstreamTaskId: upstream.upstreamTaskId,
        upstreamStatus: stale ? current.upstreamStatus : upstream.statusWord,
        status,
        progress: status === 'COMPLETED' ? 100 : Math.max(current.progress, upstream.progress ?? 0),
        videoUrl: upstream.videoUrl ?? current.videoUrl,
        lastFrameUrl: upstream.lastFrameUrl ?? current.lastFrameUrl,
        expiresAt: upstream.expiresAt ?? current.expiresAt,
        estimatedTimeSeconds: stale ? current.estimatedTimeSeconds : upstream.taskInfo?.estimatedTimeSeconds ?? current.estimatedTimeSeconds,
        usage: upstream.usage ?? current.usage,
        lastPollError: upstream.status === null ? `unknown upstream status "${upstream.statusWord}"` : null,
      };
      if (status === 'FAILED') Object.assign(patch, errorColumns(upstream.error ?? {
        code: 'GENERATION_FAILED', type: null, message: 'The provider reported the generation as failed without a reason.', param: null, fallbackSuggestion: null,
      }));
      if (isTerminal(status)) {
        patch.completedAt = upstream.completedAt ?? now;
        patch.nextPollAt = null;
        // The provider keeps results for 24 hours: copy them to our storage now.
        if (status === 'COMPLETED' && patch.videoUrl) Object.assign(patch, { archiveStatus: 'PENDING', archiveNextAt: now, archiveAttempts: 0 });
      } else if (source !== 'callback') {
        // A callback is an extra: the poller's own pace is left as it was.
        const delay = source === 'submission'
          ? this.deps.schedule.first()
          : this.deps.schedule.next(status, patch.estimatedTimeSeconds ?? null);
        patch.nextPollAt = new Date(now.getTime() + delay);
      }
      if (source !== 'callback') patch.pollFailures = 0;
      return patch;
    });
  }

  /** A poll that failed in a way that may heal: try again after `delayMs`. */
  recordPollFailure(taskId: string, message: string, delayMs: number): VideoTaskRow | undefined {
    return this.write(taskId, (current) => isTerminal(current.status) ? null : {
      pollFailures: current.pollFailures + 1,
      lastPollError: message.slice(0, 500),
      nextPollAt: new Date(this.now().getTime() + delayMs),
    }, false);
  }

  /** Ends a task FAILED with the given error (upstream refusals that will not heal, TIMEOUT, ...). */
  fail(taskId: string, error: UpstreamErrorBody): VideoTaskRow | undefined {
    return this.write(taskId, (current) => isTerminal(current.status) ? null : {
      status: 'FAILED',
      ...errorColumns(error),
      completedAt: this.now(),
      nextPollAt: null,
    });
  }

  /** Stops tracking a task that has not finished. The provider cannot be told (no documented call). */
  cancel(principal: Principal, taskId: string): CancelVideoTaskResult {
    const current = this.find(principal, taskId);
    const refused = (code: string, message: string): CancelVideoTaskResult =>
      ({ task: current ?? null, upstreamCancelled: false, message, userErrors: [{ field: ['id'], code, message }] });
    if (!current) return refused('NOT_FOUND', 'No such task.');
    if (isTerminal(current.status)) return refused('ALREADY_FINISHED', `The task already ended ${current.status}.`);
    const task = this.write(taskId, (row) => isTerminal(row.status) ? null : {
      status: 'CANCELLED',
      completedAt: this.now(),
      nextPollAt: null,
    });
    if (!task || task.status !== 'CANCELLED') return refused('ALREADY_FINISHED', `The task already ended ${task?.status}.`);
    return {
      task,
      upstreamCancelled: false,
      message: 'Cancelled here: the task is no longer tracked. The providers document no cancel call, so the upstream may still finish (and bill) it; a late result is recorded but does not revive the task.',
      userErrors: [],
    };
  }

  /** Extends this process's lease on a task it is still working on (a long download). */
  renewLease(taskId: string): void {
    this.deps.store.renewLease(taskId, this.deps.owner, new Date(this.now().getTime() + this.deps.leaseMs));
  }

  /** Takes results due to be archived, for this process. */
  claimArchives(limit: number): VideoTaskRow[] {
    const now = this.now();
    return this.deps.store.claimArchives(this.deps.owner, now, new Date(now.getTime() + this.deps.leaseMs), limit);
  }

  recordArchived(taskId: string, archive: { videoKey: string; lastFrameKey: string | null; bytes: number; sha256: string }): VideoTaskRow | undefined {
    return this.write(taskId, (current) => current.archiveStatus !== 'PENDING' ? null : {
      archiveStatus: 'ARCHIVED',
      archiveError: null,
      archiveNextAt: null,
      archivedAt: this.now(),
      archivedVideoKey: archive.videoKey,
      archivedLastFrameKey: archive.lastFrameKey,
      archivedVideoBytes: archive.bytes,
      archivedVideoSha256: archive.sha256,
    });
  }

  /** A failed archive attempt: tried again after `retryInMs`, or given up (null) with the reason shown. */
  recordArchiveFailure(taskId: string, reason: string, retryInMs: number | null): VideoTaskRow | undefined {
    return this.write(taskId, (current) => {
      if (current.archiveStatus !== 'PENDING') return null;
      const attempts = current.archiveAttempts + 1;
      return retryInMs === null
        ? { archiveStatus: 'FAILED', archiveError: reason.slice(0, 500), archiveNextAt: null, archiveAttempts: attempts }
        : { archiveError: reason.slice(0, 500), archiveNextAt: new Date(this.now().getTime() + retryInMs), archiveAttempts: attempts };
    }, retryInMs === null);
  }

  /** Retention: deletes the archived files of tasks archived before `before`; returns how many. */
  async expireArchives(before: Date): Promise<number> {
    const expired = this.deps.store.archivedBefore(before, 500);
    for (const task of expired) {
      for (const key of [task.archivedVideoKey, task.archivedLastFrameKey]) if (key) await this.deps.storage?.delete(key);
      this.write(task.id, () => ({
        archiveStatus: 'DELETED', archivedVideoKey: null, archivedLastFrameKey: null,
        archiveError: `RETENTION: archived files are kept ${Math.round((this.now().getTime() - before.getTime()) / 86_400_000)} days`,
      }));
    }
    return expired.length;
  }

  children(principal: Principal, taskId: string): VideoTaskRow[] {
    return this.deps.store.children(taskId).filter((task) => canSee(principal, task));
  }

  /** Deletes a task and its archived files. Uploads stay: they are shared by content. */
  async deleteTask(principal: Principal, taskId: string): Promise<{ deletedTaskId: string | null; userErrors: UserError[] }> {
    const task = this.find(principal, taskId);
    if (!task) return { deletedTaskId: null, userErrors: [{ field: ['id'], code: 'NOT_FOUND', message: 'No such task.' }] };
    if (!isTerminal(task.status)) {
      return { deletedTaskId: null, userErrors: [{ field: ['id'], code: 'NOT_FINISHED', message: 'The task has not finished: cancel it first.' }] };
    }
    this.deps.store.delete(taskId);
    for (const key of [task.archivedVideoKey, task.archivedLastFrameKey]) {
      if (key) await this.deps.storage?.delete(key);
    }
    this.deps.logger.info({ taskId }, 'task deleted');
    return { deletedTaskId: taskId, userErrors: [] };
  }

  /**
   * A new task starting on the last frame of a completed one. The catalog decides: the parent's model
   * must return its last frame, the parent must have asked for it, and the new model must take a
   * first-frame image. `lastFrameUrl` is where the provider can fetch that frame.
   */
  async extend(
    principal: Principal, parentId: string, input: Omit<CreateVideoTaskInput, 'model' | 'imageUrls' | 'images'> & { model?: string | null },
    lastFrameUrl: (parent: VideoTaskRow) => string | null, meta: { requestId?: string } = {},
  ): Promise<CreateVideoTaskResult> {
    const refuse = (field: string[], code: string, message: string): CreateVideoTaskResult => ({ task: null, userErrors: [{ field, code, message }] });
    const parent = this.find(principal, parentId);
    if (!parent) return refuse(['id'], 'NOT_FOUND', 'No such task.');
    const parentModel = findVideoModel(parent.model);
    if (!parentModel?.returnLastFrame) {
      return refuse(['id'], 'NOT_SUPPORTED', `${parent.model} does not return its last frame; models that do: ${VIDEO_MODELS.filter((m) => m.returnLastFrame).map((m) => m.id).join(', ')}.`);
    }
    if (parent.status !== 'COMPLETED') return refuse(['id'], 'NOT_COMPLETED', `The task is ${parent.status}; only a completed task can be extended.`);
    if (!parent.request.returnLastFrame) return refuse(['id'], 'NO_LAST_FRAME', 'The task was not created with returnLastFrame: true, so it has no last frame.');
    const frame = lastFrameUrl(parent);
    if (!frame) return refuse(['id'], 'NO_LAST_FRAME', 'The provider returned no last frame for this task.');
    const model = findVideoModel(input.model ?? parent.model);
    if (!model) return refuse(['input', 'model'], 'UNKNOWN_MODEL', `Unknown model "${input.model}".`);
    const frameInput = model.imageRoles?.FIRST_FRAME
      ? { images: [{ url: frame, role: 'FIRST_FRAME' as const }] }
      : model.imageUrls ? { imageUrls: [frame] } : null;
    if (!frameInput) return refuse(['input', 'model'], 'NOT_SUPPORTED', `${model.id} cannot start from an image.`);
    return this.create(principal, { ...input, model: model.id, ...frameInput }, { ...meta, parentTaskId: parent.id, trustedUrls: [frame] });
  }

  /** Takes due tasks of one provider for this process (see TaskStore.claimDue). */
  claimDue(provider: string, limit: number): VideoTaskRow[] {
    const now = this.now();
    return this.deps.store.claimDue(provider, this.deps.owner, now, new Date(now.getTime() + this.deps.leaseMs), limit);
  }

  /**
   * An upstream callback (seed 003) for a task, authenticated by the per-task token in its URL.
   * It goes through the same update path as a poll, so it is idempotent and safe out of order, and
   * it adopts the upstream id of a task whose submission answer was lost.
   */
  applyCallback(taskId: string, token: string, body: unknown): CallbackOutcome {
    const row = this.get(taskId);
    if (!row?.callbackTokenHash) return 'not_found';
    const expected = Buffer.from(row.callbackTokenHash, 'hex');
    const given = sha256(token);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'not_found';
    const model = findVideoModel(row.model);
    if (!model) return 'not_found';
    let upstream: UpstreamTask;
    try {
      upstream = ENDPOINT_FAMILIES[model.family].readTask(body);
    } catch {
      return 'unreadable';
    }
    this.applyUpstream(taskId, upstream, 'callback');
    return 'applied';
  }

  /** The task now, then every change, ending after a terminal state (and its archive, if any). */
  watch(principal: Principal, taskId: string): TaskStream {
    return new TaskStream(new TaskWatch(this, this.deps.events, principal, taskId));
  }

  /** Every change of every task matching the filter. */
  watchAll(principal: Principal, filter: TaskFilter): AsyncIterableIterator<VideoTaskRow> {
    return new TaskStream({
      subscribe: () => this.deps.events.subscribeAll(),
      accept: (task) => canSee(principal, task)
        && (!filter.statuses?.length || filter.statuses.includes(task.status))
        && (!filter.models?.length || filter.models.includes(task.model)),
    });
  }

  /**
   * Marks the attempt (and the callback token), makes it durable, then sends the create request:
   * a machine crash must not forget an attempt whose request may have left (it would be sent twice).
   * `recorded` when the row was written with its attempt already marked (create: see insertSubmitting).
   */
  private async sendSubmission(row: VideoTaskRow, route: ProviderRoute, recorded?: { callbackUrl?: string }): Promise<UpstreamTask> {
    let callbackUrl = recorded?.callbackUrl;
    if (!recorded) {
      const callbackFor = this.callbackUrlFor(row, route);
      const token = callbackFor ? randomBytes(32).toString('base64url') : null;
      this.deps.store.update(row.id, {
        submissionAttemptedAt: this.now(),
        callbackTokenHash: token ? sha256(token).toString('hex') : null,
      });
      callbackUrl = callbackFor && token ? callbackFor(token) : undefined;
    }
    await this.durability.sync();
    const upstreamTask = await this.deps.upstream.submit(route, row.request, { callbackUrl });
    this.deps.logger.info({ taskId: row.id, provider: route.provider, upstreamTaskId: upstreamTask.upstreamTaskId }, 'task submitted');
    return upstreamTask;
  }

  private callbackUrlFor(row: Pick<VideoTaskRow, 'id'>, route: ProviderRoute): ((token: string) => string) | null {
    const base = this.deps.publicUrl;
    if (!base || !route.model.callback || !route.acceptsCallbackTo(base)) return null;
    return (token) => `${base}/webhooks/upstream/${encodeURIComponent(row.id)}/${token}`;
  }

  /**
   * A provider that answers with an error status created nothing. For a client's request the row goes
   * and the client gets the provider's words, typed; in the background a refusal that may heal (429,
   * 5xx) is retried later and one that will not ends the task FAILED. Without an answer (timeout,
   * reset, unreadable body) the provider may or may not have the task: see resumeSubmission.
   */
  private submissionFailed(row: VideoTaskRow, route: ProviderRoute, error: UpstreamFailure, caller: 'request' | 'background'): CreateVideoTaskResult {
    const log = this.deps.logger.child({ taskId: row.id, provider: row.provider });
    if (error instanceof UpstreamHttpError) {
      log.warn({ httpStatus: error.httpStatus, upstreamError: error.body }, 'provider refused the submission');
      if (caller === 'background') {
        if (error.retryable) {
          const delay = this.deps.schedule.backoff(row.pollFailures + 1, error.httpStatus, error.retryAfterSeconds);
          this.write(row.id, () => ({ submissionAttemptedAt: null, callbackTokenHash: null }), false);
          this.recordPollFailure(row.id, error.message, delay);
        } else {
          this.fail(row.id, error.body);
        }
        return { task: this.get(row.id) ?? null, userErrors: [] };
      }
      this.deps.store.delete(row.id);
      const inputField = inputFieldForParam(route.model, error.body.param);
      return {
        task: null,
        userErrors: [{
          field: inputField ? ['input', inputField] : ['input'],
          code: REFUSAL_CODES[error.httpStatus] ?? 'UPSTREAM_UNAVAILABLE',
          message: `The provider refused the request: ${error.body.message}`
            + (error.body.fallbackSuggestion ? ` (suggestion: ${error.body.fallbackSuggestion})` : ''),
          upstream: { ...error.body, httpStatus: error.httpStatus, retryAfterSeconds: error.retryAfterSeconds },
        }],
      };
    }
    if (!(error instanceof UpstreamTransportError) && !(error instanceof UpstreamProtocolError)) throw error;
    log.error({ err: error }, 'submission outcome unknown');
    const current = this.get(row.id);
    if (current?.callbackTokenHash) {
      // The provider calls back if it got the task; the row waits for that (resumeSubmission).
      this.write(row.id, () => ({ lastPollError: `submission unconfirmed: ${error.message}` }), false);
    } else {
      this.fail(row.id, {
        code: 'SUBMISSION_UNCONFIRMED',
        type: error instanceof UpstreamTransportError ? 'upstream_unreachable' : 'upstream_protocol_error',
        message: `The provider did not confirm the submission (${error.message}); it may still have created the task, which cannot be tracked.`,
        param: null,
        fallbackSuggestion: 'create the task again',
      });
    }
    return {
      task: this.get(row.id) ?? null,
      userErrors: caller === 'request'
        ? [{ field: ['input'], code: 'UPSTREAM_UNAVAILABLE', message: 'The provider did not confirm the submission; see the task\'s status and error.' }]
        : [],
    };
  }

  /**
   * The single write path: reads the row, asks `change` for a patch (null: nothing to do), writes it
   * in the same transaction, releases this process's lease, and publishes visible changes afterwards.
   */
  private write(taskId: string, change: (current: VideoTaskRow) => TaskPatch | null, visible = true): VideoTaskRow | undefined {
    const { store, owner } = this.deps;
    let changed = false;
    const task = store.transaction(() => {
      const current = store.get(taskId);
      if (!current) return undefined;
      const held = current.leaseOwner === owner;
      const patch = change(current);
      // Done with the task either way: a held lease is released even when nothing else changes.
      if (!patch) return held ? store.updateRow(current, { leaseOwner: null, leaseExpiresAt: null }) : current;
      if (held) Object.assign(patch, { leaseOwner: null, leaseExpiresAt: null });
      changed = visible && isVisibleChange(current, patch);
      if (changed) Object.assign(patch, { version: current.version + 1, updatedAt: this.now() });
      return store.updateRow(current, patch);
    });
    if (changed && task) this.deps.events.publish(task);
    return task;
  }
}

const VISIBLE_FIELDS = [
  'status', 'progress', 'upstreamTaskId', 'upstreamStatus', 'videoUrl', 'lastFrameUrl', 'expiresAt',
  'errorCode', 'errorMessage', 'estimatedTimeSeconds', 'completedAt', 'archiveStatus', 'archiveError',
] as const;

/** Nothing more will happen to the task: it ended, and its result is archived or will not be. */
const isSettled = (task: VideoTaskRow) => isTerminal(task.status) && task.archiveStatus !== 'PENDING';

/**
 * What watch() streams: one task as it is, then its changes, until it settles. An object with methods
 * rather than closures: one is held by every idle subscriber (bench/memory.ts), and each closure held
 * its own name (tsx keeps function names) besides its context.
 */
class TaskWatch implements TaskStreamOptions {
  /** The version last delivered: events the read already shows, or repeated, are dropped. */
  private version = 0;

  constructor(
    private readonly tasks: VideoTaskService, private readonly events: TaskEvents,
    private readonly principal: Principal, private readonly taskId: string,
  ) {}

  subscribe(): AsyncIterator<VideoTaskRow> {
    return this.events.subscribeTask(this.taskId);
  }

  read(): VideoTaskRow | undefined {
    const current = this.tasks.find(this.principal, this.taskId);
    if (current) this.version = current.version;
    return current;
  }

  accept(task: VideoTaskRow): boolean {
    if (task.version <= this.version) return false;
    this.version = task.version;
    return true;
  }

  last(task: VideoTaskRow): boolean {
    return isSettled(task);
  }
}

function isVisibleChange(current: VideoTaskRow, patch: TaskPatch): boolean {
  return VISIBLE_FIELDS.some((field) => {
    if (!(field in patch)) return false;
    const before = current[field];
    const after = patch[field];
    return before instanceof Date || after instanceof Date
      ? (before as Date | null)?.getTime() !== (after as Date | null | undefined)?.getTime()
      : before !== after;
  });
}

function errorColumns(error: UpstreamErrorBody): TaskPatch {
  return {
    errorCode: error.code ?? 'UPSTREAM_ERROR',
    errorType: error.type,
    errorMessage: error.message,
    errorParam: error.param,
    errorFallbackSuggestion: error.fallbackSuggestion,
  };
}
