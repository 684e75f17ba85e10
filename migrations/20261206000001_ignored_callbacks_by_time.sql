-- Callbacks without idEntity, by time: GET /v1/callbacks/ignored pages them in the
-- order received, and this index gives the batches holding one in that order, so a
-- page reads as many batches as it shows instead of unnesting and sorting every one.
-- It holds only the rare batches with such a callback (ingest adds an entry only for
-- those); the older index by id stays for the previous release's readers.
create index callback_batches_ignored_by_time on callback_batches (merchant_code, created_at, id)
    where 'ignored' = any (outcomes);
