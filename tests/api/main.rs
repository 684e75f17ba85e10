//! One integration-test binary: the real application on port 0, a fresh Postgres
//! database per test, and the simulator as the platform over real HTTP.

mod answers;
mod budget;
mod callback_pages;
mod callbacks;
mod changes;
mod cli;
mod console;
mod console_browser;
mod console_support;
mod dead_syncs;
mod demo;
mod deployment;
mod failures;
mod helpers;
mod hostile;
mod isolation;
mod logs;
mod memory;
mod openapi;
mod ops;
mod outage;
mod platform;
mod queue;
mod reconcile;
mod recovery;
mod status_api;
mod sync;
mod tokens;
mod webdriver;
