//! The optimiser.

pub mod adam;
