-- Dead syncs of payments that are not final are reconciled too: the due-reconciliation
-- index covers them. (Backward compatible: the previous release only reads idle rows.)
create index sync_jobs_reconcile_due on sync_jobs (merchant_code, reconcile_at)
    where state in ('idle', 'dead') and reconcile_at is not null;
drop index sync_jobs_reconcile;
