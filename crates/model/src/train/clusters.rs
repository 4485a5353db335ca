//! k-means on the training images, for self-conditioning (Liu et al. 2020, "Diverse image
//! generation via self-conditioned GANs"): a conditional GAN trained on cluster ids instead
//! of labels, asked for each cluster as often as the data has it, so its mix of shapes
//! follows the data's without using a label (docs/notebook/sweeps.md, "An unconditional DCGAN
//! conditioned on its own clusters").
//!
//! Deterministic at any thread count: distances are products on fixed blocks of images
//! (each block's arithmetic does not depend on who runs it), ties go to the lower id, and
//! sums run in image order, in f64. The images stay bytes; each block is widened to f32
//! (pixel / 255) only while its distances are computed, so all of MNIST costs no more than
//! its bytes.

use std::ops::ControlFlow;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::kernels::{matmul, Split, View};

/// Images per block of the distance products.
const BLOCK: usize = 1024;

/// Each image's cluster and each cluster's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clusters {
    pub ids: Vec<u8>,
    pub sizes: Vec<u32>,
}

/// Lloyd's k-means over `pixels` (images of `dim` bytes, compared as pixel / 255), for
/// `iterations` rounds from k-means++ seeds drawn by `rng` (Arthur and Vassilvitskii 2007:
/// each next seed an image drawn with probability proportional to its squared distance from
/// the nearest seed so far, so two seeds rarely start in one cluster). A cluster that loses
/// all its images keeps its centre. `on_round` hears of each finished round (for a progress
/// bar) and may stop the work there (Ctrl-C): then there are no clusters, `None`.
pub fn kmeans(
    pixels: &[u8],
    dim: usize,
    k: usize,
    iterations: usize,
    rng: &mut ChaCha8Rng,
    on_round: &mut dyn FnMut(usize) -> ControlFlow<()>,
) -> Option<Clusters> {
    let n = pixels.len() / dim;
    assert!(
        (1..=256).contains(&k) && k <= n,
        "k-means needs 1 to 256 clusters, at most one per image (k = {k}, {n} images)"
    );
    let mut centres = seeds(pixels, dim, k, rng);
    let mut ids = vec![0u8; n];
    for round in 0..iterations {
        assign(pixels, dim, &centres, &mut ids);
        let mut sums = vec![0.0f64; k * dim];
        let mut counts = vec![0u32; k];
        for (image, &c) in pixels.chunks_exact(dim).zip(&ids) {
            counts[c as usize] += 1;
            for (s, &v) in sums[c as usize * dim..][..dim].iter_mut().zip(image) {
                *s += v as f64;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                let centre = &mut centres[c * dim..(c + 1) * dim];
                for (v, &s) in centre.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                    *v = (s / (255.0 * counts[c] as f64)) as f32;
                }
            }
        }
        if on_round(round + 1).is_break() {
            return None;
        }
    }
    assign(pixels, dim, &centres, &mut ids);
    let mut sizes = vec![0u32; k];
    for &c in &ids {
        sizes[c as usize] += 1;
    }
    Some(Clusters { ids, sizes })
}

/// `block`'s images as f32 rows, pixel / 255.
fn widen(block: &[u8]) -> Vec<f32> {
    block.iter().map(|&p| p as f32 * (1.0 / 255.0)).collect()
}

/// k-means++ seeding: `k` images as the first centres.
fn seeds(pixels: &[u8], dim: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = pixels.len() / dim;
    let mut centres = Vec::with_capacity(k * dim);
    let mut nearest = vec![f64::INFINITY; n];
    let mut pick = rng.gen_range(0..n);
    for _ in 0..k {
        let seed = widen(&pixels[pick * dim..(pick + 1) * dim]);
        nearest
            .par_chunks_mut(BLOCK)
            .zip(pixels.par_chunks(BLOCK * dim))
            .for_each(|(nearest, block)| {
                for (d, image) in nearest.iter_mut().zip(block.chunks_exact(dim)) {
                    let e: f32 = image
                        .iter()
                        .zip(&seed)
                        .map(|(&a, b)| {
                            let diff = a as f32 * (1.0 / 255.0) - b;
                            diff * diff
                        })
                        .sum();
                    *d = d.min(e as f64);
                }
            });
        centres.extend_from_slice(&seed);
        let total: f64 = nearest.iter().sum();
        let mut u = rng.gen::<f64>() * total;
        pick = nearest
            .iter()
            .position(|&d| {
                u -= d;
                u < 0.0
            })
            // Rounding can leave u just above 0 after the last image: take the last one
            // that can still be drawn.
            .unwrap_or_else(|| nearest.iter().rposition(|&d| d > 0.0).unwrap_or(0));
    }
    centres
}

/// Each image's nearest centre: `|c|^2 - 2 x.c` is smallest (`|x|^2` is the same for all).
fn assign(pixels: &[u8], dim: usize, centres: &[f32], ids: &mut [u8]) {
    let k = centres.len() / dim;
    let norms: Vec<f32> = centres
        .chunks_exact(dim)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    ids.par_chunks_mut(BLOCK)
        .zip(pixels.par_chunks(BLOCK * dim))
        .for_each(|(ids, block)| {
            let rows = ids.len();
            let block = widen(block);
            let mut dots = vec![0.0f32; rows * k];
            matmul(
                &mut dots,
                View::rows(&block, rows, dim),
                View::transposed(centres, k, dim),
                Split::None,
            );
            for (id, row) in ids.iter_mut().zip(dots.chunks_exact(k)) {
                let mut best = (f32::INFINITY, 0);
                for (c, (&dot, &norm)) in row.iter().zip(&norms).enumerate() {
                    let d = norm - 2.0 * dot;
                    if d < best.0 {
                        best = (d, c);
                    }
                }
                *id = best.1 as u8;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Points around `k` well separated centres, in a shuffled order, as bytes.
    fn blobs(k: usize, per: usize, dim: usize) -> (Vec<u8>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut order: Vec<usize> = (0..k * per).map(|i| i % k).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        let images = order
            .iter()
            .flat_map(|&c| {
                let noise: Vec<u8> = (0..dim).map(|_| rng.gen_range(0..40)).collect();
                (0..dim).map(move |j| if j % k == c { 200 } else { 0 } + noise[j])
            })
            .collect();
        (images, order)
    }

    fn quiet(_: usize) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    #[test]
    fn finds_separated_blobs() {
        let (k, per, dim) = (5, 300, 40);
        let (images, truth) = blobs(k, per, dim);
        let mut rounds = 0;
        let found = kmeans(
            &images,
            dim,
            k,
            20,
            &mut ChaCha8Rng::seed_from_u64(1),
            &mut |r| {
                rounds = r;
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        assert_eq!(rounds, 20);
        assert_eq!(found.sizes.iter().sum::<u32>() as usize, k * per);
        // Every blob maps to one cluster and no two blobs share one.
        let mut map = vec![None; k];
        for (&id, &t) in found.ids.iter().zip(&truth) {
            assert_eq!(*map[t].get_or_insert(id), id, "blob {t} split");
        }
        let mut used: Vec<u8> = map.into_iter().flatten().collect();
        used.sort();
        used.dedup();
        assert_eq!(used.len(), k, "two blobs share a cluster");
    }

    #[test]
    fn the_same_at_any_thread_count() {
        // More than one block of images, so the threads share the work.
        let (images, _) = blobs(7, 700, 33);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    kmeans(
                        &images,
                        33,
                        12,
                        5,
                        &mut ChaCha8Rng::seed_from_u64(3),
                        &mut quiet,
                    )
                })
                .unwrap()
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }

    #[test]
    fn up_to_256_clusters_fit_the_ids() {
        let (images, _) = blobs(4, 100, 16);
        let found = kmeans(
            &images,
            16,
            256,
            2,
            &mut ChaCha8Rng::seed_from_u64(5),
            &mut quiet,
        )
        .unwrap();
        assert_eq!(found.sizes.len(), 256);
        assert_eq!(found.sizes.iter().sum::<u32>(), 400);
        // Ids past 127 are used: u8 holds every one of 256.
        assert!(found.ids.iter().any(|&id| id > 127));
    }

    #[test]
    fn a_round_can_stop_the_work() {
        let (images, _) = blobs(3, 50, 8);
        let mut rounds = 0;
        let stopped = kmeans(
            &images,
            8,
            3,
            30,
            &mut ChaCha8Rng::seed_from_u64(1),
            &mut |r| {
                rounds = r;
                if r == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert_eq!((stopped, rounds), (None, 2));
    }
}
