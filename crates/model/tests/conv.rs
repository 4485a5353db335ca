//! The convolution layers against PyTorch's autograd (`tools/oracle/conv_fixture.py` wrote
//! the fixture; dfdx 0.13's Conv2D and ConvTrans2D need its `nightly` feature, which does not
//! build on a stable compiler), at the sizes of an MNIST DCGAN: D's convolutions 1 -> 64 ->
//! 128 channels over 28 -> 14 -> 7 pixels, G's transposed ones back, kernel 4, stride 2,
//! padding 1, and batch normalisation in training mode (also against dfdx's `BatchNorm2D`).

use std::collections::HashMap;

use gan_model::conv::{self, ConvShape, Running, Sides};
use safetensors::SafeTensors;

const FIXTURE: &[u8] = include_bytes!("fixtures/conv_oracle.safetensors");

/// The fixture's inputs: `((i * 7919 + salt * 104729) mod 2001) / 1000 - 1`, scaled, exact
/// in f64 on both sides.
fn det(len: usize, salt: usize, scale: f64, offset: f64) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let v = ((i * 7919 + salt * 104729) % 2001) as f64 / 1000.0 - 1.0;
            (v * scale + offset) as f32
        })
        .collect()
}

fn fixture() -> HashMap<String, Vec<f32>> {
    let st = SafeTensors::deserialize(FIXTURE).expect("the fixture is safetensors");
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, data)
        })
        .collect()
}

/// Largest difference relative to the largest entry of `want`.
fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .fold(0.0, f64::max);
    worst / scale.max(1e-30)
}

fn check(what: &str, got: &[f32], want: &[f32]) {
    let e = rel_err(got, want);
    assert!(e < 1e-5, "{what}: off by {e:.1e} of its largest entry");
}

const SHAPE_STRIDE_2: fn(usize, usize) -> ConvShape = |in_ch, out_ch| ConvShape {
    in_ch,
    out_ch,
    kernel: 4,
    stride: 2,
    padding: 1,
};

fn conv_case(
    name: &str,
    (batch, in_ch, out_ch, side): (usize, usize, usize, usize),
    salt: usize,
    transposed: bool,
) {
    let f = fixture();
    let shape = SHAPE_STRIDE_2(in_ch, out_ch);
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
    let mut cols = vec![f32::NAN; conv::scratch_len(&shape, &sides, transposed)];
    let mut y = vec![f32::NAN; dy.len()];
    let (mut dw, mut db, mut dx) = (
        vec![0.0; w.len()],
        vec![0.0; b.len()],
        vec![f32::NAN; x.len()],
    );
    if transposed {
        conv::conv_transposed_forward(&shape, &sides, &x, &w, &b, &mut y, &mut cols);
        conv::conv_transposed_backward(
            &shape,
            &sides,
            &x,
            &w,
            &dy,
            &mut dw,
            &mut db,
            Some(&mut dx),
            &mut cols,
        );
    } else {
        conv::conv_forward(&shape, &sides, &x, &w, &b, &mut y, &mut cols);
        conv::conv_backward(
            &shape,
            &sides,
            &x,
            &w,
            &dy,
            &mut dw,
            &mut db,
            Some(&mut dx),
            &mut cols,
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

#[test]
fn batch_normalisation_matches_pytorch() {
    let f = fixture();
    let (batch, channels, pixels) = (2, 64, 14 * 14);
    let x = det(batch * channels * pixels, 17, 2.0, 0.3);
    let gamma = det(channels, 18, 0.5, 1.0);
    let beta = det(channels, 19, 0.1, 0.0);
    let dy = det(x.len(), 20, 1.0, 0.0);
    let (mut y, mut dx) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
    let (mut mean, mut inv_std) = (vec![0.0; channels], vec![0.0; channels]);
    let (mut running_mean, mut running_var) = (vec![0.0; channels], vec![1.0; channels]);
    conv::batch_norm_forward(
        (batch, channels, pixels),
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
        (batch, channels, pixels),
        &x,
        &gamma,
        &mean,
        &inv_std,
        &dy,
        &mut dgamma,
        &mut dbeta,
        &mut dx,
    );
    check("batch norm output", &y, &f["bn.y"]);
    check("batch norm input gradient", &dx, &f["bn.dx"]);
    check("batch norm scale gradient", &dgamma, &f["bn.dgamma"]);
    check("batch norm shift gradient", &dbeta, &f["bn.dbeta"]);
    check("running mean", &running_mean, &f["bn.running_mean"]);
    check("running variance", &running_var, &f["bn.running_var"]);
}

#[test]
fn output_sides_follow_pytorch() {
    let s = SHAPE_STRIDE_2(1, 1);
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
    const C: usize = 64;
    let (batch, pixels) = (2, 14 * 14);
    let x = det(batch * C * pixels, 17, 2.0, 0.3);
    let gamma = det(C, 18, 0.5, 1.0);
    let beta = det(C, 19, 0.1, 0.0);
    let dy = det(x.len(), 20, 1.0, 0.0);

    let dev: Cpu = Default::default();
    let mut bn = dfdx::nn::modules::BatchNorm2D::<C, f32, Cpu> {
        scale: dev.tensor_from_vec(gamma.clone(), (Const::<C>,)),
        bias: dev.tensor_from_vec(beta.clone(), (Const::<C>,)),
        running_mean: dev.zeros(),
        running_var: dev.ones(),
        epsilon: 1e-5,
        momentum: 0.1,
    };
    let shape = (Const::<2>, Const::<C>, Const::<14>, Const::<14>);
    let x_t = dev.tensor_from_vec(x.clone(), shape);
    let y_t = bn.forward_mut(x_t.clone().leaky_traced());
    let want_y = y_t.retaped::<NoneTape>().as_vec();
    let grads = (y_t * dev.tensor_from_vec(dy.clone(), shape))
        .sum()
        .backward();

    let (mut y, mut dx) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
    let (mut mean, mut inv_std) = (vec![0.0; C], vec![0.0; C]);
    let (mut running_mean, mut running_var) = (vec![0.0; C], vec![1.0; C]);
    conv::batch_norm_forward(
        (batch, C, pixels),
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
    let (mut dgamma, mut dbeta) = (vec![0.0; C], vec![0.0; C]);
    conv::batch_norm_backward(
        (batch, C, pixels),
        &x,
        &gamma,
        &mean,
        &inv_std,
        &dy,
        &mut dgamma,
        &mut dbeta,
        &mut dx,
    );
    check("batch norm output (dfdx)", &y, &want_y);
    check(
        "batch norm input gradient (dfdx)",
        &dx,
        &grads.get(&x_t).as_vec(),
    );
    check(
        "batch norm scale gradient (dfdx)",
        &dgamma,
        &grads.get(&bn.scale).as_vec(),
    );
    check(
        "batch norm shift gradient (dfdx)",
        &dbeta,
        &grads.get(&bn.bias).as_vec(),
    );
    check(
        "running mean (dfdx)",
        &running_mean,
        &bn.running_mean.as_vec(),
    );
    check(
        "running variance (dfdx)",
        &running_var,
        &bn.running_var.as_vec(),
    );
}
