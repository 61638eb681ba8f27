-- Release 2: api 3.0.0 reads only email_verified. Drop the old column once no pod
-- older than 3.0.0 remains, terminating pods included.
-- concertina: requires api>=3.0.0
ALTER TABLE users DROP COLUMN verification_date;
