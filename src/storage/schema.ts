// The tables, in one file, with snake_case columns. drizzle-kit generates migrations/ from this.
import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import type { VideoTaskStatus } from '../tasks/status.ts';
import type { VideoRequest } from '../tasks/video-request.ts';

export const videoTasks = sqliteTable('video_tasks', {
  id: text('id').primaryKey(),
  model: text('model').notNull(),
  provider: text('provider').notNull(),
  /** The normalized request (catalog defaults applied): what was, or will be, sent upstream. */
  request: text('request', { mode: 'json' }).$type<VideoRequest>().notNull(),
  prompt: text('prompt'),
  upstreamTaskId: text('upstream_task_id'),
  status: text('status').$type<VideoTaskStatus>().notNull(),
  /** The upstream's own status word, kept as said (an unknown word is recorded here). */
  upstreamStatus: text('upstream_status'),
  progress: integer('progress').notNull().default(0),
  /** Bumped by every change clients can see, so subscribers drop stale or repeated events. */
  version: integer('version').notNull().default(1),
  videoUrl: text('video_url'),
  lastFrameUrl: text('last_frame_url'),
  expiresAt: integer('expires_at', { mode: 'timestamp_ms' }),
  errorCode: text('error_code'),
  errorType: text('error_type'),
  errorMessage: text('error_message'),
  errorParam: text('error_param'),
  errorFallbackSuggestion: text('error_fallback_suggestion'),
  /** Seed 003's task_info and usage, as last reported. */
  estimatedTimeSeconds: integer('estimated_time_seconds'),
  usage: text('usage', { mode: 'json' }).$type<{ billingRule: string | null; creditsReserved: number | null; userGroup: string | null }>(),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  completedAt: integer('completed_at', { mode: 'timestamp_ms' }),
  /** When the poller should next ask the upstream; null once the task is terminal. */
  nextPollAt: integer('next_poll_at', { mode: 'timestamp_ms' }),
  /** Which process holds the task (polling or submitting it), until when: a crashed holder's lease runs out. */
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: integer('lease_expires_at', { mode: 'timestamp_ms' }),
  /** Set just before the create request leaves: a SUBMITTING task without it was never sent. */
  submissionAttemptedAt: integer('submission_attempted_at', { mode: 'timestamp_ms' }),
  /** Consecutive failed polls (for backoff), and what the last one was. */
  pollFailures: integer('poll_failures').notNull().default(0),
  lastPollError: text('last_poll_error'),
  /** SHA-256 of the per-task token in the upstream callback URL. */
  callbackTokenHash: text('callback_token_hash'),
  /** The API key that created the task, or ANONYMOUS_OWNER; a client key sees only its own tasks. */
  ownerId: text('owner_id').notNull().default('anonymous'),
  /** A client's key for retrying createVideoTask safely, and a hash of the input it came with. */
  idempotencyKey: text('idempotency_key'),
  requestFingerprint: text('request_fingerprint'),
  /** The id of the request that created the task, so its log lines can be followed to the upstream. */
  requestId: text('request_id'),
  /** Copying the result to our own storage before the upstream link expires (null: nothing to archive). */
  archiveStatus: text('archive_status').$type<ArchiveStatus>(),
  archiveError: text('archive_error'),
  archiveAttempts: integer('archive_attempts').notNull().default(0),
  /** When the archiver should next try; null when there is nothing to do. */
  archiveNextAt: integer('archive_next_at', { mode: 'timestamp_ms' }),
  archivedAt: integer('archived_at', { mode: 'timestamp_ms' }),
  archivedVideoKey: text('archived_video_key'),
  archivedLastFrameKey: text('archived_last_frame_key'),
  archivedVideoBytes: integer('archived_video_bytes'),
  archivedVideoSha256: text('archived_video_sha256'),
  /** The completed task whose last frame this one starts from (extendVideoTask). */
  parentTaskId: text('parent_task_id'),
}, (table) => [
  // Newest-first keyset paging (created_at, id), optionally within a status or a model.
  index('video_tasks_created_idx').on(table.createdAt, table.id),
  index('video_tasks_status_created_idx').on(table.status, table.createdAt, table.id),
  index('video_tasks_model_created_idx').on(table.model, table.createdAt, table.id),
  // The poller's "what is due" scan only ever looks at unfinished tasks, one provider at a time.
  index('video_tasks_due_idx').on(table.provider, table.nextPollAt).where(sql`${table.nextPollAt} IS NOT NULL`),
  index('video_tasks_upstream_idx').on(table.provider, table.upstreamTaskId),
  // A client's own tasks, newest first.
  index('video_tasks_owner_created_idx').on(table.ownerId, table.createdAt, table.id),
  // A client's unfinished tasks, counted on every create (the concurrency limit) from the index alone:
  // through the index above, every one of the owner's tasks, finished or not, was read from the table.
  index('video_tasks_owner_unfinished_idx').on(table.ownerId).where(sql`${table.nextPollAt} IS NOT NULL`),
  // The archiver's "what is due" scan, and a task's children.
  index('video_tasks_archive_due_idx').on(table.archiveNextAt).where(sql`${table.archiveNextAt} IS NOT NULL`),
  index('video_tasks_parent_idx').on(table.parentTaskId).where(sql`${table.parentTaskId} IS NOT NULL`),
  // One task per (owner, idempotency key), even when two requests race.
  uniqueIndex('video_tasks_idempotency_idx').on(table.ownerId, table.idempotencyKey).where(sql`${table.idempotencyKey} IS NOT NULL`),
]);

export const ANONYMOUS_OWNER = 'anonymous';

/** DELETED: archived, then removed by the retention setting. */
export type ArchiveStatus = 'PENDING' | 'ARCHIVED' | 'FAILED' | 'DELETED';

/** Uploaded media. The file is stored once per content (its SHA-256); each owner gets a row of its own. */
export const mediaAssets = sqliteTable('media_assets', {
  id: text('id').primaryKey(),
  ownerId: text('owner_id').notNull(),
  sha256: text('sha256').notNull(),
  kind: text('kind').$type<'IMAGE' | 'VIDEO' | 'AUDIO'>().notNull(),
  contentType: text('content_type').notNull(),
  bytes: integer('bytes').notNull(),
  storageKey: text('storage_key').notNull(),
  filename: text('filename'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
}, (table) => [
  uniqueIndex('media_assets_owner_sha_idx').on(table.ownerId, table.sha256),
  index('media_assets_sha_idx').on(table.sha256),
]);

export type MediaAssetRow = typeof mediaAssets.$inferSelect;

/** This service's own API keys. Only a SHA-256 of each key is kept. */
export const apiKeys = sqliteTable('api_keys', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  role: text('role').$type<'client' | 'admin'>().notNull(),
  keyHash: text('key_hash').notNull().unique(),
  /** The key's first characters, so an operator can tell keys apart in `keys list`. */
  prefix: text('prefix').notNull(),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
});

export type ApiKeyRow = typeof apiKeys.$inferSelect;

export type VideoTaskRow = typeof videoTasks.$inferSelect;
export type NewVideoTaskRow = typeof videoTasks.$inferInsert;
