//! One integration-test binary: the real application on port 0, a fresh Postgres
//! database per test, and the simulator as the platform over real HTTP.

mod budget;
mod callbacks;
mod cli;
mod dead_syncs;
mod demo;
mod failures;
mod helpers;
mod hostile;
mod logs;
mod platform;
mod queue;
mod reconcile;
mod status_api;
mod sync;
mod tokens;
