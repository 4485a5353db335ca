//! The DCGAN family (Radford, Metz and Chintala 2016) at MNIST's size: its networks and
//! sizes, their passes, sampling, and the training step.

pub mod networks;
mod passes;
pub mod sample;
pub mod step;

pub use networks::{
    dropout_mask_floats, float_counts, macs_per_image, pytorch_example, step_flops,
    ConvDiscriminator, ConvGenerator, Dcgan,
};
pub use sample::{average_generator, GENERATE_CHUNK, STANDING_IMAGES};
pub use step::DcganTrainer;
