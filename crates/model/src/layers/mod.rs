//! Layers on flat buffers.

pub mod conv;
