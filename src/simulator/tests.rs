//! End-to-end tests of the simulator over HTTP.
