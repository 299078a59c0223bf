//! See lib.rs.

pub mod cdr;
pub mod msgs;
pub mod sync;
