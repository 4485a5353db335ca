//! The tutorial's family of perceptron GANs: its networks, its fast step on flat buffers,
//! the same mathematics in dfdx autograd (the oracle of the tests), image generation, and
//! the recorder that lets TensorFlow replay a run.

pub(crate) mod dfdx_net;
mod generate;
pub mod lockstep;
pub mod networks;
pub mod phases;
pub mod reference;
pub mod step;

pub use networks::{Gan, Mlp};
pub use step::{float_counts, step_products, Trainer};
