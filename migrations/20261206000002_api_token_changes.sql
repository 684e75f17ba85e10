-- Replicas keep the tokens they have checked in memory and drop them all when this
-- channel speaks: a token deactivated, re-permissioned or deleted, by any release or
-- by hand, is announced by the database itself. Use counts (written every few
-- seconds) change other columns and stay quiet.
create function paymirror_api_tokens_changed() returns trigger
language plpgsql as $$
begin
  perform pg_notify('paymirror_api_tokens', '');
  return null;
end
$$;

create trigger api_tokens_changed
  after update on api_tokens
  for each row
  when (old.active is distinct from new.active
        or old.permissions is distinct from new.permissions
        or old.token_hash is distinct from new.token_hash)
  execute function paymirror_api_tokens_changed();

create trigger api_tokens_deleted
  after delete on api_tokens
  for each row
  execute function paymirror_api_tokens_changed();
