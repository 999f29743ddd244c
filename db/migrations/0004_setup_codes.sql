CREATE TABLE `setup_codes` (
	`code_hash` char(64) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`expires_at` datetime(3) NOT NULL,
	CONSTRAINT `setup_codes_code_hash` PRIMARY KEY(`code_hash`)
);
