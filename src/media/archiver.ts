// Copies each completed task's video (and last frame, when asked for) to our own storage before the
// provider's link expires: streamed, size-capped, type-checked, checksummed, retried with backoff.
// Which results wait, and who holds one, lives in SQLite (archive_next_at and the task lease), so an
// archive interrupted by a restart is done again, once.
import type { Logger } from 'pino';
import { requestContext } from '../observability/request-context.ts';
import type { VideoTaskRow } from '../storage/schema.ts';
import type { VideoTaskService } from '../tasks/task-service.ts';
import type { ProviderDirectory } from '../upstream/providers.ts';
import { MediaTooLargeError, type MediaStorage } from './media-storage.ts';
import { isComplete, sniffMediaType } from './media-types.ts';
import { DownloadHttpError, DownloadRefusedError, redact, type DownloadPermission, type SafeDownloader } from './safe-download.ts';

export interface ArchiverOptions {
  tickMs: number;
  concurrency: number;
  maxBytes: number;
  maxAttempts: number;
  /** Backoff between attempts: base * 2^(attempt-1), capped. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Archived files older than this are deleted; 0 keeps them. */
  retentionDays: number;
}

export interface ArchiverDeps {
  tasks: VideoTaskService;
  providers: ProviderDirectory;
  storage: MediaStorage;
  downloader: SafeDownloader;
  logger: Logger;
  options: ArchiverOptions;
  /** How long a claim holds (the task lease); renewed while a download runs. */
  leaseMs: number;
  now?: () => Date;
  onOutcome?: (outcome: 'archived' | 'failed' | 'retry') => void;
  /** Lists archived tasks older than a date and forgets their files (retention). */
  expireArchives?: (before: Date) => Promise<number>;
}

/** Not worth retrying: the link is gone or expired, or the content is not what it should be. */
class PermanentArchiveError extends Error {}

export class Archiver {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly active = new Set<Promise<void>>();
  private readonly now: () => Date;
  private lastRetentionSweep = 0;

  constructor(private readonly deps: ArchiverDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.active]);
  }

  tick(): void {
    const free = this.deps.options.concurrency - this.active.size;
    if (free > 0) {
      let claimed: VideoTaskRow[] = [];
      try {
        claimed = this.deps.tasks.claimArchives(free);
      } catch (error) {
        this.deps.logger.error({ err: error }, 'claiming archives failed');
      }
      for (const row of claimed) {
        const context = { requestId: row.requestId ?? `task-${row.id}`, taskId: row.id };
        const work: Promise<void> = requestContext.run(context, () => this.archiveOne(row))
          .catch((error) => { this.deps.logger.error({ err: error }, 'archive crashed; retried after the lease'); })
          .finally(() => this.active.delete(work));
        this.active.add(work);
      }
    }
    this.sweepRetention();
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.tick();
      this.schedule(this.deps.options.tickMs);
    }, delayMs);
  }

  async archiveOne(row: VideoTaskRow): Promise<void> {
    const { tasks, providers, logger, options } = this.deps;
    const route = providers.route(row.model, row.provider);
    const fail = (reason: string) => {
      logger.warn({ reason }, 'archive failed');
      tasks.recordArchiveFailure(row.id, reason, null);
      this.deps.onOutcome?.('failed');
    };
    if (!row.videoUrl) return fail('NO_RESULT: the task has no video URL');
    if (row.expiresAt && row.expiresAt <= this.now()) {
      return fail(`EXPIRED: the provider's link expired at ${row.expiresAt.toISOString()}, before it could be archived`);
    }
    if (!route) return fail(`PROVIDER_GONE: provider "${row.provider}" is not configured, so its result host cannot be trusted`);
    // A long download outlasts one lease: keep it, or another tick (or process) would start a second copy.
    const renewal = setInterval(() => tasks.renewLease(row.id), Math.max(1_000, this.deps.leaseMs / 3));
    renewal.unref();
    try {
      const video = await this.download(row.videoUrl, route.downloads, `archives/${row.id}/video`, 'VIDEO');
      const lastFrame = row.lastFrameUrl && row.request.returnLastFrame
        ? await this.download(row.lastFrameUrl, route.downloads, `archives/${row.id}/last-frame`, 'IMAGE')
        : null;
      tasks.recordArchived(row.id, { videoKey: video.key, lastFrameKey: lastFrame?.key ?? null, bytes: video.bytes, sha256: video.sha256 });
      logger.info({ bytes: video.bytes, sha256: video.sha256 }, 'result archived');
      this.deps.onOutcome?.('archived');
    } catch (error) {
      const reason = describe(error);
      const attempts = row.archiveAttempts + 1;
      if (error instanceof PermanentArchiveError || error instanceof DownloadRefusedError || attempts >= options.maxAttempts
        || (error instanceof DownloadHttpError && [401, 403, 404, 410].includes(error.httpStatus))) {
        const expired = error instanceof DownloadHttpError && [403, 404, 410].includes(error.httpStatus);
        return fail(expired ? `EXPIRED: the provider no longer serves the result (${reason})` : reason);
      }
      const delay = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** (attempts - 1)) * (0.8 + 0.4 * Math.random());
      logger.warn({ reason, attempts, delayMs: Math.round(delay) }, 'archive attempt failed; retrying');
      tasks.recordArchiveFailure(row.id, reason, delay);
      this.deps.onOutcome?.('retry');
    } finally {
      clearInterval(renewal);
    }
  }

  private async download(url: string, permission: DownloadPermission, keyStem: string, kind: 'VIDEO' | 'IMAGE') {
    const { storage, downloader, options } = this.deps;
    const response = await downloader.open(url, permission);
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      // Destroying an undici body emits an abort error: with no listener it would crash the process.
      response.body.on('error', () => {}).destroy();
      throw new PermanentArchiveError(`TOO_LARGE: ${declared} bytes, more than ARCHIVE_MAX_BYTES (${options.maxBytes})`);
    }
    let staged;
    try {
      staged = await storage.stage(response.body, options.maxBytes);
    } catch (error) {
      if (error instanceof MediaTooLargeError) throw new PermanentArchiveError(`TOO_LARGE: more than ARCHIVE_MAX_BYTES (${options.maxBytes})`);
      throw error;
    }
    try {
      if (Number.isFinite(declared) && staged.bytes !== declared) {
        throw new Error(`TRUNCATED: got ${staged.bytes} of ${declared} bytes from ${redact(url)}`);
      }
      const type = await sniffMediaType(staged.head);
      if (!type || type.kind !== kind) {
        throw new PermanentArchiveError(`WRONG_TYPE: expected ${kind === 'VIDEO' ? 'an MP4 video' : 'an image'}, got ${type?.contentType ?? 'unknown content'}`);
      }
      if (!(await isComplete(staged.tempPath, type, staged.bytes))) throw new Error(`TRUNCATED: the ${type.contentType} file is incomplete`);
      const key = `${keyStem}.${type.extension}`;
      await storage.commit(staged, key);
      return { key, bytes: staged.bytes, sha256: staged.sha256 };
    } finally {
      await storage.discard(staged);
    }
  }

  private sweepRetention(): void {
    const { retentionDays } = this.deps.options;
    const sweep = this.deps.expireArchives;
    const now = this.now().getTime();
    if (!retentionDays || !sweep || now - this.lastRetentionSweep < 60_000) return;
    this.lastRetentionSweep = now;
    const work: Promise<void> = sweep(new Date(now - retentionDays * 86_400_000))
      .then((count) => { if (count) this.deps.logger.info({ count }, 'archived results past retention deleted'); })
      .catch((error) => { this.deps.logger.error({ err: error }, 'retention sweep failed'); })
      .finally(() => this.active.delete(work));
    this.active.add(work);
  }
}

function describe(error: unknown): string {
  if (error instanceof DownloadHttpError) return `HTTP_${error.httpStatus}: ${error.message}`;
  if (error instanceof DownloadRefusedError) return `REFUSED: ${error.message}`;
  if (error instanceof Error) return error.message.startsWith('TRUNCATED') || /^[A-Z_]+:/.test(error.message) ? error.message : `DOWNLOAD_FAILED: ${error.message}`;
  return String(error);
}
