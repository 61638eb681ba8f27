-- Health pauses of a backfill statement, for `status`: the pause going on now (its signal
-- and why), and per signal how often it paused or shrank the batches.
ALTER TABLE concertina.backfill_progress
    ADD COLUMN paused_signal text,
    ADD COLUMN paused_reason text,
    ADD COLUMN paused_at     timestamptz,
    -- {"wal-rate": {"pauses": 2, "shrinks": 0, "last": "WAL written at …", "last_at": …}, …}
    ADD COLUMN health        jsonb NOT NULL DEFAULT '{}';
