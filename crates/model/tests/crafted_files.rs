//! Weights files made by hand to declare sizes their bytes do not back: refused with the
//! tensor's name before anything is allocated from them (they used to abort the process).

use std::collections::HashMap;

use gan_model::checkpoint::{decode_any_generator, decode_model};
use safetensors::tensor::{serialize, Dtype, TensorView};

/// A safetensors file of zero-filled f32 tensors of these shapes, with this metadata.
fn file(tensors: &[(&str, Vec<usize>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, shape)| vec![0u8; 4 * shape.iter().product::<usize>()])
        .collect();
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| {
            (
                *name,
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serialize(views, &Some(meta)).unwrap()
}

#[test]
fn zero_element_tensors_declaring_huge_sizes_are_refused() {
    // A perceptron G whose noise width is 10^15, in a file of a few hundred bytes.
    let mlp = file(
        &[
            ("generator.0.weight", vec![0, 1_000_000_000_000_000]),
            ("generator.0.bias", vec![0]),
            ("generator.2.weight", vec![784, 0]),
            ("generator.2.bias", vec![784]),
        ],
        &[],
    );
    let e = decode_any_generator(&mlp).unwrap_err().to_string();
    assert!(
        e.contains("tensor `generator.0.bias` has shape [0]: a zero dimension holds no data"),
        "{e}"
    );
    // A DCGAN G with a zero-element transposed convolution of a billion channels.
    let dcgan_meta = [
        ("architecture", "dcgan"),
        ("generator.activation", "relu"),
        ("generator.output", "tanh"),
        ("discriminator.activation", "leaky_relu:0.2"),
    ];
    let dcgan = file(
        &[
            ("generator.fc.weight", vec![49, 16]),
            ("generator.up1.weight", vec![1_000_000_000, 0, 4, 4]),
            ("discriminator.conv2.weight", vec![2, 1, 4, 4]),
        ],
        &dcgan_meta,
    );
    let e = decode_any_generator(&dcgan).unwrap_err().to_string();
    assert!(
        e.contains("tensor `generator.up1.weight` has shape [1000000000, 0, 4, 4]"),
        "{e}"
    );
    assert!(decode_model(&dcgan).is_err());
}

#[test]
fn tensors_that_disagree_on_a_shared_size_are_refused_before_allocating() {
    // up1 says G has a million channels, fc.weight that it has one: taking up1's word would
    // allocate fc's buffer at 10^6 x 49 x 10^5 floats, 19.6 TB.
    let dcgan = file(
        &[
            ("generator.fc.weight", vec![49, 100_000]),
            ("generator.up1.weight", vec![1_000_000, 1, 1, 1]),
            ("discriminator.conv2.weight", vec![2, 1, 4, 4]),
        ],
        &[
            ("architecture", "dcgan"),
            ("generator.activation", "relu"),
            ("generator.output", "tanh"),
            ("discriminator.activation", "relu"),
        ],
    );
    let e = decode_any_generator(&dcgan).unwrap_err().to_string();
    assert!(
        e.contains("generator.fc.weight") && e.contains("expected [49000000, 100000]"),
        "{e}"
    );
}
