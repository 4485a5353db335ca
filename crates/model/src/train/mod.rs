//! The training contract every architecture shares: the configs, what a step reports and
//! how it fails, G's input (noise, labels, clusters), and the state a run continues from.

pub mod clusters;
pub mod config;
pub mod input;
pub mod step;
