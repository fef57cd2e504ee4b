//! Pure parsing and building of every address form kgate speaks.
//!
//! No I/O and no async: this crate builds in seconds, so it can be fuzzed and property-tested.

mod address;
mod api_path;
mod error;
mod host;
mod rest;
mod scheme_name_port;
mod short;
mod target;
pub mod validate;

pub use address::{Address, Form};
pub use error::{BuildError, MAX_QUOTED, ParseError, Part, Rule};
pub use host::{ContextLabel, ORIGIN_SUFFIX, OriginHost};
pub use rest::Rest;
pub use scheme_name_port::{Scheme, SchemeNamePort, join_scheme_name_port, split_scheme_name_port};
pub use target::{Kind, Port, PortName, Target};
