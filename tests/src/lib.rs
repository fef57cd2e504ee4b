//! Helpers shared by the end-to-end tests: start the real binaries, find free ports, wait.

pub mod browser;
pub mod cluster;
pub mod http;
pub mod proc;
