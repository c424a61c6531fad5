CREATE TABLE `media_assets` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`sha256` text NOT NULL,
	`kind` text NOT NULL,
	`content_type` text NOT NULL,
	`bytes` integer NOT NULL,
	`storage_key` text NOT NULL,
	`filename` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `media_assets_owner_sha_idx` ON `media_assets` (`owner_id`,`sha256`);--> statement-breakpoint
CREATE INDEX `media_assets_sha_idx` ON `media_assets` (`sha256`);--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archive_status` text;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archive_error` text;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archive_attempts` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archive_next_at` integer;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archived_at` integer;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archived_video_key` text;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archived_last_frame_key` text;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archived_video_bytes` integer;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `archived_video_sha256` text;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `parent_task_id` text;--> statement-breakpoint
CREATE INDEX `video_tasks_archive_due_idx` ON `video_tasks` (`archive_next_at`) WHERE "video_tasks"."archive_next_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `video_tasks_parent_idx` ON `video_tasks` (`parent_task_id`) WHERE "video_tasks"."parent_task_id" IS NOT NULL;