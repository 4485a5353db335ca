//! The convolution layers against PyTorch's autograd (`tools/oracle/conv_fixture.py` wrote
//! the fixture; dfdx 0.13's Conv2D and ConvTrans2D need its `nightly` feature, which does not
//! build on a stable compiler), at the sizes of an MNIST DCGAN: D's convolutions 1 -> 64 ->
//! 128 channels over 28 -> 14 -> 7 pixels, G's transposed ones back, kernel 4, stride 2,
//! padding 1, and batch normalisation in training mode (also against dfdx's `BatchNorm2D`).

use std::collections::BTreeMap;

use gan_model::layers::batch_norm::{self, Running};
use gan_model::layers::conv::{self, ConvShape, Sides};

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

/// A layer's sides over `batch` square images of `side` pixels.
fn square_sides(shape: &ConvShape, batch: usize, side: usize, transposed: bool) -> Sides {
    let out_side = if transposed {
        shape.transposed_out(side)
    } else {
        shape.conv_out(side)
    }
    .expect("the kernel fits");
    Sides {
        batch,
        input: (side, side),
        output: (out_side, out_side),
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
    let sides = square_sides(&shape, batch, side, transposed);
    let out_side = sides.output.0;
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

/// One layer's results over `batch` images: `[y, dx, dw]`, with the input gradient and
/// the weight gradient computed together or (`together: false`) in separate calls.
fn layer_results(
    (in_ch, out_ch, side): (usize, usize, usize),
    transposed: bool,
    x: &[f32],
    dy: &[f32],
    batch: usize,
    together: bool,
) -> [Vec<f32>; 3] {
    let shape = stride_2(in_ch, out_ch);
    let sides = square_sides(&shape, batch, side, transposed);
    let out_side = sides.output.0;
    let w = det(shape.weight_len(), 3, 0.05, 0.0);
    let mut scratch = conv::Scratch::default();
    scratch.reserve(&shape, &sides, transposed);
    let per_out = out_ch * out_side * out_side;
    let mut y = vec![f32::NAN; batch * per_out];
    let mut dx = vec![f32::NAN; batch * in_ch * side * side];
    let mut dw = vec![0.0; w.len()];
    let backward = if transposed {
        conv::conv_transposed_backward
    } else {
        conv::conv_backward
    };
    if transposed {
        conv::conv_transposed_forward(&shape, &sides, x, &w, None, &mut y, &mut scratch);
    } else {
        conv::conv_forward(&shape, &sides, x, &w, None, &mut y, &mut scratch);
    }
    let dy = &dy[..batch * per_out];
    let grads = conv::Grads {
        weight: &mut dw,
        bias: None,
    };
    if together {
        backward(
            &shape,
            &sides,
            x,
            &w,
            dy,
            Some(grads),
            Some(&mut dx),
            &mut scratch,
        );
    } else {
        backward(&shape, &sides, x, &w, dy, Some(grads), None, &mut scratch);
        backward(&shape, &sides, x, &w, dy, None, Some(&mut dx), &mut scratch);
    }
    [y, dx, dw]
}

/// The layers cut a batch between their two lanes differently for outputs and input
/// gradients (half the images each) than for weight gradients (whole groups, which fix
/// the summation order). That is exact only if an image's output and input gradient do
/// not depend on the group or lane that computes it, and if computing the input gradient
/// beside the weight gradient leaves the latter alone: checked bit for bit at the sizes of
/// DCGAN's two large layers, 25 images (lanes of 13 and 12 images, against 15 and 10 for
/// the weight gradient) against the same images as the first half of a batch of 50.
#[test]
fn each_image_is_computed_alike_however_the_batch_is_cut() {
    for (sizes, transposed) in [((64, 128, 14), false), ((128, 64, 7), true)] {
        let (in_ch, out_ch, side) = sizes;
        let out_side = if transposed { side * 2 } else { side / 2 };
        let per_in = in_ch * side * side;
        let per_out = out_ch * out_side * out_side;
        let x = det(25 * per_in, 1, 1.0, 0.0);
        let dy = det(25 * per_out, 2, 1.0, 0.0);
        let twice = |v: &[f32]| [v, v].concat();
        let [y, dx, dw] = layer_results(sizes, transposed, &x, &dy, 25, true);
        let [y_apart, dx_apart, dw_apart] = layer_results(sizes, transposed, &x, &dy, 25, false);
        let [y_50, dx_50, _] = layer_results(sizes, transposed, &twice(&x), &twice(&dy), 50, true);
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        let name = if transposed {
            "transposed"
        } else {
            "convolution"
        };
        assert!(y.iter().all(|v| v.is_finite()) && dx.iter().all(|v| v.is_finite()));
        assert!(
            same(&y, &y_apart) && same(&dx, &dx_apart),
            "{name}: dx moved"
        );
        assert!(
            same(&dw, &dw_apart),
            "{name}: weight gradient changed with dx beside it"
        );
        assert!(
            same(&y, &y_50[..25 * per_out]),
            "{name}: output depends on the cut"
        );
        assert!(
            same(&dx, &dx_50[..25 * per_in]),
            "{name}: input gradient depends on the cut"
        );
    }
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
    batch_norm::forward(
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
    batch_norm::backward(
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

/// The input pixel under kernel position `(ki, kj)` at output position `(oy, ox)`, if it is
/// inside the `h x w` input (the rest is padding).
fn under(
    s: &ConvShape,
    (h, w): (usize, usize),
    (oy, ox): (usize, usize),
    (ki, kj): (usize, usize),
) -> Option<(usize, usize)> {
    let y = (oy * s.stride + ki).checked_sub(s.padding)?;
    let x = (ox * s.stride + kj).checked_sub(s.padding)?;
    (y < h && x < w).then_some((y, x))
}

/// A convolution's output, weight and input gradients by the definition, in f64, pixel by
/// pixel (no im2col): `x` is `n x ci x h x w`, `w` `co x ci x k x k`.
fn direct_conv(
    s: &ConvShape,
    n: usize,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    x: &[f32],
    wt: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 3] {
    let (ci, co, k) = (s.in_ch, s.out_ch, s.kernel);
    let mut y = vec![0.0f64; n * co * oh * ow];
    let mut dw = vec![0.0f64; wt.len()];
    let mut dx = vec![0.0f64; x.len()];
    for b in 0..n {
        for o in 0..co {
            for (oy, ox) in (0..oh).flat_map(|oy| (0..ow).map(move |ox| (oy, ox))) {
                let at = ((b * co + o) * oh + oy) * ow + ox;
                for c in 0..ci {
                    for (ki, kj) in (0..k).flat_map(|ki| (0..k).map(move |kj| (ki, kj))) {
                        if let Some((iy, ix)) = under(s, (h, w), (oy, ox), (ki, kj)) {
                            let xi = ((b * ci + c) * h + iy) * w + ix;
                            let wi = ((o * ci + c) * k + ki) * k + kj;
                            y[at] += wt[wi] as f64 * x[xi] as f64;
                            dw[wi] += dy[at] as f64 * x[xi] as f64;
                            dx[xi] += dy[at] as f64 * wt[wi] as f64;
                        }
                    }
                }
            }
        }
    }
    [y, dw, dx].map(|v| v.into_iter().map(|v| v as f32).collect())
}

/// Geometries other than DCGAN's (stride 1 and 3, kernels 2 to 5, no padding or more,
/// non-square inputs, a batch of 7 so both lanes and a short group are used), against the
/// definition: a convolution's output and gradients, and a transposed convolution as the
/// same sums read the other way round (its input is the convolution's output).
#[test]
fn other_geometries_match_the_definition() {
    let cases = [
        // (kernel, stride, padding, conv input side)
        (3, 1, 1, (9, 7)),
        (5, 3, 2, (11, 13)),
        (4, 2, 1, (7, 9)),
        (2, 2, 0, (8, 6)),
        (3, 2, 0, (9, 9)),
    ];
    let (n, ci, co) = (7, 3, 4);
    for (salt, (kernel, stride, padding, (h, w))) in cases.into_iter().enumerate() {
        let name = format!("kernel {kernel}, stride {stride}, padding {padding}, {h} x {w}");
        let s = ConvShape {
            in_ch: ci,
            out_ch: co,
            kernel,
            stride,
            padding,
        };
        let (oh, ow) = (s.conv_out(h).unwrap(), s.conv_out(w).unwrap());
        let x = det(n * ci * h * w, 10 * salt, 1.0, 0.0);
        let wt = det(s.weight_len(), 10 * salt + 1, 0.3, 0.0);
        let dy = det(n * co * oh * ow, 10 * salt + 2, 1.0, 0.0);
        let [want_y, want_dw, want_dx] = direct_conv(&s, n, (h, w), (oh, ow), &x, &wt, &dy);

        let sides = Sides {
            batch: n,
            input: (h, w),
            output: (oh, ow),
        };
        let mut scratch = conv::Scratch::default();
        scratch.reserve(&s, &sides, false);
        let mut y = vec![f32::NAN; want_y.len()];
        conv::conv_forward(&s, &sides, &x, &wt, None, &mut y, &mut scratch);
        let (mut dw, mut dx) = (vec![0.0; wt.len()], vec![f32::NAN; x.len()]);
        let grads = conv::Grads {
            weight: &mut dw,
            bias: None,
        };
        conv::conv_backward(
            &s,
            &sides,
            &x,
            &wt,
            &dy,
            Some(grads),
            Some(&mut dx),
            &mut scratch,
        );
        check(&format!("{name}: output"), &y, &want_y);
        check(&format!("{name}: weight gradient"), &dw, &want_dw);
        check(&format!("{name}: input gradient"), &dx, &want_dx);

        // Transposed, from co to ci channels (weights `co x ci x k x k`, as PyTorch lays out
        // a transposed layer's): its output is the convolution's input gradient of `dy`, and
        // its gradients the convolution's with the roles of `x` and `dy` swapped.
        if s.transposed_out(oh) != Some(h) || s.transposed_out(ow) != Some(w) {
            continue; // the stride leaves input pixels no output reaches
        }
        let t = ConvShape {
            in_ch: co,
            out_ch: ci,
            ..s
        };
        let sides = Sides {
            batch: n,
            input: (oh, ow),
            output: (h, w),
        };
        let mut scratch = conv::Scratch::default();
        scratch.reserve(&t, &sides, true);
        let mut ty = vec![f32::NAN; x.len()];
        conv::conv_transposed_forward(&t, &sides, &dy, &wt, None, &mut ty, &mut scratch);
        let (mut tdw, mut tdx) = (vec![0.0; wt.len()], vec![f32::NAN; dy.len()]);
        let grads = conv::Grads {
            weight: &mut tdw,
            bias: None,
        };
        // The transposed layer's output gradient is `x`: its input gradient is then the
        // convolution of `x` (the convolution's output `y`), its weight gradient `dw`.
        conv::conv_transposed_backward(
            &t,
            &sides,
            &dy,
            &wt,
            &x,
            Some(grads),
            Some(&mut tdx),
            &mut scratch,
        );
        check(&format!("{name}: transposed output"), &ty, &want_dx);
        check(&format!("{name}: transposed input gradient"), &tdx, &want_y);
        check(
            &format!("{name}: transposed weight gradient"),
            &tdw,
            &want_dw,
        );
    }
}
