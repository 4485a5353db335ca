//! The DCGAN's passes over flat buffers: G in training mode forward and backward, D forward
//! and backward over real and fake halves, and the buffers they work in.

use rand_chacha::ChaCha8Rng;

use crate::dcgan::networks::{
    d_sides, g_sides, stride_2, ConvDiscriminator, ConvGenerator, MID_PIXELS, SEED_PIXELS,
};
use crate::kernels::{self, in_halves, matmul, Split, View};
use crate::layers::activation::{
    activate_in_halves, bias_activation, multiply_by_derivative_in_halves,
    scale_by_derivative_in_halves, scale_by_output_derivative, Output,
};
use crate::layers::batch_norm::{self, Running};
use crate::layers::conv::{self, Grads, Scratch};
use crate::layers::dropout::{apply_mask, draw_mask, Mask};
use crate::layers::slots::{split, split_ref};
use crate::train::config::IMAGE_PIXELS;

pub(crate) fn output_activation(out: &mut [f32], output: Output) {
    match output {
        Output::Sigmoid => out.iter_mut().for_each(|v| *v = kernels::sigmoid(*v)),
        // libm's tanh, not `kernels::tanh_fast` (which tanh layers use): one pass over the
        // output is well under 1% of a DCGAN step, and keeping it keeps the DCGAN specs'
        // bits (and the results quoted for them) as they were.
        Output::Tanh => out.iter_mut().for_each(|v| *v = v.tanh()),
        Output::Identity => {}
    }
}

/// D's buffers for `2B` images (G's step uses the first `B` of each).
pub(crate) struct DBuffers {
    /// After the first convolution and the activation.
    pub(crate) e1: Vec<f32>,
    /// The second convolution's output, before batch normalisation.
    pub(crate) h2: Vec<f32>,
    /// After batch normalisation and the activation.
    pub(crate) e2: Vec<f32>,
    /// Each half's batch statistics, `2 x C2`.
    pub(crate) mean: Vec<f32>,
    pub(crate) inv_std: Vec<f32>,
    pub(crate) logits: Vec<f32>,
    pub(crate) dl: Vec<f32>,
    /// Gradients at `e2` (then at the normalisation's output), at `h2` and at `e1`.
    pub(crate) de2: Vec<f32>,
    pub(crate) dh2: Vec<f32>,
    pub(crate) de1: Vec<f32>,
    /// Where G's step puts the normalisation's parameter gradients it does not need.
    pub(crate) unused: Vec<f32>,
    /// The normalisation's backward pass's working memory (`2 x C2`).
    pub(crate) bn_work: Vec<f32>,
    /// The dense layer's activations (`2B x H`), the gradient at them, and its weight
    /// gradient before it is added to D's (all empty without the layer).
    pub(crate) e3: Vec<f32>,
    pub(crate) de3: Vec<f32>,
    pub(crate) d_dense: Vec<f32>,
    pub(crate) dropout: DropoutMasks,
}

impl DBuffers {
    /// D's buffers for `2b` images, with dropout masks if `drop > 0`.
    pub(crate) fn new(b: usize, d: &ConvDiscriminator, drop: f32) -> DBuffers {
        let [d1, d2] = d.channels;
        let zeros = |n: usize| vec![0.0f32; n];
        DBuffers {
            e1: zeros(2 * b * d1 * MID_PIXELS),
            h2: zeros(2 * b * d2 * SEED_PIXELS),
            e2: zeros(2 * b * d2 * SEED_PIXELS),
            mean: zeros(2 * d2),
            inv_std: zeros(2 * d2),
            logits: zeros(2 * b),
            dl: zeros(2 * b),
            de2: zeros(2 * b * d2 * SEED_PIXELS),
            dh2: zeros(2 * b * d2 * SEED_PIXELS),
            de1: zeros(2 * b * d1 * MID_PIXELS),
            unused: zeros(2 * d2),
            bn_work: zeros(2 * d2),
            e3: zeros(2 * b * d.dense),
            de3: zeros(2 * b * d.dense),
            d_dense: zeros(d.lens()[5]),
            dropout: DropoutMasks::new(drop, 2 * b, d.widths()),
        }
    }
}

/// D's dropout masks after each activation (`model.d_dropout`; empty without): 0 for a
/// dropped unit, `1 / keep` for a kept one, `2B` rows in D's update, the first `B` redrawn
/// for G's.
pub(crate) struct DropoutMasks {
    pub(crate) layers: [Vec<f32>; 2],
    /// The probability of dropping a unit.
    pub(crate) drop: f32,
}

impl DropoutMasks {
    /// Masks for `rows` images of D's layers `widths` units wide, if `drop > 0`.
    pub(crate) fn new(drop: f32, rows: usize, widths: [usize; 2]) -> DropoutMasks {
        let len = |w: usize| if drop > 0.0 { rows * w } else { 0 };
        DropoutMasks {
            layers: widths.map(|w| vec![0.0; len(w)]),
            drop,
        }
    }

    /// The masks of `n` rows of each layer (none without dropout).
    pub(crate) fn of_rows(&self, n: usize, widths: [usize; 2]) -> [Mask<'_>; 2] {
        let keep = 1.0 - self.drop;
        let [m1, m2] = &self.layers;
        if m1.is_empty() {
            return [None, None];
        }
        [
            Some((&m1[..n * widths[0]], keep)),
            Some((&m2[..n * widths[1]], keep)),
        ]
    }

    /// Fresh masks for the first `n` rows of each layer (nothing without dropout): from
    /// `rng`, or copied from `given` (layer 1's rows, then layer 2's).
    pub(crate) fn draw(
        &mut self,
        n: usize,
        widths: [usize; 2],
        rng: &mut ChaCha8Rng,
        given: Option<&[f32]>,
    ) {
        if self.layers[0].is_empty() {
            return;
        }
        let mut given = given;
        for (mask, w) in self.layers.iter_mut().zip(widths) {
            let mask = &mut mask[..n * w];
            match given {
                Some(g) => {
                    let (this, rest) = g.split_at(mask.len());
                    mask.copy_from_slice(this);
                    given = Some(rest);
                }
                None => draw_mask(mask, rng, self.drop),
            }
        }
    }
}

/// G's buffers for `B` images.
pub(crate) struct GBuffers {
    pub(crate) z: Vec<f32>,
    /// The linear layer's output (`B x C1 x 7 x 7`), then after normalisation and activation.
    pub(crate) h0: Vec<f32>,
    pub(crate) a0: Vec<f32>,
    pub(crate) h1: Vec<f32>,
    pub(crate) a1: Vec<f32>,
    pub(crate) mean0: Vec<f32>,
    pub(crate) inv_std0: Vec<f32>,
    pub(crate) mean1: Vec<f32>,
    pub(crate) inv_std1: Vec<f32>,
    /// Gradients at G's output pixels, at `a1`/`h1` and at `a0`/`h0`.
    pub(crate) dout: Vec<f32>,
    pub(crate) da1: Vec<f32>,
    pub(crate) dh1: Vec<f32>,
    pub(crate) da0: Vec<f32>,
    pub(crate) dh0: Vec<f32>,
    /// The normalisations' backward passes' working memory (`2 x max(C1, C2)`).
    pub(crate) bn_work: Vec<f32>,
}

impl GBuffers {
    /// G's buffers for `b` images.
    pub(crate) fn new(b: usize, g: &ConvGenerator) -> GBuffers {
        let [g1, g2] = g.channels;
        let zeros = |n: usize| vec![0.0f32; n];
        GBuffers {
            z: zeros(b * g.input()),
            h0: zeros(b * g1 * SEED_PIXELS),
            a0: zeros(b * g1 * SEED_PIXELS),
            h1: zeros(b * g2 * MID_PIXELS),
            a1: zeros(b * g2 * MID_PIXELS),
            mean0: zeros(g1),
            inv_std0: zeros(g1),
            mean1: zeros(g2),
            inv_std1: zeros(g2),
            dout: zeros(b * IMAGE_PIXELS),
            da1: zeros(b * g2 * MID_PIXELS),
            dh1: zeros(b * g2 * MID_PIXELS),
            da0: zeros(b * g1 * SEED_PIXELS),
            dh0: zeros(b * g1 * SEED_PIXELS),
            bn_work: zeros(2 * g1.max(g2)),
        }
    }
}

/// The labels a conditional G's given input rows ask for (where each row's one-hot part is
/// largest); nothing for an unconditional G.
pub(crate) fn labels_of_one_hot(z: &[f32], classes: usize, labels: &mut [u8]) {
    if classes == 0 {
        return;
    }
    let width = z.len() / labels.len();
    for (row, label) in z.chunks_exact(width).zip(labels.iter_mut()) {
        let one_hot = &row[width - classes..];
        let best = (0..classes).fold(0, |b, c| if one_hot[c] > one_hot[b] { c } else { b });
        *label = best as u8;
    }
}

/// G in training mode: batch statistics (updating the running ones), output into `out`.
pub(crate) fn generator_forward(
    g: &mut ConvGenerator,
    buf: &mut GBuffers,
    out: &mut [f32],
    scratch: &mut Scratch,
    momentum: f32,
) {
    let [c1, c2] = g.channels;
    let input = g.input();
    let n = buf.z.len() / input;
    let lens = g.lens();
    let [fc, g0, b0, up1, g1, b1, up2, bias2] = split_ref(&g.params, lens);
    let [m0, v0, m1, v1] = split(&mut g.running, [c1, c1, c2, c2]);
    matmul(
        &mut buf.h0,
        View::rows(&buf.z, n, input),
        View::transposed(fc, c1 * SEED_PIXELS, input),
        Split::Cols(2),
    );
    batch_norm::forward(
        (n, c1, SEED_PIXELS),
        &buf.h0,
        g0,
        b0,
        batch_norm::EPS,
        &mut buf.a0,
        &mut buf.mean0,
        &mut buf.inv_std0,
        Some(Running {
            mean: m0,
            var: v0,
            momentum,
        }),
    );
    activate_in_halves(&mut buf.a0, g.act);
    let (sides1, sides2) = g_sides(n);
    conv::conv_transposed_forward(
        &stride_2(c1, c2),
        &sides1,
        &buf.a0,
        up1,
        None,
        &mut buf.h1,
        scratch,
    );
    batch_norm::forward(
        (n, c2, MID_PIXELS),
        &buf.h1,
        g1,
        b1,
        batch_norm::EPS,
        &mut buf.a1,
        &mut buf.mean1,
        &mut buf.inv_std1,
        Some(Running {
            mean: m1,
            var: v1,
            momentum,
        }),
    );
    activate_in_halves(&mut buf.a1, g.act);
    conv::conv_transposed_forward(
        &stride_2(c2, 1),
        &sides2,
        &buf.a1,
        up2,
        Some(bias2),
        out,
        scratch,
    );
    in_halves(out, |out| output_activation(out, g.output));
}

/// G's backward pass from `buf.dout` (the gradient at its output pixels `out`): adds every
/// parameter gradient to `grad`.
pub(crate) fn generator_backward(
    g: &ConvGenerator,
    out: &[f32],
    buf: &mut GBuffers,
    grad: &mut [f32],
    scratch: &mut Scratch,
) {
    let [c1, c2] = g.channels;
    let n = buf.z.len() / g.input();
    let lens = g.lens();
    let [_, g0, _, up1, g1, _, up2, _] = split_ref(&g.params, lens);
    let [d_fc, d_g0, d_b0, d_up1, d_g1, d_b1, d_up2, d_bias2] = split(grad, lens);
    scale_by_output_derivative(&mut buf.dout, out, g.output);
    let (sides1, sides2) = g_sides(n);
    conv::conv_transposed_backward(
        &stride_2(c2, 1),
        &sides2,
        &buf.a1,
        up2,
        &buf.dout,
        Some(Grads {
            weight: d_up2,
            bias: Some(d_bias2),
        }),
        Some(&mut buf.da1),
        scratch,
    );
    multiply_by_derivative_in_halves(&mut buf.da1, &buf.a1, g.act);
    batch_norm::backward(
        (n, c2, MID_PIXELS),
        &buf.h1,
        g1,
        &buf.mean1,
        &buf.inv_std1,
        &buf.da1,
        d_g1,
        d_b1,
        &mut buf.dh1,
        &mut buf.bn_work,
    );
    conv::conv_transposed_backward(
        &stride_2(c1, c2),
        &sides1,
        &buf.a0,
        up1,
        &buf.dh1,
        Some(Grads {
            weight: d_up1,
            bias: None,
        }),
        Some(&mut buf.da0),
        scratch,
    );
    multiply_by_derivative_in_halves(&mut buf.da0, &buf.a0, g.act);
    batch_norm::backward(
        (n, c1, SEED_PIXELS),
        &buf.h0,
        g0,
        &buf.mean0,
        &buf.inv_std0,
        &buf.da0,
        d_g0,
        d_b0,
        &mut buf.dh0,
        &mut buf.bn_work,
    );
    // fc.weight's gradient: dh0^T (C1*49 x n) * z (n x noise); the noise needs none.
    matmul(
        d_fc,
        View::transposed(&buf.dh0, n, c1 * SEED_PIXELS),
        View::rows(&buf.z, n, g.input()),
        Split::Cols(2),
    );
}

/// D over the `n` images of `x` (`n x 784`) in training mode, their batch statistics taken
/// over `halves` equal parts separately (real and fake), a conditional D's with their
/// `labels`; logits into `buf.logits[..n]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn discriminator_forward(
    d: &ConvDiscriminator,
    x: &[f32],
    n: usize,
    halves: usize,
    labels: &[u8],
    buf: &mut DBuffers,
    scratch: &mut Scratch,
) {
    let [c1, c2] = d.channels;
    let [conv1, bias1, conv2, gamma, beta, dense, dense_bias, fc, fc_bias, embed] =
        split_ref(&d.params, d.lens());
    let (sides1, sides2) = d_sides(n);
    let (e1, h2, e2) = (
        &mut buf.e1[..n * c1 * MID_PIXELS],
        &mut buf.h2[..n * c2 * SEED_PIXELS],
        &mut buf.e2[..n * c2 * SEED_PIXELS],
    );
    conv::conv_forward(
        &stride_2(1, c1),
        &sides1,
        x,
        conv1,
        Some(bias1),
        e1,
        scratch,
    );
    activate_in_halves(e1, d.act);
    let [mask1, mask2] = buf.dropout.of_rows(n, d.widths());
    if let Some((mask, _)) = mask1 {
        apply_mask(e1, mask);
    }
    if !d.batch_norm {
        let bias2 = gamma;
        conv::conv_forward(
            &stride_2(c1, c2),
            &sides2,
            e1,
            conv2,
            Some(bias2),
            e2,
            scratch,
        );
    } else {
        conv::conv_forward(&stride_2(c1, c2), &sides2, e1, conv2, None, h2, scratch);
        let per_half = n / halves;
        let part = per_half * c2 * SEED_PIXELS;
        for (h, (x, y)) in h2
            .chunks_exact(part)
            .zip(e2.chunks_exact_mut(part))
            .enumerate()
        {
            batch_norm::forward(
                (per_half, c2, SEED_PIXELS),
                x,
                gamma,
                beta,
                batch_norm::EPS,
                y,
                &mut buf.mean[h * c2..(h + 1) * c2],
                &mut buf.inv_std[h * c2..(h + 1) * c2],
                None,
            );
        }
    }
    activate_in_halves(e2, d.act);
    if let Some((mask, _)) = mask2 {
        apply_mask(e2, mask);
    }
    let features: &[f32] = if d.dense > 0 {
        let (h, width) = (d.dense, d.conv_features());
        let e3 = &mut buf.e3[..n * h];
        kernels::matmul(
            e3,
            View::rows(e2, n, width),
            View::transposed(dense, h, width),
            Split::Cols(2),
        );
        bias_activation(e3, dense_bias, d.act);
        e3
    } else {
        e2
    };
    kernels::rows_dot(&mut buf.logits[..n], features, fc, fc_bias[0]);
    if d.classes > 0 {
        let w = d.fc_inputs();
        let rows = features.chunks_exact(w).zip(&labels[..n]);
        for (logit, (row, &y)) in buf.logits[..n].iter_mut().zip(rows) {
            *logit += kernels::dot(row, class_row(embed, w, y));
        }
    }
}

/// A conditional D's embedding row for digit `y` (`w` wide): the extra logit weights of
/// that digit's images.
pub(crate) fn class_row(embed: &[f32], w: usize, y: u8) -> &[f32] {
    &embed[y as usize * w..][..w]
}

/// D's backward pass from `buf.dl[..n]` after [`discriminator_forward`] on the same images:
/// adds its parameter gradients to `grad` if given, writes the gradient at its input pixels
/// into `dx` if given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn discriminator_backward(
    d: &ConvDiscriminator,
    x: &[f32],
    n: usize,
    halves: usize,
    labels: &[u8],
    buf: &mut DBuffers,
    grad: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    scratch: &mut Scratch,
) {
    let [c1, c2] = d.channels;
    let lens = d.lens();
    let [_, _, conv2, gamma, ..] = split_ref(&d.params, lens);
    let (sides1, sides2) = d_sides(n);
    let width = c2 * SEED_PIXELS;
    let (e1, h2, e2) = (
        &buf.e1[..n * c1 * MID_PIXELS],
        &buf.h2[..n * width],
        &buf.e2[..n * width],
    );
    let (de2, dh2, de1) = (
        &mut buf.de2[..n * width],
        &mut buf.dh2[..n * width],
        &mut buf.de1[..n * c1 * MID_PIXELS],
    );
    let dl = &buf.dl[..n];
    let mut grads = grad.map(|g| split(g, lens));
    // The logit's input: the dense layer's activations, or the conv features.
    let h = d.dense;
    let (features, d_features) = if h > 0 {
        (&buf.e3[..n * h], &mut buf.de3[..n * h])
    } else {
        (e2, &mut *de2)
    };
    logit_backward(d, features, d_features, dl, labels, grads.as_mut());
    if h > 0 {
        let (e3, de3) = (&buf.e3[..n * h], &mut buf.de3[..n * h]);
        dense_backward(d, e2, e3, de3, de2, &mut buf.d_dense, grads.as_mut());
    }
    let [mask1, mask2] = buf.dropout.of_rows(n, d.widths());
    scale_by_derivative_in_halves(de2, e2, d.act, mask2);
    let per_half = n / halves;
    let part = per_half * width;
    for h in (0..halves).filter(|_| d.batch_norm) {
        let range = h * part..(h + 1) * part;
        let (d_gamma, d_beta) = match grads.as_mut() {
            Some([_, _, _, d_gamma, d_beta, ..]) => (&mut **d_gamma, &mut **d_beta),
            None => buf.unused.split_at_mut(c2),
        };
        batch_norm::backward(
            (per_half, c2, SEED_PIXELS),
            &h2[range.clone()],
            gamma,
            &buf.mean[h * c2..(h + 1) * c2],
            &buf.inv_std[h * c2..(h + 1) * c2],
            &de2[range.clone()],
            d_gamma,
            d_beta,
            &mut dh2[range],
            &mut buf.bn_work,
        );
    }
    let (conv1_grads, conv2_grads) = match grads {
        Some([d_conv1, d_bias1, d_conv2, d_bias2, ..]) => (
            Some(Grads {
                weight: d_conv1,
                bias: Some(d_bias1),
            }),
            Some(Grads {
                weight: d_conv2,
                bias: (!d.batch_norm).then_some(d_bias2),
            }),
        ),
        None => (None, None),
    };
    // Without batch normalisation the gradient at the convolution's output is `de2`.
    let dh2: &[f32] = if d.batch_norm { dh2 } else { de2 };
    conv::conv_backward(
        &stride_2(c1, c2),
        &sides2,
        e1,
        conv2,
        dh2,
        conv2_grads,
        Some(de1),
        scratch,
    );
    scale_by_derivative_in_halves(de1, e1, d.act, mask1);
    if conv1_grads.is_some() || dx.is_some() {
        let conv1 = &d.params[..lens[0]];
        conv::conv_backward(
            &stride_2(1, c1),
            &sides1,
            x,
            conv1,
            de1,
            conv1_grads,
            dx,
            scratch,
        );
    }
}

/// Back through D's logit layer (with a conditional D's projection) from `dl`: the gradient
/// at its input `features` into `d_features`, and with `grads` (D's, split as
/// [`ConvDiscriminator::lens`]) the logit weights', bias's and embedding's gradients.
fn logit_backward(
    d: &ConvDiscriminator,
    features: &[f32],
    d_features: &mut [f32],
    dl: &[f32],
    labels: &[u8],
    grads: Option<&mut [&mut [f32]; 10]>,
) {
    let [.., fc, _, embed] = split_ref(&d.params, d.lens());
    let fc_width = d.fc_inputs();
    // A conditional D's logit weights of image i are `fc + embed[label i]`.
    for (i, (row, &g)) in d_features.chunks_exact_mut(fc_width).zip(dl).enumerate() {
        for (o, &w) in row.iter_mut().zip(fc) {
            *o = g * w;
        }
        if d.classes > 0 {
            for (o, &e) in row.iter_mut().zip(class_row(embed, fc_width, labels[i])) {
                *o += g * e;
            }
        }
    }
    if let Some([.., d_fc, d_fc_bias, d_embed]) = grads {
        for (i, (row, &g)) in features.chunks_exact(fc_width).zip(dl).enumerate() {
            for (o, &a) in d_fc.iter_mut().zip(row) {
                *o += g * a;
            }
            if d.classes > 0 {
                let y = labels[i] as usize;
                for (o, &a) in d_embed[y * fc_width..][..fc_width].iter_mut().zip(row) {
                    *o += g * a;
                }
            }
        }
        d_fc_bias[0] += dl.iter().sum::<f32>();
    }
}

/// Back through D's dense hidden layer (`model.d_dense`) from the gradient at its
/// activations `de3` (its outputs `e3`, its inputs the conv features `e2`): the gradient at
/// `e2` into `de2`, and with `grads` its weight and bias gradients (the weights' through
/// `d_dense_scratch`, in a fixed cut, then added).
fn dense_backward(
    d: &ConvDiscriminator,
    e2: &[f32],
    e3: &[f32],
    de3: &mut [f32],
    de2: &mut [f32],
    d_dense_scratch: &mut [f32],
    grads: Option<&mut [&mut [f32]; 10]>,
) {
    let (h, width) = (d.dense, d.conv_features());
    let n = e3.len() / h;
    let dense = split_ref(&d.params, d.lens())[5];
    scale_by_derivative_in_halves(de3, e3, d.act, None);
    if let Some([.., d_dense, d_dense_bias, _, _, _]) = grads {
        // dW = de3^T e2 in column blocks of a buffer (a fixed cut), then added.
        kernels::matmul(
            d_dense_scratch,
            View::transposed(de3, n, h),
            View::rows(e2, n, width),
            Split::Cols(2),
        );
        for (g, &v) in d_dense.iter_mut().zip(&*d_dense_scratch) {
            *g += v;
        }
        for row in de3.chunks_exact(h) {
            for (g, &v) in d_dense_bias.iter_mut().zip(row) {
                *g += v;
            }
        }
    }
    kernels::matmul(
        de2,
        View::rows(de3, n, h),
        View::rows(dense, h, width),
        Split::Cols(2),
    );
}
