//! The tutorial's family of perceptron GANs.

pub(crate) mod dfdx_net;
pub mod lockstep;
pub mod networks;
pub mod phases;
pub mod reference;
pub mod step;
