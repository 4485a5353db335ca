//! Convolutional layers on flat `N x C x H x W` buffers: 2-D convolution and transposed
//! convolution, forward and backward.
//!
//! A convolution is im2col (each output position's receptive field as a column) followed by
//! one product with the same gemm kernels as the MLP step; its input gradient is the
//! transposed product followed by col2im, and a transposed convolution is exactly that
//! adjoint used as a forward pass. Weights are laid out as PyTorch lays them out
//! (`out x in x k x k` for a convolution, `in x out x k x k` for a transposed one), so
//! checkpoints read the same in both.
//!
//! Speed and determinism: a batch is cut into groups of [`GROUP`] images whose columns sit
//! side by side, so each product is wide enough for gemm's tiles and its operands stay in
//! cache; the groups are divided between [`LANES`] fixed lanes, run side by side with
//! `rayon::join`, each with its own [`Scratch`]. A weight gradient is each lane's sum over
//! its groups, in order, then the lanes' sums in lane order: the cut never depends on the
//! thread count, so neither do the results. Outputs and input gradients, where no image's
//! result depends on another's, are cut into even halves instead (25 images: 13 and 12,
//! where whole groups give 15 and 10), so the lanes finish together (`backward_shares`).

use std::ops::Range;

use crate::kernels::{matmul, matmul_accumulate, Split, View};

/// Images per group: one product's columns are `GROUP` images' output positions.
pub const GROUP: usize = 5;
/// Lanes the groups of a batch are divided between (the machine this was built for has two
/// cores; more lanes than cores only costs scratch memory).
pub const LANES: usize = 2;

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
    pub fn patch(&self, channels: usize) -> usize {
        channels * self.kernel * self.kernel
    }

    pub fn weight_len(&self) -> usize {
        self.out_ch * self.in_ch * self.kernel * self.kernel
    }
}

/// The largest stride [`Patches`] serves: a padded row is split into at most this many
/// column phases (DCGAN's layers use 2).
const MAX_STRIDE: usize = 8;

/// The geometry of one convolution's im2col. Each channel plane is zero-padded by `p` on
/// every side and split by column phase: padded row `y`'s columns `f, f + s, f + 2s, ...`
/// are stored side by side (`phase` floats from `(y * s + f) * phase`). Then every run of
/// `ow` column entries a kernel position `(ki, kj)` and an output row `oy` need is one
/// contiguous slice (phase `kj % s` of row `oy * s + ki`, from `kj / s`), so the column
/// loops copy and add whole runs instead of gathering single pixels.
///
/// Everything that needs a division is worked out once, in [`Patches::new`]: the column
/// loops run once per channel and kernel position, and a division there cost more than
/// the copying it steered (a third of a layer's time).
struct Patches {
    kernel: usize,
    stride: usize,
    padding: usize,
    /// The input (the convolution's: a transposed layer's output) and output sides.
    input: (usize, usize),
    output: (usize, usize),
    /// Floats per column phase of a padded row, and per padded row (all its phases).
    phase: usize,
    row: usize,
    /// For each column phase that holds input pixels: where its first interior entry sits
    /// in the row's phased copy, the input column it holds, and how many interior entries
    /// the phase has (input columns `x, x + s, ...`). The first `phases` are used.
    interior: [(usize, usize, usize); MAX_STRIDE],
    phases: usize,
}

impl Patches {
    fn new(shape: &ConvShape, input: (usize, usize), output: (usize, usize)) -> Patches {
        let (s, p, w) = (shape.stride, shape.padding, input.1);
        assert!(
            (1..=MAX_STRIDE).contains(&s),
            "convolution stride {s} is outside 1..={MAX_STRIDE}"
        );
        let phase = (w + 2 * p).div_ceil(s);
        let mut interior = [(0, 0, 0); MAX_STRIDE];
        let mut phases = 0;
        for f in 0..s {
            // The first j with f + s * j >= p, and its input column.
            let j = p.saturating_sub(f).div_ceil(s);
            let x = f + s * j - p;
            if x < w {
                interior[phases] = (f * phase + j, x, (w - x).div_ceil(s));
                phases += 1;
            }
        }
        Patches {
            kernel: shape.kernel,
            stride: s,
            padding: p,
            input,
            output,
            phase,
            row: s * phase,
            interior,
            phases,
        }
    }

    fn phased_len(&self) -> usize {
        (self.input.0 + 2 * self.padding) * self.row
    }

    /// Calls `run(start)` for each kernel position `(ki, kj)`, in the order of the im2col
    /// rows, with the start, in the phased plane, of the run it reads for output row 0;
    /// each next output row's run starts `stride * row` further on.
    #[inline(always)]
    fn each_kernel_run(&self, mut run: impl FnMut(usize)) {
        for ki in 0..self.kernel {
            // kj % s and kj / s, counted rather than divided.
            let (mut phase, mut skip) = (0, 0);
            for _kj in 0..self.kernel {
                run(ki * self.row + phase * self.phase + skip);
                phase += 1;
                if phase == self.stride {
                    phase = 0;
                    skip += 1;
                }
            }
        }
    }

    /// Copies one channel plane into the interior of `phased` (whose border stays 0).
    fn pad(&self, plane: &[f32], phased: &mut [f32]) {
        let w = self.input.1;
        for &(at, x, n) in &self.interior[..self.phases] {
            for (y, line) in plane.chunks_exact(w).take(self.input.0).enumerate() {
                let to = &mut phased[(y + self.padding) * self.row + at..][..n];
                gather_strided(to, &line[x..], self.stride);
            }
        }
    }

    /// The columns of one `channels x h x w` image: row `(c, ki, kj)` (`ld` apart in
    /// `cols`), column `(oy, ox)` holds the input pixel under kernel position `(ki, kj)` at
    /// that output position, 0 in the padding. `phased` is scratch.
    fn im2col(
        &self,
        channels: usize,
        image: &[f32],
        cols: &mut [f32],
        ld: usize,
        phased: &mut [f32],
    ) {
        let (h, w) = self.input;
        let (oh, ow) = self.output;
        let step = self.stride * self.row;
        let phased = &mut phased[..self.phased_len()];
        phased.fill(0.0);
        let mut r = 0;
        for plane in image.chunks_exact(h * w).take(channels) {
            self.pad(plane, phased);
            let phased = &*phased;
            self.each_kernel_run(|start| {
                let row = &mut cols[r * ld..r * ld + oh * ow];
                for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                    let from = start + oy * step;
                    each_of_run(out, &phased[from..from + ow], |o, v| *o = v);
                }
                r += 1;
            });
        }
    }

    /// The columns of `n` images side by side, as one product wants them: image `j`'s in
    /// columns `j * positions..` of `cols` (`positions` the output's pixels), the images
    /// `channels x h x w` each, one after another in `images`.
    fn im2col_group(
        &self,
        channels: usize,
        images: &[f32],
        n: usize,
        cols: &mut [f32],
        phased: &mut [f32],
    ) {
        let positions = self.output.0 * self.output.1;
        let per_image = channels * self.input.0 * self.input.1;
        for (j, image) in images.chunks_exact(per_image).take(n).enumerate() {
            self.im2col(
                channels,
                image,
                &mut cols[j * positions..],
                n * positions,
                phased,
            );
        }
    }

    /// The adjoint of [`Patches::im2col`]: adds each column entry back onto the pixel it
    /// came from (each pixel's entries in the order of the kernel positions, then onto the
    /// image).
    fn col2im(
        &self,
        channels: usize,
        cols: &[f32],
        ld: usize,
        image: &mut [f32],
        phased: &mut [f32],
    ) {
        let (h, w) = self.input;
        let (oh, ow) = self.output;
        let step = self.stride * self.row;
        let phased = &mut phased[..self.phased_len()];
        let mut r = 0;
        for plane in image.chunks_exact_mut(h * w).take(channels) {
            phased.fill(0.0);
            self.each_kernel_run(|start| {
                let row = &cols[r * ld..r * ld + oh * ow];
                for (oy, from) in row.chunks_exact(ow).enumerate() {
                    let to = start + oy * step;
                    each_of_run(&mut phased[to..to + ow], from, |o, v| *o += v);
                }
                r += 1;
            });
            // Each pixel lies in one phase of one row, so it gets exactly one sum.
            for &(at, x, n) in &self.interior[..self.phases] {
                for (y, line) in plane.chunks_exact_mut(w).enumerate() {
                    let from = &phased[(y + self.padding) * self.row + at..][..n];
                    add_strided(&mut line[x..], from, self.stride);
                }
            }
        }
    }
}

/// `to[i] = from[i * stride]`; stride 2 (DCGAN's) as pairs, which compile to shuffles
/// rather than a loop that counts to the stride.
#[inline(always)]
fn gather_strided(to: &mut [f32], from: &[f32], stride: usize) {
    if stride == 2 {
        for (t, pair) in to.iter_mut().zip(from.chunks(2)) {
            *t = pair[0];
        }
    } else {
        for (t, &v) in to.iter_mut().zip(from.iter().step_by(stride)) {
            *t = v;
        }
    }
}

/// `to[i * stride] += from[i]`, the adjoint of [`gather_strided`].
#[inline(always)]
fn add_strided(to: &mut [f32], from: &[f32], stride: usize) {
    if stride == 2 {
        for (pair, &v) in to.chunks_mut(2).zip(from) {
            pair[0] += v;
        }
    } else {
        for (t, &v) in to.iter_mut().step_by(stride).zip(from) {
            *t += v;
        }
    }
}

/// `op(to[i], from[i])` along one run of an im2col row (a copy) or col2im row (a sum). The
/// runs of DCGAN's layers (7, 14 or 28 wide) get fixed-width loops the compiler unrolls
/// into a few vector moves (a loop of unknown length becomes a `memcpy` call or a scalar
/// tail, which cost more than seven floats' worth of work).
#[inline(always)]
fn each_of_run(to: &mut [f32], from: &[f32], op: impl Fn(&mut f32, f32)) {
    #[inline(always)]
    fn fixed<const N: usize>(to: &mut [f32], from: &[f32], op: impl Fn(&mut f32, f32)) {
        let (to, from): (&mut [f32; N], &[f32; N]) =
            (to.try_into().unwrap(), from.try_into().unwrap());
        for (t, &f) in to.iter_mut().zip(from) {
            op(t, f);
        }
    }
    match to.len() {
        7 => fixed::<7>(to, from, op),
        14 => fixed::<14>(to, from, op),
        28 => fixed::<28>(to, from, op),
        _ => {
            for (t, &f) in to.iter_mut().zip(from) {
                op(t, f);
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

impl Sides {
    fn in_pixels(&self) -> usize {
        self.input.0 * self.input.1
    }

    fn out_pixels(&self) -> usize {
        self.output.0 * self.output.1
    }
}

/// One lane's working memory: a group's im2col columns, a group's channel-major copy of an
/// image buffer, and the lane's partial weight gradient.
#[derive(Debug, Default, Clone)]
struct Lane {
    cols: Vec<f32>,
    staging: Vec<f32>,
    dw: Vec<f32>,
    /// One zero-padded channel plane, split by column phase ([`Patches`]).
    phased: Vec<f32>,
}

/// The layers' working memory, one set of buffers per lane; sized once, before training,
/// for the largest layer it serves ([`Scratch::reserve`]), so a step allocates nothing.
#[derive(Debug, Clone)]
pub struct Scratch {
    lanes: Vec<Lane>,
    /// A layer's weight transposed, for the products `W^T * dy` (a convolution's input
    /// gradient, a transposed convolution's output): with `W` as it is stored, gemm would
    /// pack its transpose again for every group (half a MB for DCGAN's 64 <-> 128 layers).
    weight_t: Vec<f32>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            lanes: vec![Lane::default(); LANES],
            weight_t: Vec::new(),
        }
    }
}

impl Scratch {
    /// Grows the buffers to serve a layer of `shape` over `sides`.
    pub fn reserve(&mut self, shape: &ConvShape, sides: &Sides, transposed: bool) {
        let group = GROUP.min(sides.batch);
        // The convolution's input side (a transposed layer's output) and output side.
        let (conv_in, conv_out) = if transposed {
            (sides.output, sides.input)
        } else {
            (sides.input, sides.output)
        };
        let phased = Patches::new(shape, conv_in, conv_out).phased_len();
        let (cols, staging) = if transposed {
            let width = group * sides.in_pixels();
            (shape.patch(shape.out_ch) * width, shape.in_ch * width)
        } else {
            let width = group * sides.out_pixels();
            (shape.patch(shape.in_ch) * width, shape.out_ch * width)
        };
        grow(&mut self.weight_t, shape.weight_len());
        for lane in &mut self.lanes {
            grow(&mut lane.cols, cols);
            grow(&mut lane.staging, staging);
            grow(&mut lane.dw, shape.weight_len());
            grow(&mut lane.phased, phased);
        }
    }

    /// Bytes held (for memory estimates).
    pub fn bytes(&self) -> usize {
        let floats: usize = self
            .lanes
            .iter()
            .map(|l| l.cols.len() + l.staging.len() + l.dw.len() + l.phased.len())
            .sum::<usize>()
            + self.weight_t.len();
        floats * std::mem::size_of::<f32>()
    }
}

/// `w` (`rows x cols`, row-major) transposed into the front of `out`, which it returns.
fn transposed<'a>(w: &[f32], rows: usize, cols: usize, out: &'a mut [f32]) -> &'a [f32] {
    let out = &mut out[..rows * cols];
    transpose::transpose(&w[..rows * cols], out, cols, rows);
    out
}

fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// The images whose weight gradient each lane sums: whole groups, the first lane taking the
/// odd one. This cut fixes the gradient's summation order, so it must never change.
fn lane_images(batch: usize) -> [Range<usize>; LANES] {
    let per_lane = batch.div_ceil(GROUP).div_ceil(LANES) * GROUP;
    std::array::from_fn(|l| (l * per_lane).min(batch)..((l + 1) * per_lane).min(batch))
}

/// The images each lane computes outputs or input gradients for when there is no weight
/// gradient: half the batch each. An image's result is the same whichever lane and group
/// computes it (gemm blocks a product's depth by the depth alone unless both its rows and
/// its columns are 64 or fewer, which no group of DCGAN's layers is), so this cut can even
/// out the lanes where whole groups cannot (25 images: 13 and 12, not 15 and 10).
fn even_lanes(batch: usize) -> [Range<usize>; LANES] {
    let half = batch.div_ceil(LANES);
    std::array::from_fn(|l| (l * half).min(batch)..((l + 1) * half).min(batch))
}

/// One lane's share of a backward pass: the images of its weight-gradient sum and those
/// of its input gradients, each empty when that gradient is not wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Share {
    grads: Range<usize>,
    dx: Range<usize>,
}

impl Share {
    /// Whether the group of `n` images from `first` is in the weight-gradient share and in
    /// the input-gradient share.
    fn covers(&self, first: usize, n: usize) -> (bool, bool) {
        let within = |r: &Range<usize>| r.start <= first && first + n <= r.end;
        (within(&self.grads), within(&self.dx))
    }

    /// All the images the lane touches (the two ranges overlap or meet).
    fn images(&self) -> Range<usize> {
        match (self.grads.is_empty(), self.dx.is_empty()) {
            (true, _) => self.dx.clone(),
            (_, true) => self.grads.clone(),
            _ => self.grads.start.min(self.dx.start)..self.grads.end.max(self.dx.end),
        }
    }
}

/// The lanes' shares of a backward pass. The weight gradient keeps [`lane_images`]; when
/// that gives the first lane one group more than the second, the second computes that
/// group's input gradient, so each lane does about as many products as the other.
fn backward_shares(batch: usize, grads: bool, dx: bool) -> [Share; LANES] {
    let none = || 0..0;
    if !grads {
        return even_lanes(batch).map(|dx| Share { grads: none(), dx });
    }
    let [first, second] = lane_images(batch);
    if !dx {
        return [first, second].map(|grads| Share { grads, dx: none() });
    }
    // Where the first lane's last group starts (its groups are whole but for a batch of
    // fewer than `GROUP` images).
    let last = first.end.saturating_sub(1) / GROUP * GROUP;
    let moved = if batch.div_ceil(GROUP) % 2 == 1 {
        last
    } else {
        first.end
    };
    [
        Share {
            grads: first.clone(),
            dx: first.start..moved,
        },
        Share {
            grads: second.clone(),
            dx: moved..second.end,
        },
    ]
}

/// Runs `work(lane index, lane, out)` for both lanes side by side, where `out` is split at
/// image `cut` (`per_image` values each; both parts empty if `out` is).
fn in_lanes<F>(cut: usize, per_image: usize, out: &mut [f32], lanes: &mut [Lane], work: F)
where
    F: Fn(usize, &mut Lane, &mut [f32]) + Sync,
{
    let at = if out.is_empty() { 0 } else { cut * per_image };
    let (out_first, out_second) = out.split_at_mut(at);
    let (lane_first, lane_second) = lanes.split_at_mut(1);
    rayon::join(
        || work(0, &mut lane_first[0], out_first),
        || work(1, &mut lane_second[0], out_second),
    );
}

/// The groups of a lane's images: `(first image, images)`.
fn groups(images: Range<usize>) -> impl Iterator<Item = (usize, usize)> {
    images
        .clone()
        .step_by(GROUP)
        .map(move |first| (first, GROUP.min(images.end - first)))
}

/// Copies `n` images of `channels x pixels` into `staging` as one `channels x (n * pixels)`
/// matrix (image `j`'s pixels in columns `j * pixels..`).
fn gather(images: &[f32], channels: usize, pixels: usize, n: usize, staging: &mut [f32]) {
    let width = n * pixels;
    for (j, image) in images.chunks_exact(channels * pixels).take(n).enumerate() {
        for (c, plane) in image.chunks_exact(pixels).enumerate() {
            staging[c * width + j * pixels..][..pixels].copy_from_slice(plane);
        }
    }
}

/// The inverse of [`gather`], adding each channel's bias if given.
fn scatter(
    staging: &[f32],
    channels: usize,
    pixels: usize,
    images: &mut [f32],
    bias: Option<&[f32]>,
) {
    let n = images.len() / (channels * pixels);
    let width = n * pixels;
    for (j, image) in images.chunks_exact_mut(channels * pixels).enumerate() {
        for (c, plane) in image.chunks_exact_mut(pixels).enumerate() {
            let from = &staging[c * width + j * pixels..][..pixels];
            match bias {
                Some(b) => {
                    for (o, &v) in plane.iter_mut().zip(from) {
                        *o = v + b[c];
                    }
                }
                None => plane.copy_from_slice(from),
            }
        }
    }
}

/// Where a layer's parameter gradients go: added to `weight` and, if the layer has one, to
/// `bias`.
pub struct Grads<'a> {
    pub weight: &'a mut [f32],
    pub bias: Option<&'a mut [f32]>,
}

/// Adds the lanes' partial weight gradients to `grads`, in lane order, and each channel's
/// sum of `dy` to the bias gradient, image by image.
fn finish_grads(grads: Grads, lanes: &[Lane], dy: &[f32], channels: usize, batch: usize) {
    for (i, g) in grads.weight.iter_mut().enumerate() {
        *g += lanes[0].dw[i] + lanes[1].dw[i];
    }
    if let Some(db) = grads.bias {
        let per_image = dy.len() / batch.max(1);
        for image in dy.chunks_exact(per_image).take(batch) {
            let plane = per_image / channels;
            for (g, pixels) in db.iter_mut().zip(image.chunks_exact(plane)) {
                *g += pixels.iter().sum::<f32>();
            }
        }
    }
}

/// Convolution forward: `y = W * x (+ b)` for each image (`x`: `N x in x H x W`, `y`:
/// `N x out x OH x OW`, `w`: `out x in x k x k`).
pub fn conv_forward(
    shape: &ConvShape,
    sides: &Sides,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut Scratch,
) {
    let (p_in, p_out) = (sides.in_pixels(), sides.out_pixels());
    let (pin, pout) = (shape.in_ch * p_in, shape.out_ch * p_out);
    let patch = shape.patch(shape.in_ch);
    let y = &mut y[..sides.batch * pout];
    let lanes = even_lanes(sides.batch);
    in_lanes(lanes[1].start, pout, y, &mut scratch.lanes, |l, lane, y| {
        let images = lanes[l].clone();
        let start = images.start;
        let patches = Patches::new(shape, sides.input, sides.output);
        for (first, n) in groups(images) {
            let width = n * p_out;
            let cols = &mut lane.cols[..patch * width];
            patches.im2col_group(shape.in_ch, &x[first * pin..], n, cols, &mut lane.phased);
            let staging = &mut lane.staging[..shape.out_ch * width];
            matmul(
                staging,
                View::rows(w, shape.out_ch, patch),
                View::rows(cols, patch, width),
                Split::None,
            );
            let out = &mut y[(first - start) * pout..][..n * pout];
            scatter(staging, shape.out_ch, p_out, out, b);
        }
    });
}

/// Convolution backward from `dy`: adds the weight (and bias) gradients to `grads` if given,
/// and writes the input gradient into `dx` if given.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward(
    shape: &ConvShape,
    sides: &Sides,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    grads: Option<Grads>,
    dx: Option<&mut [f32]>,
    scratch: &mut Scratch,
) {
    let (p_in, p_out) = (sides.in_pixels(), sides.out_pixels());
    let (pin, pout) = (shape.in_ch * p_in, shape.out_ch * p_out);
    let patch = shape.patch(shape.in_ch);
    let want_grads = grads.is_some();
    let want_dx = dx.is_some();
    let mut none: [f32; 0] = [];
    let dx = match dx {
        Some(dx) => &mut dx[..sides.batch * pin],
        None => &mut none[..],
    };
    let shares = backward_shares(sides.batch, want_grads, want_dx);
    // W^T (patch x out) for the input gradient.
    let w_t = match want_dx {
        true => transposed(w, shape.out_ch, patch, &mut scratch.weight_t),
        false => &[],
    };
    in_lanes(
        shares[1].dx.start,
        pin,
        dx,
        &mut scratch.lanes,
        |l, lane, dx| {
            let share = &shares[l];
            let start = share.dx.start;
            let patches = Patches::new(shape, sides.input, sides.output);
            let dw = &mut lane.dw[..shape.weight_len()];
            if want_grads {
                dw.fill(0.0);
            }
            for (first, n) in groups(share.images()) {
                let (grads_here, dx_here) = share.covers(first, n);
                let width = n * p_out;
                let staging = &mut lane.staging[..shape.out_ch * width];
                gather(&dy[first * pout..], shape.out_ch, p_out, n, staging);
                let cols = &mut lane.cols[..patch * width];
                if grads_here {
                    let images = &x[first * pin..];
                    patches.im2col_group(shape.in_ch, images, n, cols, &mut lane.phased);
                    // dW += dy_g (out x width) * cols_g^T (width x patch)
                    matmul_accumulate(
                        dw,
                        View::rows(staging, shape.out_ch, width),
                        View::transposed(cols, patch, width),
                    );
                }
                if dx_here {
                    // dcols = W^T (patch x out) * dy_g (out x width), then back onto the pixels.
                    matmul(
                        cols,
                        View::rows(w_t, patch, shape.out_ch),
                        View::rows(staging, shape.out_ch, width),
                        Split::None,
                    );
                    for j in 0..n {
                        let out = &mut dx[(first - start + j) * pin..][..pin];
                        out.fill(0.0);
                        patches.col2im(
                            shape.in_ch,
                            &cols[j * p_out..],
                            width,
                            out,
                            &mut lane.phased,
                        );
                    }
                }
            }
        },
    );
    if let Some(grads) = grads {
        finish_grads(
            grads,
            &scratch.lanes,
            &dy[..sides.batch * pout],
            shape.out_ch,
            sides.batch,
        );
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
    b: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut Scratch,
) {
    let (p_in, p_out) = (sides.in_pixels(), sides.out_pixels());
    let (pin, pout) = (shape.in_ch * p_in, shape.out_ch * p_out);
    let patch = shape.patch(shape.out_ch);
    let y = &mut y[..sides.batch * pout];
    let lanes = even_lanes(sides.batch);
    let w_t = transposed(w, shape.in_ch, patch, &mut scratch.weight_t);
    in_lanes(lanes[1].start, pout, y, &mut scratch.lanes, |l, lane, y| {
        let images = lanes[l].clone();
        let start = images.start;
        let patches = Patches::new(shape, sides.output, sides.input);
        for (first, n) in groups(images) {
            let width = n * p_in;
            let staging = &mut lane.staging[..shape.in_ch * width];
            gather(&x[first * pin..], shape.in_ch, p_in, n, staging);
            // cols = W^T (out*k*k x in) * x_g (in x width), then onto the output's pixels.
            let cols = &mut lane.cols[..patch * width];
            matmul(
                cols,
                View::rows(w_t, patch, shape.in_ch),
                View::rows(staging, shape.in_ch, width),
                Split::None,
            );
            for j in 0..n {
                let out = &mut y[(first - start + j) * pout..][..pout];
                match b {
                    Some(b) => {
                        for (plane, &b) in out.chunks_exact_mut(p_out).zip(b) {
                            plane.fill(b);
                        }
                    }
                    None => out.fill(0.0),
                }
                patches.col2im(
                    shape.out_ch,
                    &cols[j * p_in..],
                    width,
                    out,
                    &mut lane.phased,
                );
            }
        }
    });
}

/// Transposed convolution backward from `dy`: adds the weight (and bias) gradients to
/// `grads` if given, and writes the input gradient into `dx` if given.
#[allow(clippy::too_many_arguments)]
pub fn conv_transposed_backward(
    shape: &ConvShape,
    sides: &Sides,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    grads: Option<Grads>,
    dx: Option<&mut [f32]>,
    scratch: &mut Scratch,
) {
    let (p_in, p_out) = (sides.in_pixels(), sides.out_pixels());
    let (pin, pout) = (shape.in_ch * p_in, shape.out_ch * p_out);
    let patch = shape.patch(shape.out_ch);
    let want_grads = grads.is_some();
    let want_dx = dx.is_some();
    let mut none: [f32; 0] = [];
    let dx = match dx {
        Some(dx) => &mut dx[..sides.batch * pin],
        None => &mut none[..],
    };
    let shares = backward_shares(sides.batch, want_grads, want_dx);
    in_lanes(
        shares[1].dx.start,
        pin,
        dx,
        &mut scratch.lanes,
        |l, lane, dx| {
            let share = &shares[l];
            let start = share.dx.start;
            let patches = Patches::new(shape, sides.output, sides.input);
            let dw = &mut lane.dw[..shape.weight_len()];
            if want_grads {
                dw.fill(0.0);
            }
            for (first, n) in groups(share.images()) {
                let (grads_here, dx_here) = share.covers(first, n);
                let width = n * p_in;
                // The columns of dy under the matching convolution (out -> in channels, OH -> H).
                let cols = &mut lane.cols[..patch * width];
                let grads = &dy[first * pout..];
                patches.im2col_group(shape.out_ch, grads, n, cols, &mut lane.phased);
                let staging = &mut lane.staging[..shape.in_ch * width];
                if grads_here {
                    gather(&x[first * pin..], shape.in_ch, p_in, n, staging);
                    // dW += x_g (in x width) * cols^T (width x out*k*k)
                    matmul_accumulate(
                        dw,
                        View::rows(staging, shape.in_ch, width),
                        View::transposed(cols, patch, width),
                    );
                }
                if dx_here {
                    matmul(
                        staging,
                        View::rows(w, shape.in_ch, patch),
                        View::rows(cols, patch, width),
                        Split::None,
                    );
                    let out = &mut dx[(first - start) * pin..][..n * pin];
                    scatter(staging, shape.in_ch, p_in, out, None);
                }
            }
        },
    );
    if let Some(grads) = grads {
        finish_grads(
            grads,
            &scratch.lanes,
            &dy[..sides.batch * pout],
            shape.out_ch,
            sides.batch,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input pixel of channel `c` under kernel position `(ki, kj)` at output position
    /// `(oy, ox)`, or `None` in the padding: im2col by its definition.
    fn source(
        shape: &ConvShape,
        input: (usize, usize),
        (c, ki, kj): (usize, usize, usize),
        (oy, ox): (usize, usize),
    ) -> Option<usize> {
        let y = (oy * shape.stride + ki).checked_sub(shape.padding)?;
        let x = (ox * shape.stride + kj).checked_sub(shape.padding)?;
        (y < input.0 && x < input.1).then_some((c * input.0 + y) * input.1 + x)
    }

    /// im2col and col2im against their definitions, over strides, paddings, kernels and
    /// uneven sides, with columns `ld` apart and an offset, as a group's columns sit: the
    /// columns must match exactly, and col2im must add each pixel's entries in kernel order
    /// (so its sums match a plain loop bit for bit).
    #[test]
    fn im2col_and_col2im_match_their_definitions() {
        let mut cases = 0;
        for kernel in 1..=5 {
            for stride in 1..=3 {
                for padding in 0..kernel.min(3) {
                    for input in [(7, 7), (6, 9), (14, 14), (5, 3)] {
                        let shape = ConvShape {
                            in_ch: 3,
                            out_ch: 1,
                            kernel,
                            stride,
                            padding,
                        };
                        let (Some(oh), Some(ow)) =
                            (shape.conv_out(input.0), shape.conv_out(input.1))
                        else {
                            continue;
                        };
                        cases += 1;
                        let channels = shape.in_ch;
                        let pixels = input.0 * input.1;
                        let (out, offset) = (oh * ow, 5);
                        let ld = 2 * out + 3;
                        let rows = shape.patch(channels);
                        let image: Vec<f32> = (0..channels * pixels)
                            .map(|i| (i * 37 % 101) as f32 * 0.013 - 0.6)
                            .collect();
                        let patches = Patches::new(&shape, input, (oh, ow));
                        let mut phased = vec![f32::NAN; patches.phased_len()];
                        let mut cols = vec![f32::NAN; offset + rows * ld];
                        patches.im2col(channels, &image, &mut cols[offset..], ld, &mut phased);
                        let at = |r: usize, o: usize| offset + r * ld + o;
                        let each = || {
                            (0..channels).flat_map(move |c| {
                                (0..kernel * kernel).map(move |p| (c, p / kernel, p % kernel))
                            })
                        };
                        for (r, pos) in each().enumerate() {
                            for o in 0..out {
                                let want = source(&shape, input, pos, (o / ow, o % ow))
                                    .map_or(0.0, |i| image[i]);
                                assert_eq!(
                                    cols[at(r, o)].to_bits(),
                                    want.to_bits(),
                                    "im2col, {shape:?} over {input:?}: row {r}, column {o}"
                                );
                            }
                        }
                        let grads: Vec<f32> = (0..cols.len())
                            .map(|i| (i * 53 % 97) as f32 * 0.021 - 1.0)
                            .collect();
                        let mut got = image.clone();
                        patches.col2im(channels, &grads[offset..], ld, &mut got, &mut phased);
                        let mut sums = vec![0.0f32; image.len()];
                        for (r, pos) in each().enumerate() {
                            for o in 0..out {
                                if let Some(i) = source(&shape, input, pos, (o / ow, o % ow)) {
                                    sums[i] += grads[at(r, o)];
                                }
                            }
                        }
                        for (i, (g, (x, s))) in got.iter().zip(image.iter().zip(&sums)).enumerate()
                        {
                            assert_eq!(
                                g.to_bits(),
                                (x + s).to_bits(),
                                "col2im, {shape:?} over {input:?}: pixel {i}"
                            );
                        }
                    }
                }
            }
        }
        assert!(cases > 100, "only {cases} geometries fit");
    }
}
