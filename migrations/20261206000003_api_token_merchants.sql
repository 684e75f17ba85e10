-- A token may be scoped to merchant codes (`tokens create --merchant CODE...`);
-- null: every merchant. Only this release and later read it: scope tokens once every
-- replica runs it (README, "Several merchant codes").
alter table api_tokens add column merchants text[];
