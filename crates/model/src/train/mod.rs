//! The training contract every architecture shares.

pub mod clusters;
pub mod config;
pub mod input;
