//! See lib.rs.

pub mod checkpoint;
mod pickle;
