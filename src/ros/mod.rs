//! See lib.rs.

pub mod args;
pub mod cdr;
pub mod diagnostics;
pub mod inputs;
pub mod lifecycle;
pub mod managed;
pub mod msgs;
pub mod node;
pub mod output;
pub mod parameters;
pub mod params;
pub mod slot;
pub mod srv;
pub mod sync;
pub mod target3d;
pub mod transport;
