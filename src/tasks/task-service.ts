// The one place that creates video tasks and changes their state. GraphQL calls it to create and
// read; the poller (and upstream callbacks) hand it what the upstream said through `applyUpstream`.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { TaskListQuery, TaskPatch, TaskStore } from '../storage/task-store.ts';
import type { VideoTaskRow } from '../storage/schema.ts';
import { UpstreamHttpError, UpstreamProtocolError, UpstreamTransportError, type UpstreamFailure } from '../upstream/errors.ts';
import type { ProviderDirectory } from '../upstream/providers.ts';
import { inputFieldForParam } from '../upstream/request-body.ts';
import type { UpstreamClient } from '../upstream/upstream-client.ts';
import type { UpstreamTask } from '../upstream/types.ts';
import type { VideoModel } from './catalog.ts';
import { isTerminal } from './status.ts';
import { validateCreateVideoTask, type CreateVideoTaskInput, type UserError } from './validation.ts';

export interface CreateVideoTaskResult {
  task: VideoTaskRow | null;
  userErrors: UserError[];
}

export interface TaskServiceDeps {
  store: TaskStore;
  upstream: UpstreamClient;
  providers: ProviderDirectory;
  logger: Logger;
  now?: () => Date;
  newId?: () => string;
  /** How soon after submission a task is first due to be polled. */
  firstPollDelayMs?: number;
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

export class VideoTaskService {
  private readonly now: () => Date;
  private readonly newId: () => string;

  constructor(private readonly deps: TaskServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.newId = deps.newId ?? randomUUID;
  }

  get(id: string): VideoTaskRow | undefined {
    return this.deps.store.get(id);
  }

  getMany(ids: readonly string[]): VideoTaskRow[] {
    return this.deps.store.getMany(ids);
  }

  list(query: TaskListQuery): VideoTaskRow[] {
    return this.deps.store.list(query);
  }

  /**
   * Validates, records, then submits. The row is written before the upstream call so that a crash
   * in between leaves a SUBMITTING task to reconcile rather than an upstream task nobody knows of.
   * A request refused here or by the provider leaves no row.
   */
  async create(input: CreateVideoTaskInput): Promise<CreateVideoTaskResult> {
    const validation = validateCreateVideoTask(input);
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

    const createdAt = this.now();
    const row = this.deps.store.insert({
      id: this.newId(),
      model: model.id,
      provider: route.provider,
      request,
      prompt: request.prompt,
      status: 'SUBMITTING',
      progress: 0,
      createdAt,
      updatedAt: createdAt,
    });

    let upstreamTask: UpstreamTask;
    try {
      upstreamTask = await this.deps.upstream.submit(route, request);
    } catch (error) {
      return this.submissionFailed(row, model, error as UpstreamFailure);
    }
    this.deps.logger.info({ taskId: row.id, provider: route.provider, upstreamTaskId: upstreamTask.upstreamTaskId }, 'task submitted');
    return { task: this.applyUpstream(row.id, upstreamTask) ?? null, userErrors: [] };
  }

  /**
   * Records what the upstream said about a task, in one transaction. Progress never goes backwards,
   * and a terminal status is never left. Returns the row as it now is (unchanged if nothing applied).
   */
  applyUpstream(taskId: string, upstream: UpstreamTask): VideoTaskRow | undefined {
    const { store } = this.deps;
    return store.transaction(() => {
      const current = store.get(taskId);
      if (!current) return undefined;
      if (isTerminal(current.status)) return current;
      const now = this.now();
      // An unknown status word keeps the task where it was (a submitted task is at least queued).
      const status = upstream.status ?? (current.status === 'SUBMITTING' ? 'QUEUED' : current.status);
      const completed = status === 'COMPLETED';
      const patch: TaskPatch = {
        upstreamTaskId: upstream.upstreamTaskId,
        upstreamStatus: upstream.statusWord,
        status,
        progress: completed ? 100 : Math.max(current.progress, upstream.progress ?? 0),
        updatedAt: now,
        videoUrl: upstream.videoUrl ?? current.videoUrl,
        lastFrameUrl: upstream.lastFrameUrl ?? current.lastFrameUrl,
        expiresAt: upstream.expiresAt ?? current.expiresAt,
        estimatedTimeSeconds: upstream.taskInfo?.estimatedTimeSeconds ?? current.estimatedTimeSeconds,
        usage: upstream.usage ?? current.usage,
      };
      if (isTerminal(status)) {
        patch.completedAt = upstream.completedAt ?? now;
        patch.nextPollAt = null;
      } else {
        patch.nextPollAt = new Date(now.getTime() + (this.deps.firstPollDelayMs ?? 2_000));
      }
      if (status === 'FAILED') {
        const error = upstream.error;
        patch.errorCode = error?.code ?? 'GENERATION_FAILED';
        patch.errorType = error?.type ?? null;
        patch.errorMessage = error?.message ?? 'The provider reported the generation as failed without a reason.';
        patch.errorParam = error?.param ?? null;
        patch.errorFallbackSuggestion = error?.fallbackSuggestion ?? null;
      }
      return store.update(taskId, patch);
    });
  }

  /**
   * A provider that answers with an error status created nothing: the row goes, and the client gets
   * the provider's words, typed. Without an answer (timeout, reset, unreadable body) the upstream may
   * or may not have created the task, so the row stays, FAILED, saying exactly that.
   */
  private submissionFailed(row: VideoTaskRow, model: VideoModel, error: UpstreamFailure): CreateVideoTaskResult {
    const log = this.deps.logger.child({ taskId: row.id, provider: row.provider });
    if (error instanceof UpstreamHttpError) {
      this.deps.store.delete(row.id);
      log.warn({ httpStatus: error.httpStatus, upstreamError: error.body }, 'provider refused the submission');
      const inputField = inputFieldForParam(model, error.body.param);
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
    const failed = this.deps.store.update(row.id, {
      status: 'FAILED',
      updatedAt: this.now(),
      completedAt: this.now(),
      errorCode: 'SUBMISSION_UNCONFIRMED',
      errorType: error instanceof UpstreamTransportError ? 'upstream_unreachable' : 'upstream_protocol_error',
      errorMessage: `The provider did not confirm the submission (${error.message}); it may still have created the task, which is not tracked.`,
    });
    return {
      task: failed ?? null,
      userErrors: [{ field: ['input'], code: 'UPSTREAM_UNAVAILABLE', message: 'The provider did not confirm the submission; see the task\'s error.' }],
    };
  }
}
