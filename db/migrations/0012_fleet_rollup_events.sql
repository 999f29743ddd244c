ALTER TABLE `metric_rollups_fleet_5m` ADD `scale_ups` int DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `metric_rollups_fleet_5m` ADD `scale_downs` int DEFAULT 0 NOT NULL;--> statement-breakpoint
-- The rows written before these columns counted no events: refill them (the rollup job does it from the
-- pools' 5-minute rollups and the events, a week per run).
DELETE FROM `metric_rollups_fleet_5m`;--> statement-breakpoint
DELETE FROM `job_state` WHERE `name` = 'rollups_fleet';
