-- Keys made before owners were recorded: a key whose creator is a person (created_by is their username)
-- gets that person as owner. Keys made by other keys or by the system stay without one.
UPDATE `api_keys` k JOIN `users` u ON u.`username` = k.`created_by` SET k.`owner_user_id` = u.`id` WHERE k.`owner_user_id` IS NULL;
