CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`key_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`created_at` integer NOT NULL,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_name_unique` ON `api_keys` (`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_key_hash_unique` ON `api_keys` (`key_hash`);--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `owner_id` text DEFAULT 'anonymous' NOT NULL;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `idempotency_key` text;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `request_fingerprint` text;--> statement-breakpoint
ALTER TABLE `video_tasks` ADD `request_id` text;--> statement-breakpoint
CREATE INDEX `video_tasks_owner_created_idx` ON `video_tasks` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `video_tasks_idempotency_idx` ON `video_tasks` (`owner_id`,`idempotency_key`) WHERE "video_tasks"."idempotency_key" IS NOT NULL;