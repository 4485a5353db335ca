//! What updates the weights: Adam (TensorFlow 1's rule, with its config), and the moving
//! average of G's weights.

pub mod adam;
pub mod average;
