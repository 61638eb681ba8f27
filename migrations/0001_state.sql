-- concertina's own state, in schema `concertina` of the target database.

-- Every migration applied (expand, finished backfill, contract), with its checksum.
CREATE TABLE concertina.applied_migrations (
    version            bigint PRIMARY KEY,
    name               text        NOT NULL,
    phase              text        NOT NULL CHECK (phase IN ('expand', 'backfill', 'contract')),
    checksum           text        NOT NULL,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz NOT NULL,
    duration_ms        bigint      NOT NULL,
    applied_by         text        NOT NULL,
    concertina_version text        NOT NULL
);

-- One row per statement of a backfill migration: its keyset checkpoint and progress.
-- The checkpoint is written in the same transaction as the batch it records.
CREATE TABLE concertina.backfill_progress (
    version         bigint      NOT NULL,
    statement_index integer     NOT NULL,
    table_name      text        NOT NULL,
    key_columns     text[]      NOT NULL,
    last_key        text[],
    rows_done       bigint      NOT NULL DEFAULT 0,
    rows_estimated  bigint,
    batches         bigint      NOT NULL DEFAULT 0,
    batch_size      integer,
    -- Keys walked so far (rows_done counts rows the statement changed, which may be fewer).
    rows_scanned    bigint      NOT NULL DEFAULT 0,
    -- The file's checksum when the backfill started: a changed file is never resumed.
    checksum        text,
    -- 1-based line of the statement in its file.
    statement_line  integer,
    last_batch_ms   integer,
    max_batch_ms    integer,
    -- Time spent in batches and pauses, summed over every run (for the rate and ETA).
    elapsed_ms      bigint      NOT NULL DEFAULT 0,
    state           text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    last_error      text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (version, statement_index)
);

-- Every gate judgment: when, for which migration, the verdict and what blocked it.
CREATE TABLE concertina.gate_verdicts (
    id         bigserial PRIMARY KEY,
    version    bigint      NOT NULL,
    judged_at  timestamptz NOT NULL DEFAULT now(),
    holds      boolean     NOT NULL,
    requires   text        NOT NULL,
    blocking   jsonb       NOT NULL DEFAULT '[]',
    judged_by  text        NOT NULL
);
CREATE INDEX gate_verdicts_version ON concertina.gate_verdicts (version, judged_at DESC);
