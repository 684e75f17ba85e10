//! One integration-test binary: the real application on port 0, a fresh Postgres
//! database per test, and the simulator as the platform over real HTTP.

mod budget;
mod callbacks;
mod cli;
mod demo;
mod helpers;
mod logs;
mod platform;
mod queue;
mod status_api;
mod sync;
mod tokens;
