-- Release 1 (before the rollout of api 2.0): a new column the old app does not notice.
ALTER TABLE users ADD COLUMN email_verified boolean DEFAULT false;
