//! The DCGAN's two costly layers alone, at `dcgan-plain.yaml`'s batch of 25 on one thread: D's
//! second convolution (64 -> 128 channels, 14 -> 7 pixels) forward, its weight gradient and
//! its input gradient, and G's first transposed convolution (128 -> 64 channels, 7 -> 14
//! pixels) forward and backward. Together they are most of the DCGAN step's arithmetic;
//! changes to im2col, col2im and the grouping show here before they drown in a whole step.
//!
//! `cargo bench -p gan-model --bench conv_layers` (compare two builds in one sitting: these
//! machines drift). The whole step: `cargo xtask bench --spec experiments/dcgan-plain.yaml`.

use criterion::{criterion_group, criterion_main, Criterion};
use gan_model::layers::conv::{self, ConvShape, Grads, Scratch, Sides};

const BATCH: usize = 25;

fn values(len: usize, salt: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + salt * 104729) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn layers(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let d2 = ConvShape {
        in_ch: 64,
        out_ch: 128,
        kernel: 4,
        stride: 2,
        padding: 1,
    };
    let d_sides = Sides {
        batch: BATCH,
        input: (14, 14),
        output: (7, 7),
    };
    let g1 = ConvShape {
        in_ch: 128,
        out_ch: 64,
        ..d2
    };
    let g_sides = Sides {
        batch: BATCH,
        input: (7, 7),
        output: (14, 14),
    };
    let mut scratch = Scratch::default();
    scratch.reserve(&d2, &d_sides, false);
    scratch.reserve(&g1, &g_sides, true);
    // Both layers map between 64 x 14 x 14 and 128 x 7 x 7 images, with weights of the same
    // size (PyTorch's layouts, `out x in` and `in x out`, both 128 x 64 x 4 x 4).
    let wide = values(BATCH * 64 * 196, 1);
    let narrow = values(BATCH * 128 * 49, 2);
    let w: Vec<f32> = values(d2.weight_len(), 3)
        .iter()
        .map(|v| v * 0.05)
        .collect();
    let mut out_narrow = vec![0.0; narrow.len()];
    let mut out_wide = vec![0.0; wide.len()];
    let mut dw = vec![0.0; w.len()];
    let mut group = c.benchmark_group("conv_layers");
    group.sample_size(30);
    {
        group.bench_function("d_conv2/forward", |b| {
            b.iter(|| {
                pool.install(|| {
                    conv::conv_forward(
                        &d2,
                        &d_sides,
                        &wide,
                        &w,
                        None,
                        &mut out_narrow,
                        &mut scratch,
                    )
                })
            })
        });
        group.bench_function("d_conv2/weight_gradient", |b| {
            b.iter(|| {
                pool.install(|| {
                    let grads = Grads {
                        weight: &mut dw,
                        bias: None,
                    };
                    conv::conv_backward(
                        &d2,
                        &d_sides,
                        &wide,
                        &w,
                        &narrow,
                        Some(grads),
                        None,
                        &mut scratch,
                    )
                })
            })
        });
        group.bench_function("d_conv2/input_gradient", |b| {
            b.iter(|| {
                pool.install(|| {
                    conv::conv_backward(
                        &d2,
                        &d_sides,
                        &wide,
                        &w,
                        &narrow,
                        None,
                        Some(&mut out_wide),
                        &mut scratch,
                    )
                })
            })
        });
        group.bench_function("g_up1/forward", |b| {
            b.iter(|| {
                pool.install(|| {
                    conv::conv_transposed_forward(
                        &g1,
                        &g_sides,
                        &narrow,
                        &w,
                        None,
                        &mut out_wide,
                        &mut scratch,
                    )
                })
            })
        });
        group.bench_function("g_up1/backward", |b| {
            b.iter(|| {
                pool.install(|| {
                    let grads = Grads {
                        weight: &mut dw,
                        bias: None,
                    };
                    conv::conv_transposed_backward(
                        &g1,
                        &g_sides,
                        &narrow,
                        &w,
                        &wide,
                        Some(grads),
                        Some(&mut out_narrow),
                        &mut scratch,
                    )
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layers);
criterion_main!(benches);
