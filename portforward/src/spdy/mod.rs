//! SPDY/3.1 as moby/spdystream speaks it: [`frame`] (frames and header compression) and
//! [`session`] (streams over one connection).

pub(crate) mod dictionary;
pub mod frame;
pub mod session;

pub use frame::{Frame, FrameError, Headers};
pub use session::{Incoming, Session, SessionError, Stream};
