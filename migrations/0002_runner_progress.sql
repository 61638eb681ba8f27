-- Progress of a migration that runs statement by statement outside a transaction
-- (CONCURRENTLY, `no-transaction`): the statements already committed, so that a re-run
-- resumes after them instead of repeating them, and `status` can show it as running.
-- A transactional migration never has a row here: it is applied whole or not at all.
CREATE TABLE concertina.migration_progress (
    version          bigint PRIMARY KEY,
    name             text        NOT NULL,
    phase            text        NOT NULL,
    checksum         text        NOT NULL,
    -- sha256 of the texts of the statements already done, to resume only when they did not change.
    done_digest      text        NOT NULL,
    statements_done  integer     NOT NULL DEFAULT 0,
    statements_total integer     NOT NULL,
    state            text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'failed')),
    last_error       text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    applied_by       text        NOT NULL
);
