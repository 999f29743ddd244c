-- Usernames are stored normalised (NFKC, trimmed, lower-cased; core/users.ts normalizeUsername).
-- Names the old rule allowed were ASCII, so lower-casing is the whole change. The unique index's
-- case-insensitive collation already kept "Alice" and "alice" from both existing.
UPDATE `users` SET `username` = LOWER(TRIM(`username`)) WHERE BINARY `username` <> BINARY LOWER(TRIM(`username`));
