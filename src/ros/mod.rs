//! See lib.rs.

pub mod cdr;
pub mod msgs;
pub mod node;
pub mod output;
pub mod params;
pub mod sync;
pub mod transport;
