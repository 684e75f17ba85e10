-- Callbacks on record: a payment's callbacks, and those without idEntity, by time.
create index callbacks_by_payment on callbacks (merchant_code, kind, payment_id, id)
    where payment_id is not null;
create index callbacks_ignored on callbacks (merchant_code, id)
    where outcome = 'ignored';
