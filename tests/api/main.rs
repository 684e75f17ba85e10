//! One integration-test binary: the real application on port 0, a fresh Postgres
//! database per test, and the simulator as the platform over real HTTP.

mod callbacks;
mod demo;
mod helpers;
mod status_api;
mod tokens;
