//! The load benchmark: kgate beside `kubectl proxy` and direct access.

fn main() {}
