//! Pure parsing and building of every address form kgate speaks.
//!
//! No I/O and no async: this crate builds in seconds, so it can be fuzzed and property-tested.

mod scheme_name_port;

pub use scheme_name_port::{SchemeNamePort, Scheme, split_scheme_name_port, join_scheme_name_port};
