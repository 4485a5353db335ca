//! The training contract every architecture shares: the configs, what a step reports and
//! how it fails, G's input (noise, labels, clusters), the state a run continues from, and
//! the products a step makes, and keeping the pool's threads awake through a step.

pub mod awake;
pub mod clusters;
pub mod config;
pub mod flops;
pub mod input;
pub mod step;
