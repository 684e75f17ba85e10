//! paymirror: a merchant-side mirror of payment statuses, fed by the platform's
//! anemic callbacks and kept authoritative by fetching each payment's state.

pub mod api;
pub mod app;
pub mod background;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod demo;
pub mod domain;
pub mod http;
pub mod inbox;
pub mod migrations;
pub mod openapi;
pub mod ops;
pub mod platform;
pub mod queue;
pub mod reconcile;
pub mod simulator;
pub mod storable;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tokens;
