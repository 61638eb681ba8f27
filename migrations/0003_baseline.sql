-- Migrations recorded by `concertina baseline` (or taken over from another tool) without
-- concertina running them: the database already had what they make.
ALTER TABLE concertina.applied_migrations ADD COLUMN baselined boolean NOT NULL DEFAULT false;
