ALTER TABLE `api_keys` MODIFY COLUMN `created_by` varchar(160) NOT NULL;--> statement-breakpoint
ALTER TABLE `audit_log` MODIFY COLUMN `actor_name` varchar(160) NOT NULL;--> statement-breakpoint
ALTER TABLE `config_versions` MODIFY COLUMN `author` varchar(160) NOT NULL;--> statement-breakpoint
ALTER TABLE `enrollment_tokens` MODIFY COLUMN `created_by` varchar(160) NOT NULL;--> statement-breakpoint
ALTER TABLE `nodes` ADD `claimed_address` varchar(64);