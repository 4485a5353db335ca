//! Convolutional layers for the DCGAN family, on flat `N x C x H x W` buffers: 2-D
//! convolution, transposed convolution and batch normalisation, forward and backward.
//!
//! A convolution is im2col (each output position's receptive field as a column) followed by
//! one product with the same gemm kernels as the MLP step; its input gradient is the
//! transposed product followed by col2im, and a transposed convolution is exactly that
//! adjoint used as a forward pass. Weights are laid out as PyTorch lays them out
//! (`out x in x k x k` for a convolution, `in x out x k x k` for a transposed one), so
//! checkpoints read the same in both. Gradients accumulate image by image in a fixed order:
//! the results never depend on the thread count.

use crate::kernels::{matmul, matmul_accumulate, Split, View};

/// One 2-D convolution's geometry (square kernels, equal stride and padding on both axes,
/// as DCGAN uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvShape {
    /// The output side of a convolution over an input side of `n` (`None` if the kernel
    /// does not fit).
    pub fn conv_out(&self, n: usize) -> Option<usize> {
        (n + 2 * self.padding)
            .checked_sub(self.kernel)
            .map(|r| r / self.stride + 1)
    }

    /// The output side of a transposed convolution over an input side of `n`: the side a
    /// convolution with this shape maps back to `n`.
    pub fn transposed_out(&self, n: usize) -> Option<usize> {
        ((n.max(1) - 1) * self.stride + self.kernel).checked_sub(2 * self.padding)
    }

    /// Rows of the im2col matrix: one per input channel and kernel position.
    fn patch(&self, channels: usize) -> usize {
        channels * self.kernel * self.kernel
    }

    pub fn weight_len(&self) -> usize {
        self.out_ch * self.in_ch * self.kernel * self.kernel
    }
}

/// The columns of one `channels x h x w` image for a convolution of `shape` with output
/// `oh x ow`: row `(c, ki, kj)`, column `(oy, ox)` holds the input pixel under kernel
/// position `(ki, kj)` at that output position, 0 in the padding.
fn im2col(
    shape: &ConvShape,
    channels: usize,
    (h, w): (usize, usize),
    image: &[f32],
    cols: &mut [f32],
    (oh, ow): (usize, usize),
) {
    let (k, s, p) = (shape.kernel, shape.stride, shape.padding);
    let mut rows = cols.chunks_exact_mut(oh * ow);
    for c in 0..channels {
        let plane = &image[c * h * w..(c + 1) * h * w];
        for ki in 0..k {
            for kj in 0..k {
                let row = rows.next().expect("a row per channel and kernel position");
                for oy in 0..oh {
                    let iy = (oy * s + ki) as isize - p as isize;
                    let out = &mut row[oy * ow..(oy + 1) * ow];
                    if iy < 0 || iy >= h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let line = &plane[iy as usize * w..(iy as usize + 1) * w];
                    for (ox, o) in out.iter_mut().enumerate() {
                        let ix = (ox * s + kj) as isize - p as isize;
                        *o = if ix < 0 || ix >= w as isize {
                            0.0
                        } else {
                            line[ix as usize]
                        };
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each column entry back onto the pixel it came from.
fn col2im(
    shape: &ConvShape,
    channels: usize,
    (h, w): (usize, usize),
    cols: &[f32],
    image: &mut [f32],
    (oh, ow): (usize, usize),
) {
    let (k, s, p) = (shape.kernel, shape.stride, shape.padding);
    let mut rows = cols.chunks_exact(oh * ow);
    for c in 0..channels {
        let plane = &mut image[c * h * w..(c + 1) * h * w];
        for ki in 0..k {
            for kj in 0..k {
                let row = rows.next().expect("a row per channel and kernel position");
                for oy in 0..oh {
                    let iy = (oy * s + ki) as isize - p as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let line = &mut plane[iy as usize * w..(iy as usize + 1) * w];
                    for (ox, &v) in row[oy * ow..(oy + 1) * ow].iter().enumerate() {
                        let ix = (ox * s + kj) as isize - p as isize;
                        if ix >= 0 && ix < w as isize {
                            line[ix as usize] += v;
                        }
                    }
                }
            }
        }
    }
}

/// A batch's sizes for one layer: images, and the input and output sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    pub batch: usize,
    pub input: (usize, usize),
    pub output: (usize, usize),
}

/// Scratch space of one layer: an image's im2col matrix.
pub fn scratch_len(shape: &ConvShape, sides: &Sides, transposed: bool) -> usize {
    let (small, big_ch) = if transposed {
        (sides.input, shape.out_ch)
    } else {
        (sides.output, shape.in_ch)
    };
    shape.patch(big_ch) * small.0 * small.1
}

/// Convolution forward: `y = W * x + b` for each image (`x`: `N x in x H x W`, `y`:
/// `N x out x OH x OW`, `w`: `out x in x k x k`).
pub fn conv_forward(
    shape: &ConvShape,
    sides: &Sides,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    cols: &mut [f32],
) {
    let (ih, iw) = sides.input;
    let (oh, ow) = sides.output;
    let (pin, pout) = (shape.in_ch * ih * iw, shape.out_ch * oh * ow);
    let patch = shape.patch(shape.in_ch);
    let cols = &mut cols[..patch * oh * ow];
    for (image, out) in x
        .chunks_exact(pin)
        .zip(y.chunks_exact_mut(pout))
        .take(sides.batch)
    {
        im2col(shape, shape.in_ch, (ih, iw), image, cols, (oh, ow));
        fill_bias(out, b);
        matmul_accumulate(
            out,
            View::rows(w, shape.out_ch, patch),
            View::rows(cols, patch, oh * ow),
        );
    }
}

/// Convolution backward from `dy`: adds the weight and bias gradients to `dw`, `db`, and, if
/// asked for, writes the input gradient into `dx`.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward(
    shape: &ConvShape,
    sides: &Sides,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    mut dx: Option<&mut [f32]>,
    cols: &mut [f32],
) {
    let (ih, iw) = sides.input;
    let (oh, ow) = sides.output;
    let (pin, pout) = (shape.in_ch * ih * iw, shape.out_ch * oh * ow);
    let patch = shape.patch(shape.in_ch);
    let cols = &mut cols[..patch * oh * ow];
    for n in 0..sides.batch {
        let (image, grad) = (&x[n * pin..(n + 1) * pin], &dy[n * pout..(n + 1) * pout]);
        add_bias_gradient(db, grad);
        im2col(shape, shape.in_ch, (ih, iw), image, cols, (oh, ow));
        // dW += dy_n (out x P) * cols_n^T (P x patch)
        matmul_accumulate(
            dw,
            View::rows(grad, shape.out_ch, oh * ow),
            View::transposed(cols, patch, oh * ow),
        );
        if let Some(dx) = dx.as_deref_mut() {
            // dcols = W^T (patch x out) * dy_n (out x P), then back onto the pixels.
            matmul(
                cols,
                View::transposed(w, shape.out_ch, patch),
                View::rows(grad, shape.out_ch, oh * ow),
                Split::None,
            );
            let out = &mut dx[n * pin..(n + 1) * pin];
            out.fill(0.0);
            col2im(shape, shape.in_ch, (ih, iw), cols, out, (oh, ow));
        }
    }
}

/// Transposed convolution forward (PyTorch's `ConvTranspose2d`, `w`: `in x out x k x k`):
/// the input gradient of a convolution from `out` to `in` channels, used as a forward pass.
/// `sides.output` must be [`ConvShape::transposed_out`] of `sides.input`.
pub fn conv_transposed_forward(
    shape: &ConvShape,
    sides: &Sides,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    cols: &mut [f32],
) {
    let (ih, iw) = sides.input;
    let (oh, ow) = sides.output;
    let (pin, pout) = (shape.in_ch * ih * iw, shape.out_ch * oh * ow);
    let patch = shape.patch(shape.out_ch);
    let cols = &mut cols[..patch * ih * iw];
    for (image, out) in x
        .chunks_exact(pin)
        .zip(y.chunks_exact_mut(pout))
        .take(sides.batch)
    {
        // cols = W^T (out*k*k x in) * x_n (in x H*W), then onto the output's pixels.
        matmul(
            cols,
            View::transposed(w, shape.in_ch, patch),
            View::rows(image, shape.in_ch, ih * iw),
            Split::None,
        );
        fill_bias(out, b);
        col2im(shape, shape.out_ch, (oh, ow), cols, out, (ih, iw));
    }
}

/// Transposed convolution backward from `dy`: adds the weight and bias gradients, and, if
/// asked for, writes the input gradient.
#[allow(clippy::too_many_arguments)]
pub fn conv_transposed_backward(
    shape: &ConvShape,
    sides: &Sides,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    mut dx: Option<&mut [f32]>,
    cols: &mut [f32],
) {
    let (ih, iw) = sides.input;
    let (oh, ow) = sides.output;
    let (pin, pout) = (shape.in_ch * ih * iw, shape.out_ch * oh * ow);
    let patch = shape.patch(shape.out_ch);
    let cols = &mut cols[..patch * ih * iw];
    for n in 0..sides.batch {
        let (image, grad) = (&x[n * pin..(n + 1) * pin], &dy[n * pout..(n + 1) * pout]);
        add_bias_gradient(db, grad);
        // The columns of dy under the matching convolution (out -> in channels, OH -> H).
        im2col(shape, shape.out_ch, (oh, ow), grad, cols, (ih, iw));
        // dW += x_n (in x H*W) * cols^T (H*W x out*k*k)
        matmul_accumulate(
            dw,
            View::rows(image, shape.in_ch, ih * iw),
            View::transposed(cols, patch, ih * iw),
        );
        if let Some(dx) = dx.as_deref_mut() {
            matmul(
                &mut dx[n * pin..(n + 1) * pin],
                View::rows(w, shape.in_ch, patch),
                View::rows(cols, patch, ih * iw),
                Split::None,
            );
        }
    }
}

/// The running statistics batch normalisation keeps for sampling, updated as PyTorch does:
/// `running = (1 - momentum) * running + momentum * batch` (the variance unbiased).
pub struct Running<'a> {
    pub mean: &'a mut [f32],
    pub var: &'a mut [f32],
    pub momentum: f32,
}

/// Each channel's plane of one output image starts at its bias.
fn fill_bias(image: &mut [f32], bias: &[f32]) {
    let plane = image.len() / bias.len().max(1);
    for (pixels, &b) in image.chunks_exact_mut(plane).zip(bias) {
        pixels.fill(b);
    }
}

/// Adds each channel's sum of one image's output gradient to the bias gradient.
fn add_bias_gradient(db: &mut [f32], grad: &[f32]) {
    let plane = grad.len() / db.len().max(1);
    for (g, pixels) in db.iter_mut().zip(grad.chunks_exact(plane)) {
        *g += pixels.iter().sum::<f32>();
    }
}

/// Batch normalisation over `N x C x P` (P pixels per channel) in training mode, as DCGAN
/// uses it: each channel normalised by its batch mean and (biased) variance, then scaled by
/// `gamma` and shifted by `beta`. `mean` and `inv_std` keep the batch's statistics for the
/// backward pass; `running`, if given, is updated.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward(
    (batch, channels, pixels): (usize, usize, usize),
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    mean: &mut [f32],
    inv_std: &mut [f32],
    mut running: Option<Running>,
) {
    let count = (batch * pixels) as f64;
    for c in 0..channels {
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
        let is = 1.0 / (var + eps as f64).sqrt();
        mean[c] = m as f32;
        inv_std[c] = is as f32;
        if let Some(r) = running.as_mut() {
            let k = r.momentum as f64;
            let unbiased = var * count / (count - 1.0).max(1.0);
            r.mean[c] = ((1.0 - k) * r.mean[c] as f64 + k * m) as f32;
            r.var[c] = ((1.0 - k) * r.var[c] as f64 + k * unbiased) as f32;
        }
        for o in planes() {
            for (out, &v) in y[o..o + pixels].iter_mut().zip(&x[o..o + pixels]) {
                *out = gamma[c] * ((v - mean[c]) * inv_std[c]) + beta[c];
            }
        }
    }
}

/// Batch normalisation backward: adds `dgamma`, `dbeta` and writes `dx`, from the forward
/// pass's input and statistics.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    (batch, channels, pixels): (usize, usize, usize),
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    dy: &[f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dx: &mut [f32],
) {
    let count = (batch * pixels) as f64;
    for c in 0..channels {
        let planes = || (0..batch).map(move |n| (n * channels + c) * pixels);
        let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
        for o in planes() {
            for (&g, &v) in dy[o..o + pixels].iter().zip(&x[o..o + pixels]) {
                let xhat = (v - mean[c]) * inv_std[c];
                sum_dy += g as f64;
                sum_dy_xhat += (g * xhat) as f64;
            }
        }
        dbeta[c] += sum_dy as f32;
        dgamma[c] += sum_dy_xhat as f32;
        let (a, mdy, mdyx) = (
            gamma[c] * inv_std[c],
            (sum_dy / count) as f32,
            (sum_dy_xhat / count) as f32,
        );
        for o in planes() {
            for ((out, &g), &v) in dx[o..o + pixels]
                .iter_mut()
                .zip(&dy[o..o + pixels])
                .zip(&x[o..o + pixels])
            {
                let xhat = (v - mean[c]) * inv_std[c];
                *out = a * (g - mdy - xhat * mdyx);
            }
        }
    }
}
