-- Key ranges of a backfill statement walked in parallel (`backfill --workers N`), each with
-- its own checkpoint, moved in the transaction of its batch. The statement's row in
-- backfill_progress holds the sums (rows, batches) and turns `done` once every range is.
CREATE TABLE concertina.backfill_ranges (
    version         bigint      NOT NULL,
    statement_index integer     NOT NULL,
    range_index     integer     NOT NULL,
    -- The range is (start_key, end_key]: NULL start_key = from the first key, NULL end_key
    -- = to the last.
    start_key       text[],
    end_key         text[],
    last_key        text[],
    rows_done       bigint      NOT NULL DEFAULT 0,
    rows_scanned    bigint      NOT NULL DEFAULT 0,
    batches         bigint      NOT NULL DEFAULT 0,
    state           text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version, statement_index, range_index),
    FOREIGN KEY (version, statement_index)
        REFERENCES concertina.backfill_progress (version, statement_index) ON DELETE CASCADE
);
