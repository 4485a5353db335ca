//! The convolution layers against PyTorch's autograd (`tools/oracle/conv_fixture.py` wrote
//! the fixture; dfdx 0.13's Conv2D and ConvTrans2D need its `nightly` feature, which does not
//! build on a stable compiler), at the sizes of an MNIST DCGAN: D's convolutions 1 -> 64 ->
//! 128 channels over 28 -> 14 -> 7 pixels, G's transposed ones back, kernel 4, stride 2,
//! padding 1, and batch normalisation in training mode (also against dfdx's `BatchNorm2D`).

use std::collections::BTreeMap;

use gan_model::conv::{self, ConvShape, Running, Sides};

mod common;
use common::{det, rel_max_diff};

const FIXTURE: &[u8] = include_bytes!("fixtures/conv_oracle.safetensors");

fn fixture() -> BTreeMap<String, Vec<f32>> {
    common::f32_tensors(FIXTURE)
}

fn check(what: &str, got: &[f32], want: &[f32]) {
    let e = rel_max_diff(got, want);
    assert!(e < 1e-5, "{what}: off by {e:.1e} of its largest entry");
}

/// DCGAN's layers: kernel 4, stride 2, padding 1.
fn stride_2(in_ch: usize, out_ch: usize) -> ConvShape {
    ConvShape {
        in_ch,
        out_ch,
        kernel: 4,
        stride: 2,
        padding: 1,
    }
}

fn conv_case(
    name: &str,
    (batch, in_ch, out_ch, side): (usize, usize, usize, usize),
    salt: usize,
    transposed: bool,
) {
    let f = fixture();
    let shape = stride_2(in_ch, out_ch);
    let out_side = if transposed {
        shape.transposed_out(side)
    } else {
        shape.conv_out(side)
    }
    .expect("the kernel fits");
    let sides = Sides {
        batch,
        input: (side, side),
        output: (out_side, out_side),
    };
    let x = det(batch * in_ch * side * side, salt, 1.0, 0.0);
    let w = det(shape.weight_len(), salt + 1, 0.05, 0.0);
    let b = det(out_ch, salt + 2, 0.05, 0.0);
    let dy = det(batch * out_ch * out_side * out_side, salt + 3, 1.0, 0.0);
    let mut scratch = conv::Scratch::default();
    scratch.reserve(&shape, &sides, transposed);
    let mut y = vec![f32::NAN; dy.len()];
    let (mut dw, mut db, mut dx) = (
        vec![0.0; w.len()],
        vec![0.0; b.len()],
        vec![f32::NAN; x.len()],
    );
    let grads = conv::Grads {
        weight: &mut dw,
        bias: Some(&mut db),
    };
    if transposed {
        conv::conv_transposed_forward(&shape, &sides, &x, &w, Some(&b), &mut y, &mut scratch);
        conv::conv_transposed_backward(
            &shape,
            &sides,
            &x,
            &w,
            &dy,
            Some(grads),
            Some(&mut dx),
            &mut scratch,
        );
    } else {
        conv::conv_forward(&shape, &sides, &x, &w, Some(&b), &mut y, &mut scratch);
        conv::conv_backward(
            &shape,
            &sides,
            &x,
            &w,
            &dy,
            Some(grads),
            Some(&mut dx),
            &mut scratch,
        );
    }
    check(&format!("{name} output"), &y, &f[&format!("{name}.y")]);
    check(
        &format!("{name} input gradient"),
        &dx,
        &f[&format!("{name}.dx")],
    );
    check(
        &format!("{name} weight gradient"),
        &dw,
        &f[&format!("{name}.dw")],
    );
    check(
        &format!("{name} bias gradient"),
        &db,
        &f[&format!("{name}.db")],
    );
}

#[test]
fn convolutions_match_pytorch() {
    conv_case("conv1", (4, 1, 64, 28), 1, false);
    conv_case("conv2", (2, 64, 128, 14), 5, false);
}

#[test]
fn transposed_convolutions_match_pytorch() {
    conv_case("convt1", (2, 128, 64, 7), 9, true);
    conv_case("convt2", (2, 64, 1, 14), 13, true);
}

/// The fixture's batch normalisation case: 2 images, 64 channels of 14 x 14 pixels.
const BN_SIZES: (usize, usize, usize) = (2, 64, 14 * 14);

/// Its inputs `[x, gamma, beta, dy]`.
fn bn_inputs() -> [Vec<f32>; 4] {
    let (batch, channels, pixels) = BN_SIZES;
    let len = batch * channels * pixels;
    [
        det(len, 17, 2.0, 0.3),
        det(channels, 18, 0.5, 1.0),
        det(channels, 19, 0.1, 0.0),
        det(len, 20, 1.0, 0.0),
    ]
}

/// The case computed here, one training pass with running statistics from 0 and 1: see
/// [`BN_PARTS`] for what each returned vector is.
fn our_batch_norm() -> [Vec<f32>; 6] {
    let (_, channels, _) = BN_SIZES;
    let [x, gamma, beta, dy] = bn_inputs();
    let (mut y, mut dx) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
    let (mut mean, mut inv_std) = (vec![0.0; channels], vec![0.0; channels]);
    let (mut running_mean, mut running_var) = (vec![0.0; channels], vec![1.0; channels]);
    conv::batch_norm_forward(
        BN_SIZES,
        &x,
        &gamma,
        &beta,
        1e-5,
        &mut y,
        &mut mean,
        &mut inv_std,
        Some(Running {
            mean: &mut running_mean,
            var: &mut running_var,
            momentum: 0.1,
        }),
    );
    let (mut dgamma, mut dbeta) = (vec![0.0; channels], vec![0.0; channels]);
    conv::batch_norm_backward(
        BN_SIZES,
        &x,
        &gamma,
        &mean,
        &inv_std,
        &dy,
        &mut dgamma,
        &mut dbeta,
        &mut dx,
        &mut vec![0.0; 2 * channels],
    );
    [y, dx, dgamma, dbeta, running_mean, running_var]
}

/// What [`our_batch_norm`] returns, in its order.
const BN_PARTS: [&str; 6] = [
    "output",
    "input gradient",
    "scale gradient",
    "shift gradient",
    "running mean",
    "running variance",
];

#[test]
fn batch_normalisation_matches_pytorch() {
    let f = fixture();
    let names = ["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"];
    for ((got, part), name) in our_batch_norm().iter().zip(BN_PARTS).zip(names) {
        check(
            &format!("batch norm {part}"),
            got,
            &f[&format!("bn.{name}")],
        );
    }
}

#[test]
fn output_sides_follow_pytorch() {
    let s = stride_2(1, 1);
    assert_eq!(
        (s.conv_out(28), s.conv_out(14), s.conv_out(2)),
        (Some(14), Some(7), Some(1))
    );
    assert_eq!(
        (s.transposed_out(7), s.transposed_out(14)),
        (Some(14), Some(28))
    );
    let big = ConvShape {
        kernel: 9,
        padding: 0,
        ..s
    };
    assert_eq!(
        big.conv_out(8),
        None,
        "a kernel larger than the padded input"
    );
}

/// Batch normalisation also against dfdx 0.13's `BatchNorm2D` autograd (stable, unlike its
/// convolutions): output, gradients and running statistics after one training forward pass.
#[test]
fn batch_normalisation_matches_dfdx() {
    use dfdx::prelude::*;
    const C: usize = BN_SIZES.1;
    let [x, gamma, beta, dy] = bn_inputs();
    let dev: Cpu = Default::default();
    let mut bn = dfdx::nn::modules::BatchNorm2D::<C, f32, Cpu> {
        scale: dev.tensor_from_vec(gamma, (Const::<C>,)),
        bias: dev.tensor_from_vec(beta, (Const::<C>,)),
        running_mean: dev.zeros(),
        running_var: dev.ones(),
        epsilon: 1e-5,
        momentum: 0.1,
    };
    let shape = (Const::<2>, Const::<C>, Const::<14>, Const::<14>);
    let x_t = dev.tensor_from_vec(x, shape);
    let y_t = bn.forward_mut(x_t.clone().leaky_traced());
    let want_y = y_t.retaped::<NoneTape>().as_vec();
    let grads = (y_t * dev.tensor_from_vec(dy, shape)).sum().backward();
    let want = [
        want_y,
        grads.get(&x_t).as_vec(),
        grads.get(&bn.scale).as_vec(),
        grads.get(&bn.bias).as_vec(),
        bn.running_mean.as_vec(),
        bn.running_var.as_vec(),
    ];
    for ((got, part), want) in our_batch_norm().iter().zip(BN_PARTS).zip(&want) {
        check(&format!("batch norm {part} (dfdx)"), got, want);
    }
}
