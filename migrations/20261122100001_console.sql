-- The operator console: its sign-in sessions and the per-minute figures its charts draw.

-- A session holds no API token: it names the token row it was opened with, and is only
-- valid while that row is the account's active token (revocation ends it at once).
create table console_sessions (
    id_hash text primary key,
    token_id bigint not null references api_tokens (id) on delete cascade,
    csrf_secret text not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index console_sessions_by_token on console_sessions (token_id);
create index console_sessions_by_expiry on console_sessions (expires_at);

-- One row per merchant and minute. Counts are added by every replica (each flushes its
-- own tally); the queue depth is sampled once a minute by whichever replica gets there first.
create table console_minutes (
    merchant_code text not null,
    minute timestamptz not null,
    callbacks bigint not null default 0,
    platform_requests bigint not null default 0,
    platform_fetches bigint not null default 0,
    platform_throttled bigint not null default 0,
    status_changes bigint not null default 0,
    queue_pending bigint,
    queue_running bigint,
    queue_dead bigint,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (merchant_code, minute)
);

-- The console lists payments of both kinds newest change first.
create index payments_by_merchant_position on payments (merchant_code, position);
