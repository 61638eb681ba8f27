-- After the rollout: once every api pod writes both columns (2.0.0 and later),
-- copy the old column into the new one for existing rows, in batches.
-- concertina: requires api>=2.0.0
UPDATE users SET email_verified = (verification_date IS NOT NULL);
