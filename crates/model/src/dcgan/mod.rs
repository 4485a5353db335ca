//! The DCGAN family.

mod step;

pub use step::*;
