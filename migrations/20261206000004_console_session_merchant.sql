-- The merchant a console session looks at (chosen in the console's header; null: the
-- default merchant, or the token's only one).
alter table console_sessions add column merchant_code text;
