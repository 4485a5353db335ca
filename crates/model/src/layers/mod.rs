//! Layers on flat `f32` buffers, each a module with its forward and backward passes and its
//! tests: the activations, dropout, convolution and batch normalisation, and the named
//! tensors a network's parameter buffer holds. A layer never names a model: the
//! architectures (`crate::mlp`, `crate::dcgan`) put layers together.

pub mod activation;
pub mod batch_norm;
pub mod conv;
pub mod dropout;
pub mod slots;
