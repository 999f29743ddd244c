CREATE TABLE `api_keys` (
	`id` int AUTO_INCREMENT NOT NULL,
	`name` varchar(128) NOT NULL,
	`prefix` varchar(16) NOT NULL,
	`key_hash` char(64) NOT NULL,
	`role` varchar(16) NOT NULL,
	`created_by` varchar(128) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`expires_at` datetime(3),
	`last_used_at` datetime(3),
	`revoked_at` datetime(3),
	CONSTRAINT `api_keys_id` PRIMARY KEY(`id`),
	CONSTRAINT `api_keys_prefix_uq` UNIQUE(`prefix`),
	CONSTRAINT `api_keys_hash_uq` UNIQUE(`key_hash`)
);
--> statement-breakpoint
CREATE TABLE `audit_log` (
	`id` bigint AUTO_INCREMENT NOT NULL,
	`at` datetime(3) NOT NULL,
	`actor_type` varchar(16) NOT NULL,
	`actor_id` varchar(64),
	`actor_name` varchar(128) NOT NULL,
	`action` varchar(64) NOT NULL,
	`target_type` varchar(32),
	`target_id` varchar(64),
	`details` longtext,
	`address` varchar(64),
	CONSTRAINT `audit_log_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `config_versions` (
	`id` int AUTO_INCREMENT NOT NULL,
	`node_id` char(36) NOT NULL,
	`version` int NOT NULL,
	`body` longtext NOT NULL,
	`hash` char(64) NOT NULL,
	`source` varchar(16) NOT NULL,
	`author` varchar(128) NOT NULL,
	`comment` varchar(1000),
	`rolled_back_from` int,
	`created_at` datetime(3) NOT NULL,
	CONSTRAINT `config_versions_id` PRIMARY KEY(`id`),
	CONSTRAINT `config_versions_node_version_uq` UNIQUE(`node_id`,`version`)
);
--> statement-breakpoint
CREATE TABLE `enrollment_tokens` (
	`id` int AUTO_INCREMENT NOT NULL,
	`name` varchar(128) NOT NULL,
	`prefix` varchar(16) NOT NULL,
	`token_hash` char(64) NOT NULL,
	`created_by` varchar(128) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`expires_at` datetime(3),
	`max_uses` int,
	`uses` int NOT NULL DEFAULT 0,
	`last_used_at` datetime(3),
	`revoked_at` datetime(3),
	CONSTRAINT `enrollment_tokens_id` PRIMARY KEY(`id`),
	CONSTRAINT `enrollment_tokens_hash_uq` UNIQUE(`token_hash`)
);
--> statement-breakpoint
CREATE TABLE `instance_pools` (
	`id` int AUTO_INCREMENT NOT NULL,
	`node_id` char(36) NOT NULL,
	`pool_ocid` varchar(255) NOT NULL,
	`display_name` varchar(255),
	`compartment_id` varchar(255),
	`region` varchar(64),
	`current_size` int,
	`min_size` int,
	`max_size` int,
	`last_metrics_at` datetime(3),
	`last_cpu_util` double,
	`last_memory_util` double,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `instance_pools_id` PRIMARY KEY(`id`),
	CONSTRAINT `instance_pools_node_ocid_uq` UNIQUE(`node_id`,`pool_ocid`)
);
--> statement-breakpoint
CREATE TABLE `login_failures` (
	`id` bigint AUTO_INCREMENT NOT NULL,
	`username` varchar(64) NOT NULL,
	`address` varchar(64) NOT NULL,
	`at` datetime(3) NOT NULL,
	CONSTRAINT `login_failures_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `metric_rollups_1h` (
	`node_id` char(36) NOT NULL,
	`pool_id` int NOT NULL,
	`bucket_start` datetime(3) NOT NULL,
	`samples` int NOT NULL,
	`cpu_avg` double NOT NULL,
	`cpu_min` double NOT NULL,
	`cpu_max` double NOT NULL,
	`memory_avg` double NOT NULL,
	`memory_min` double NOT NULL,
	`memory_max` double NOT NULL,
	`instance_count_last` int NOT NULL,
	CONSTRAINT `metric_rollups_1h_pk` PRIMARY KEY(`node_id`,`pool_id`,`bucket_start`)
);
--> statement-breakpoint
CREATE TABLE `metric_rollups_5m` (
	`node_id` char(36) NOT NULL,
	`pool_id` int NOT NULL,
	`bucket_start` datetime(3) NOT NULL,
	`samples` int NOT NULL,
	`cpu_avg` double NOT NULL,
	`cpu_min` double NOT NULL,
	`cpu_max` double NOT NULL,
	`memory_avg` double NOT NULL,
	`memory_min` double NOT NULL,
	`memory_max` double NOT NULL,
	`instance_count_last` int NOT NULL,
	CONSTRAINT `metric_rollups_5m_pk` PRIMARY KEY(`node_id`,`pool_id`,`bucket_start`)
);
--> statement-breakpoint
CREATE TABLE `metric_samples` (
	`node_id` char(36) NOT NULL,
	`pool_id` int NOT NULL,
	`ts` datetime(3) NOT NULL,
	`cpu_util` double NOT NULL,
	`memory_util` double NOT NULL,
	`instance_count` int NOT NULL,
	CONSTRAINT `metric_samples_pk` PRIMARY KEY(`node_id`,`pool_id`,`ts`)
);
--> statement-breakpoint
CREATE TABLE `nodes` (
	`id` char(36) NOT NULL,
	`name` varchar(128) NOT NULL,
	`display_name` varchar(255),
	`hostname` varchar(255) NOT NULL,
	`region` varchar(64),
	`agent_version` varchar(64),
	`labels` longtext NOT NULL,
	`token_hash` char(64),
	`token_issued_at` datetime(3),
	`registered_at` datetime(3) NOT NULL,
	`last_heartbeat_at` datetime(3),
	`last_address` varchar(64),
	`reported_status` varchar(32),
	`uptime_s` bigint,
	`desired_version_id` int,
	`desired_hash` char(64),
	`desired_changed_at` datetime(3),
	`applied_hash` char(64),
	`config_state` varchar(16) NOT NULL DEFAULT 'pending',
	`config_error` text,
	`config_acked_at` datetime(3),
	`decommissioned_at` datetime(3),
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `nodes_id` PRIMARY KEY(`id`),
	CONSTRAINT `nodes_name_uq` UNIQUE(`name`)
);
--> statement-breakpoint
CREATE TABLE `scaling_events` (
	`id` bigint AUTO_INCREMENT NOT NULL,
	`node_id` char(36) NOT NULL,
	`pool_id` int NOT NULL,
	`ts` datetime(3) NOT NULL,
	`direction` varchar(4) NOT NULL,
	`from_count` int,
	`to_count` int,
	`reason` varchar(500),
	CONSTRAINT `scaling_events_id` PRIMARY KEY(`id`),
	CONSTRAINT `scaling_events_node_pool_ts_uq` UNIQUE(`node_id`,`pool_id`,`ts`)
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`id_hash` char(64) NOT NULL,
	`user_id` int NOT NULL,
	`csrf_token` char(43) NOT NULL,
	`address` varchar(64),
	`user_agent` varchar(255),
	`created_at` datetime(3) NOT NULL,
	`last_seen_at` datetime(3) NOT NULL,
	`expires_at` datetime(3) NOT NULL,
	CONSTRAINT `sessions_id_hash` PRIMARY KEY(`id_hash`)
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` int AUTO_INCREMENT NOT NULL,
	`username` varchar(64) NOT NULL,
	`password_hash` varchar(255) NOT NULL,
	`role` varchar(16) NOT NULL,
	`disabled` boolean NOT NULL DEFAULT false,
	`last_login_at` datetime(3),
	`password_changed_at` datetime(3) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `users_id` PRIMARY KEY(`id`),
	CONSTRAINT `users_username_uq` UNIQUE(`username`)
);
--> statement-breakpoint
CREATE INDEX `audit_log_at_idx` ON `audit_log` (`at`);--> statement-breakpoint
CREATE INDEX `audit_log_actor_at_idx` ON `audit_log` (`actor_name`,`at`);--> statement-breakpoint
CREATE INDEX `audit_log_action_at_idx` ON `audit_log` (`action`,`at`);--> statement-breakpoint
CREATE INDEX `audit_log_target_at_idx` ON `audit_log` (`target_type`,`target_id`,`at`);--> statement-breakpoint
CREATE INDEX `config_versions_node_hash_idx` ON `config_versions` (`node_id`,`hash`);--> statement-breakpoint
CREATE INDEX `enrollment_tokens_created_idx` ON `enrollment_tokens` (`created_at`);--> statement-breakpoint
CREATE INDEX `instance_pools_ocid_idx` ON `instance_pools` (`pool_ocid`);--> statement-breakpoint
CREATE INDEX `login_failures_username_at_idx` ON `login_failures` (`username`,`at`);--> statement-breakpoint
CREATE INDEX `login_failures_address_at_idx` ON `login_failures` (`address`,`at`);--> statement-breakpoint
CREATE INDEX `metric_rollups_1h_bucket_idx` ON `metric_rollups_1h` (`bucket_start`);--> statement-breakpoint
CREATE INDEX `metric_rollups_5m_bucket_idx` ON `metric_rollups_5m` (`bucket_start`);--> statement-breakpoint
CREATE INDEX `metric_samples_ts_idx` ON `metric_samples` (`ts`);--> statement-breakpoint
CREATE INDEX `nodes_token_hash_idx` ON `nodes` (`token_hash`);--> statement-breakpoint
CREATE INDEX `nodes_region_idx` ON `nodes` (`region`);--> statement-breakpoint
CREATE INDEX `nodes_last_heartbeat_idx` ON `nodes` (`last_heartbeat_at`);--> statement-breakpoint
CREATE INDEX `nodes_config_state_idx` ON `nodes` (`config_state`);--> statement-breakpoint
CREATE INDEX `nodes_desired_changed_idx` ON `nodes` (`desired_changed_at`);--> statement-breakpoint
CREATE INDEX `scaling_events_ts_idx` ON `scaling_events` (`ts`);--> statement-breakpoint
CREATE INDEX `scaling_events_pool_ts_idx` ON `scaling_events` (`pool_id`,`ts`);--> statement-breakpoint
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`);--> statement-breakpoint
CREATE INDEX `sessions_expires_idx` ON `sessions` (`expires_at`);