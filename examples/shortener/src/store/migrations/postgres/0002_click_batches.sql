-- Click batches already recorded, so that a retried batch (its first
-- attempt committed but the acknowledgement was lost) counts nothing twice.
-- Rows older than a day are pruned as new batches come.
CREATE TABLE click_batches (
    id          TEXT   PRIMARY KEY,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX click_batches_recorded_at ON click_batches (recorded_at);
