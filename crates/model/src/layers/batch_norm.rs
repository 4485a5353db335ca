//! Batch normalisation (Ioffe and Szegedy 2015) over flat `N x C x P` buffers (P pixels per
//! channel), as DCGAN uses it: training mode with the batch's statistics, forward and
//! backward, and inference with the running statistics PyTorch keeps.

use crate::layers::activation::Activation;

/// PyTorch's defaults: the variance's epsilon and the running statistics' momentum.
pub const EPS: f32 = 1e-5;
pub const MOMENTUM: f32 = 0.1;

/// The running statistics batch normalisation keeps for sampling, updated as PyTorch does:
/// `running = (1 - momentum) * running + momentum * batch` (the variance unbiased).
pub struct Running<'a> {
    pub mean: &'a mut [f32],
    pub var: &'a mut [f32],
    pub momentum: f32,
}

/// Batch normalisation over `N x C x P` (P pixels per channel) in training mode, as DCGAN
/// uses it: each channel normalised by its batch mean and (biased) variance, then scaled by
/// `gamma` and shifted by `beta`. `mean` and `inv_std` keep the batch's statistics for the
/// backward pass; `running`, if given, is updated. The statistics are computed in two halves
/// of the channels side by side, the normalisation in two halves of the images: each
/// value's arithmetic is the same however the work is cut.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    (batch, channels, pixels): (usize, usize, usize),
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    mean: &mut [f32],
    inv_std: &mut [f32],
    running: Option<Running>,
) {
    let half = channels.div_ceil(2);
    let (mean_a, mean_b) = mean.split_at_mut(half);
    let (inv_a, inv_b) = inv_std.split_at_mut(half);
    let (run_a, run_b) = match running {
        Some(r) => {
            let (ma, mb) = r.mean.split_at_mut(half);
            let (va, vb) = r.var.split_at_mut(half);
            let k = r.momentum;
            (
                Some(Running {
                    mean: ma,
                    var: va,
                    momentum: k,
                }),
                Some(Running {
                    mean: mb,
                    var: vb,
                    momentum: k,
                }),
            )
        }
        None => (None, None),
    };
    let dims = (batch, channels, pixels);
    rayon::join(
        || statistics(dims, x, 0, eps, mean_a, inv_a, run_a),
        || statistics(dims, x, half, eps, mean_b, inv_b, run_b),
    );
    let (mean, inv_std) = (&*mean, &*inv_std);
    let image = channels * pixels;
    let split = batch.div_ceil(2) * image;
    let (x_a, x_b) = x[..batch * image].split_at(split);
    let (y_a, y_b) = y[..batch * image].split_at_mut(split);
    let normalise = |x: &[f32], y: &mut [f32]| {
        for (x, y) in x.chunks_exact(image).zip(y.chunks_exact_mut(image)) {
            for (c, (x, y)) in x
                .chunks_exact(pixels)
                .zip(y.chunks_exact_mut(pixels))
                .enumerate()
            {
                for (out, &v) in y.iter_mut().zip(x) {
                    *out = gamma[c] * ((v - mean[c]) * inv_std[c]) + beta[c];
                }
            }
        }
    };
    rayon::join(|| normalise(x_a, y_a), || normalise(x_b, y_b));
}

/// The batch statistics of channels `first..first + mean.len()`.
fn statistics(
    (batch, channels, pixels): (usize, usize, usize),
    x: &[f32],
    first: usize,
    eps: f32,
    mean: &mut [f32],
    inv_std: &mut [f32],
    mut running: Option<Running>,
) {
    let count = (batch * pixels) as f64;
    for (i, (mean, inv_std)) in mean.iter_mut().zip(inv_std.iter_mut()).enumerate() {
        let c = first + i;
        let planes = || (0..batch).map(move |n| (n * channels + c) * pixels);
        let sum: f64 = planes()
            .map(|o| x[o..o + pixels].iter().map(|&v| v as f64).sum::<f64>())
            .sum();
        let m = sum / count;
        let var: f64 = planes()
            .map(|o| {
                x[o..o + pixels]
                    .iter()
                    .map(|&v| (v as f64 - m).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / count;
        *mean = m as f32;
        *inv_std = (1.0 / (var + eps as f64).sqrt()) as f32;
        if let Some(r) = running.as_mut() {
            let k = r.momentum as f64;
            let unbiased = var * count / (count - 1.0).max(1.0);
            r.mean[i] = ((1.0 - k) * r.mean[i] as f64 + k * m) as f32;
            r.var[i] = ((1.0 - k) * r.var[i] as f64 + k * unbiased) as f32;
        }
    }
}

/// Batch normalisation backward: adds `dgamma`, `dbeta` and writes `dx`, from the forward
/// pass's input and statistics. `work` (at least `2 x C`) holds each channel's mean of `dy`
/// and of `dy * x̂` between the two passes: the sums in two halves of the channels, `dx` in
/// two halves of the images, side by side.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    (batch, channels, pixels): (usize, usize, usize),
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    dy: &[f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dx: &mut [f32],
    work: &mut [f32],
) {
    let count = (batch * pixels) as f64;
    let (mean_dy, mean_dy_xhat) = work[..2 * channels].split_at_mut(channels);
    let sums =
        |first: usize, dgamma: &mut [f32], dbeta: &mut [f32], mdy: &mut [f32], mdyx: &mut [f32]| {
            for i in 0..dgamma.len() {
                let c = first + i;
                let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
                for n in 0..batch {
                    let o = (n * channels + c) * pixels;
                    for (&g, &v) in dy[o..o + pixels].iter().zip(&x[o..o + pixels]) {
                        let xhat = (v - mean[c]) * inv_std[c];
                        sum_dy += g as f64;
                        sum_dy_xhat += (g * xhat) as f64;
                    }
                }
                dbeta[i] += sum_dy as f32;
                dgamma[i] += sum_dy_xhat as f32;
                mdy[i] = (sum_dy / count) as f32;
                mdyx[i] = (sum_dy_xhat / count) as f32;
            }
        };
    let half = channels.div_ceil(2);
    let (dgamma_a, dgamma_b) = dgamma[..channels].split_at_mut(half);
    let (dbeta_a, dbeta_b) = dbeta[..channels].split_at_mut(half);
    let (mdy_a, mdy_b) = mean_dy.split_at_mut(half);
    let (mdyx_a, mdyx_b) = mean_dy_xhat.split_at_mut(half);
    rayon::join(
        || sums(0, dgamma_a, dbeta_a, mdy_a, mdyx_a),
        || sums(half, dgamma_b, dbeta_b, mdy_b, mdyx_b),
    );
    let (mean_dy, mean_dy_xhat) = (&*mean_dy, &*mean_dy_xhat);
    let image = channels * pixels;
    let split = batch.div_ceil(2) * image;
    let (dx_a, dx_b) = dx[..batch * image].split_at_mut(split);
    let input_gradient = |first_image: usize, dx: &mut [f32]| {
        for (j, dx) in dx.chunks_exact_mut(image).enumerate() {
            let o = (first_image + j) * image;
            for (c, dx) in dx.chunks_exact_mut(pixels).enumerate() {
                let a = gamma[c] * inv_std[c];
                let at = o + c * pixels;
                for ((out, &g), &v) in dx
                    .iter_mut()
                    .zip(&dy[at..at + pixels])
                    .zip(&x[at..at + pixels])
                {
                    let xhat = (v - mean[c]) * inv_std[c];
                    *out = a * (g - mean_dy[c] - xhat * mean_dy_xhat[c]);
                }
            }
        }
    };
    rayon::join(
        || input_gradient(0, dx_a),
        || input_gradient(batch.div_ceil(2), dx_b),
    );
}

/// Batch normalisation with running statistics, then `act`, in place.
#[allow(clippy::too_many_arguments)]
pub(crate) fn inference(
    x: &mut [f32],
    channels: usize,
    pixels: usize,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    act: Activation,
) {
    for image in x.chunks_exact_mut(channels * pixels) {
        for (c, plane) in image.chunks_exact_mut(pixels).enumerate() {
            let inv_std = 1.0 / (var[c] + EPS).sqrt();
            for v in plane {
                *v = act.apply(gamma[c] * ((*v - mean[c]) * inv_std) + beta[c]);
            }
        }
    }
}
