//! `--ceiling` for a DCGAN: the step's FLOPs layer by layer and pass by pass, each layer
//! pass timed alone through the step's own layer functions (on one thread, and on the
//! bench's pool), and the floor the FMA loop's rate sets.

use gan_model::dcgan::networks::{d_sides, g_sides, stride_2, SEED_SIDE};
use gan_model::kernels::{self, Split, View};
use gan_model::layers::conv::{self, ConvShape, Grads, Scratch, Sides};
use gan_model::train::awake::with_workers_awake;
use gan_model::train::flops::{Pass, Product};
use gan_model::{DcganShape, TrainConfig};

use crate::ceiling::{arbitrary_values, time_call};

/// One layer over one batch: a dense layer's product (`rows x inputs` by a weight of
/// `outputs x inputs`), or a (transposed) convolution.
enum Layer {
    Dense {
        rows: usize,
        inputs: usize,
        outputs: usize,
    },
    Conv {
        shape: ConvShape,
        sides: Sides,
        transposed: bool,
    },
}

/// One pass of one layer as a step makes it, `count` times a step.
struct LayerPass {
    net: &'static str,
    name: &'static str,
    pass: Pass,
    count: usize,
    layer: Layer,
}

impl LayerPass {
    /// Images the pass runs on.
    fn batch(&self) -> usize {
        match &self.layer {
            Layer::Dense { rows, .. } => *rows,
            Layer::Conv { sides, .. } => sides.batch,
        }
    }

    /// A dense layer's pass as the product it is.
    fn product(&self, rows: usize, inputs: usize, outputs: usize) -> Product {
        Product {
            net: self.net,
            pass: self.pass,
            rows,
            inputs,
            outputs,
            count: 1,
        }
    }

    /// FLOPs of one call: multiply-adds times two.
    fn flops(&self) -> f64 {
        match &self.layer {
            &Layer::Dense {
                rows,
                inputs,
                outputs,
            } => self.product(rows, inputs, outputs).flops(),
            Layer::Conv {
                shape,
                sides,
                transposed,
            } => {
                // The product's columns: a convolution's output pixels, a transposed one's
                // input pixels (its im2col lives on its output side).
                let (h, w) = if *transposed {
                    sides.input
                } else {
                    sides.output
                };
                let k2 = shape.kernel * shape.kernel;
                2.0 * (shape.in_ch * shape.out_ch * k2 * h * w * sides.batch) as f64
            }
        }
    }

    /// Median seconds of one dense pass as the step makes it (`dcgan/passes.rs`: G's fc and
    /// D's dense layer, each product cut into two fixed column blocks), on arbitrary values.
    fn time_dense(&self, rows: usize, inputs: usize, outputs: usize) -> f64 {
        let weight = arbitrary_values(outputs * inputs);
        let (x, dy) = (
            arbitrary_values(rows * inputs),
            arbitrary_values(rows * outputs),
        );
        match self.pass {
            Pass::Forward => {
                let mut y = vec![0.0; rows * outputs];
                time_call(|| {
                    let (a, w) = (
                        View::rows(&x, rows, inputs),
                        View::transposed(&weight, outputs, inputs),
                    );
                    kernels::matmul(&mut y, a, w, Split::Cols(2));
                })
            }
            Pass::InputGradient => {
                let mut dx = vec![0.0; rows * inputs];
                time_call(|| {
                    let (a, w) = (
                        View::rows(&dy, rows, outputs),
                        View::rows(&weight, outputs, inputs),
                    );
                    kernels::matmul(&mut dx, a, w, Split::Cols(2));
                })
            }
            Pass::WeightGradient => {
                let mut dw = vec![0.0; outputs * inputs];
                time_call(|| {
                    let (a, xs) = (
                        View::transposed(&dy, rows, outputs),
                        View::rows(&x, rows, inputs),
                    );
                    kernels::matmul(&mut dw, a, xs, Split::Cols(2));
                })
            }
        }
    }

    /// Median seconds of one call on the calling thread's pool, through the step's own
    /// layer functions, on arbitrary values.
    fn time(&self) -> f64 {
        let (shape, sides, transposed) = match &self.layer {
            &Layer::Dense {
                rows,
                inputs,
                outputs,
            } => return self.time_dense(rows, inputs, outputs),
            Layer::Conv {
                shape,
                sides,
                transposed,
            } => (shape, sides, *transposed),
        };
        let pixels = |(h, w): (usize, usize)| h * w;
        let (x_len, y_len) = (
            sides.batch * shape.in_ch * pixels(sides.input),
            sides.batch * shape.out_ch * pixels(sides.output),
        );
        let (x, w) = (
            arbitrary_values(x_len),
            arbitrary_values(shape.weight_len()),
        );
        let dy = arbitrary_values(y_len);
        let (mut y, mut dx, mut dw) = (vec![0.0; y_len], vec![0.0; x_len], vec![0.0; w.len()]);
        let mut scratch = Scratch::default();
        scratch.reserve(shape, sides, transposed);
        type Forward =
            fn(&ConvShape, &Sides, &[f32], &[f32], Option<&[f32]>, &mut [f32], &mut Scratch);
        type Backward = fn(
            &ConvShape,
            &Sides,
            &[f32],
            &[f32],
            &[f32],
            Option<Grads>,
            Option<&mut [f32]>,
            &mut Scratch,
        );
        let (forward, backward): (Forward, Backward) = if transposed {
            (
                conv::conv_transposed_forward,
                conv::conv_transposed_backward,
            )
        } else {
            (conv::conv_forward, conv::conv_backward)
        };
        match self.pass {
            Pass::Forward => {
                time_call(|| forward(shape, sides, &x, &w, None, &mut y, &mut scratch))
            }
            // A backward pass asked for one of its two results only.
            pass => time_call(|| {
                let grads = (pass == Pass::WeightGradient).then(|| Grads {
                    weight: &mut dw,
                    bias: None,
                });
                let dx = (pass == Pass::InputGradient).then_some(&mut dx[..]);
                backward(shape, sides, &x, &w, &dy, grads, dx, &mut scratch)
            }),
        }
    }
}

/// The layer passes of one step of `cfg`'s DCGAN of `shape`, in the order the step makes
/// them: per D update, G's forward pass on `B` images, D's forward pass on `2B` and its
/// backward pass (weights, and input gradients but the first layer's); then G's update: D's
/// forward pass and its input gradients to the image on `B`, and G's backward pass.
fn step_passes(cfg: &TrainConfig, shape: &DcganShape) -> Vec<LayerPass> {
    let (b, d_steps) = (cfg.batch_size, cfg.d_steps);
    let input = cfg.model.noise_dim + cfg.model.classes;
    let ([g1, g2], [d1, d2]) = (shape.g_channels, shape.d_channels);
    let seed = SEED_SIDE * SEED_SIDE;
    let dense = |rows, inputs, outputs| Layer::Dense {
        rows,
        inputs,
        outputs,
    };
    let conv = |shape, sides, transposed| Layer::Conv {
        shape,
        sides,
        transposed,
    };
    let g_fc = |n| dense(n, input, g1 * seed);
    let g_up1 = |n| conv(stride_2(g1, g2), g_sides(n).0, true);
    let g_up2 = |n| conv(stride_2(g2, 1), g_sides(n).1, true);
    let d_conv1 = |n| conv(stride_2(1, d1), d_sides(n).0, false);
    let d_conv2 = |n| conv(stride_2(d1, d2), d_sides(n).1, false);
    let d_dense = |n| dense(n, d2 * seed, shape.d_dense);
    let has_dense = shape.d_dense > 0;
    let pass = |net, name, pass, count, layer| LayerPass {
        net,
        name,
        pass,
        count,
        layer,
    };
    use Pass::{Forward, InputGradient, WeightGradient};
    let mut out = vec![
        pass("G", "fc", Forward, d_steps, g_fc(b)),
        pass("G", "up1", Forward, d_steps, g_up1(b)),
        pass("G", "up2", Forward, d_steps, g_up2(b)),
        pass("D", "conv1", Forward, d_steps, d_conv1(2 * b)),
        pass("D", "conv2", Forward, d_steps, d_conv2(2 * b)),
    ];
    if has_dense {
        for p in [Forward, WeightGradient, InputGradient] {
            out.push(pass("D", "dense", p, d_steps, d_dense(2 * b)));
        }
    }
    out.extend([
        pass("D", "conv2", WeightGradient, d_steps, d_conv2(2 * b)),
        pass("D", "conv2", InputGradient, d_steps, d_conv2(2 * b)),
        pass("D", "conv1", WeightGradient, d_steps, d_conv1(2 * b)),
        // G's update.
        pass("D", "conv1", Forward, 1, d_conv1(b)),
        pass("D", "conv2", Forward, 1, d_conv2(b)),
    ]);
    if has_dense {
        for p in [Forward, InputGradient] {
            out.push(pass("D", "dense", p, 1, d_dense(b)));
        }
    }
    out.extend([
        pass("D", "conv2", InputGradient, 1, d_conv2(b)),
        pass("D", "conv1", InputGradient, 1, d_conv1(b)),
        pass("G", "up2", WeightGradient, 1, g_up2(b)),
        pass("G", "up2", InputGradient, 1, g_up2(b)),
        pass("G", "up1", WeightGradient, 1, g_up1(b)),
        pass("G", "up1", InputGradient, 1, g_up1(b)),
        pass("G", "fc", WeightGradient, 1, g_fc(b)),
    ]);
    out
}

/// Prints the step's layer passes (FLOPs, and each pass's median time and GFLOP/s on one
/// thread and on the bench's pool `many`, the latter kept awake as in a step), their sums,
/// and the floor: the step's FLOPs at `ceiling` GFLOP/s, the FMA loop's rate on the bench's
/// threads (when it was measured).
pub fn print_layer_passes(
    cfg: &TrainConfig,
    shape: &DcganShape,
    many: &rayon::ThreadPool,
    step_flops: f64,
    ceiling: Option<f64>,
) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let threads = many.current_num_threads();
    let passes = step_passes(cfg, shape);
    println!(
        "the step's layer passes, each timed alone on 1 thread and on {threads} (hot caches; \
         MFLOP and ms per call):"
    );
    let t = format!("{threads} thr");
    println!(
        "  {:<3} {:<6} {:<16} {:>6} {:>6} {:>9} {:>9} {:>8} {:>9} {:>8}",
        "net",
        "layer",
        "pass",
        "images",
        "a step",
        "MFLOP",
        "ms 1 thr",
        "GFLOP/s",
        format!("ms {t}"),
        "GFLOP/s"
    );
    let (mut flops, mut secs, mut secs_many) = (0.0, 0.0, 0.0);
    for p in &passes {
        let f = p.flops();
        let s = one.install(|| p.time());
        // As the step runs them: with the pool's other threads kept awake.
        let s_many = many.install(|| with_workers_awake(|| p.time()));
        println!(
            "  {:<3} {:<6} {:<16} {:>6} {:>6} {:>9.1} {:>9.3} {:>8.1} {:>9.3} {:>8.1}",
            p.net,
            p.name,
            p.pass.name(),
            p.batch(),
            p.count,
            f / 1e6,
            s * 1e3,
            f / s / 1e9,
            s_many * 1e3,
            f / s_many / 1e9
        );
        flops += f * p.count as f64;
        secs += s * p.count as f64;
        secs_many += s_many * p.count as f64;
    }
    println!(
        "  all: {:.1} MFLOP in {:.3} ms on 1 thread ({:.1} GFLOP/s), {:.3} ms on {threads} \
         ({:.1} GFLOP/s); the step's other {:.1} MFLOP are the logit's and projection's dot \
         products",
        flops / 1e6,
        secs * 1e3,
        flops / secs / 1e9,
        secs_many * 1e3,
        flops / secs_many / 1e9,
        (step_flops - flops) / 1e6
    );
    if let Some(rate) = ceiling {
        println!(
            "  floor: the step's {:.1} MFLOP at the FMA loop's {rate:.1} GFLOP/s take {:.3} ms",
            step_flops / 1e6,
            step_flops / (rate * 1e9) * 1e3
        );
    }
}
