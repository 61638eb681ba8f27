-- Migrations taken over from another tool's history table by `concertina import`: the tool
-- that applied them (`sqlx`, `golang-migrate`, `flyway`, `diesel`, `dbmate`); NULL otherwise.
ALTER TABLE concertina.applied_migrations ADD COLUMN imported_from text;
