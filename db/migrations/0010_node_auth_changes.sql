CREATE TABLE `node_auth_changes` (
	`id` bigint AUTO_INCREMENT NOT NULL,
	`node_id` char(36) NOT NULL,
	`changed_at` datetime(3) NOT NULL,
	CONSTRAINT `node_auth_changes_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `node_auth_changes_changed_idx` ON `node_auth_changes` (`changed_at`);