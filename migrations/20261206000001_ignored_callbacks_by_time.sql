-- Callbacks without idEntity, by time: GET /v1/callbacks/ignored pages them in the
-- order received, and these indexes give the batches holding one, and the older
-- table's rows, in that order, so a page reads as many as it shows instead of
-- unnesting and sorting every one. They hold only those rare rows (ingest adds an
-- entry to the first only for a batch with such a callback; nothing writes the
-- second since callback_batches replaced it). The older indexes by id stay for the
-- previous release's readers.
create index callback_batches_ignored_by_time on callback_batches (merchant_code, created_at, id)
    where 'ignored' = any (outcomes);
create index callbacks_ignored_by_time on callbacks (merchant_code, created_at, id)
    where outcome = 'ignored';
