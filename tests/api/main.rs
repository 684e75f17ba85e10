//! One integration-test binary: the real application on port 0, a fresh Postgres
//! database per test, and the simulator as the platform over real HTTP.

mod answers;
mod budget;
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
mod forged;
mod helpers;
mod hostile;
mod isolation;
mod load_balancer;
mod logs;
mod long_poll;
mod migrations;
mod openapi;
mod openapi_tools;
mod ops;
mod outage;
mod platform;
mod published;
mod queue;
mod reconcile;
mod recovery;
mod replica;
mod status_api;
mod sync;
mod tokens;
mod webdriver;
