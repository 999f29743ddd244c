CREATE TABLE `rollout_nodes` (
	`rollout_id` int NOT NULL,
	`node_id` char(36) NOT NULL,
	`node_name` varchar(128) NOT NULL,
	`wave` int NOT NULL,
	`state` varchar(16) NOT NULL,
	`base_version` int NOT NULL,
	`base_hash` char(64) NOT NULL,
	`target_text` mediumtext NOT NULL,
	`target_hash` char(64) NOT NULL,
	`target_version` int,
	`sent_at` datetime(3),
	`applied_at` datetime(3),
	`error` varchar(1000),
	`active_node_id` char(36),
	CONSTRAINT `rollout_nodes_pk` PRIMARY KEY(`rollout_id`,`node_id`),
	CONSTRAINT `rollout_nodes_active_uq` UNIQUE(`active_node_id`)
);
--> statement-breakpoint
CREATE TABLE `rollouts` (
	`id` int AUTO_INCREMENT NOT NULL,
	`status` varchar(16) NOT NULL,
	`comment` varchar(1000),
	`spec` longtext NOT NULL,
	`canary_count` int NOT NULL,
	`wave_size` int NOT NULL,
	`bake_s` int NOT NULL,
	`max_scaling_events` int NOT NULL,
	`waves` int NOT NULL,
	`current_wave` int NOT NULL DEFAULT 0,
	`pause_reason` varchar(1000),
	`created_by` varchar(160) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	`finished_at` datetime(3),
	CONSTRAINT `rollouts_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `rollout_nodes_node_idx` ON `rollout_nodes` (`node_id`);--> statement-breakpoint
CREATE INDEX `rollouts_status_idx` ON `rollouts` (`status`);--> statement-breakpoint
CREATE INDEX `rollouts_created_idx` ON `rollouts` (`created_at`);