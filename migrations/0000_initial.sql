CREATE TABLE `video_tasks` (
	`id` text PRIMARY KEY NOT NULL,
	`model` text NOT NULL,
	`provider` text NOT NULL,
	`request` text NOT NULL,
	`prompt` text,
	`upstream_task_id` text,
	`status` text NOT NULL,
	`upstream_status` text,
	`progress` integer DEFAULT 0 NOT NULL,
	`version` integer DEFAULT 1 NOT NULL,
	`video_url` text,
	`last_frame_url` text,
	`expires_at` integer,
	`error_code` text,
	`error_type` text,
	`error_message` text,
	`error_param` text,
	`error_fallback_suggestion` text,
	`estimated_time_seconds` integer,
	`usage` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`completed_at` integer,
	`next_poll_at` integer,
	`lease_owner` text,
	`lease_expires_at` integer,
	`submission_attempted_at` integer,
	`poll_failures` integer DEFAULT 0 NOT NULL,
	`last_poll_error` text,
	`callback_token_hash` text
);
--> statement-breakpoint
CREATE INDEX `video_tasks_created_idx` ON `video_tasks` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `video_tasks_status_created_idx` ON `video_tasks` (`status`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `video_tasks_model_created_idx` ON `video_tasks` (`model`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `video_tasks_due_idx` ON `video_tasks` (`provider`,`next_poll_at`) WHERE "video_tasks"."next_poll_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `video_tasks_upstream_idx` ON `video_tasks` (`provider`,`upstream_task_id`);