//! A stateful stand-in for the payment platform (SPEC §4).
