//! The maths of the metrics. Distances are matrix products (`|a|^2 + |b|^2 - 2 a.b`) done in
//! fixed row blocks, reductions run in a fixed order, so results do not depend on threads.

use gan_model::kernels::{exp_fast, matmul, Split, View};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

/// Rows of the first operand per block of a distance computation.
const BLOCK: usize = 250;

/// `x` with rounding noise below 0 set to 0, NaN kept: `f64::max(NaN, 0.0)` is 0, which
/// would turn a broken sample into one at distance 0 from everything (a perfect score).
fn at_least_zero<T: PartialOrd + Default>(x: T) -> T {
    if x < T::default() {
        T::default()
    } else {
        x
    }
}

/// Squared norms of the rows of an `n x d` matrix.
fn row_norms(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// Runs `f(first_row, d2)` for blocks of rows of `a`, where `d2` holds the squared distances
/// (`rows x b_rows`, clamped at 0) from each of those rows of `a` to every row of `b`.
/// Blocks run in parallel; results come back in block order.
pub fn for_distance_blocks<T: Send>(
    a: &[f32],
    b: &[f32],
    d: usize,
    f: impl Fn(usize, &[f32]) -> T + Sync,
) -> Vec<T> {
    let (na, nb) = (a.len() / d, b.len() / d);
    let (an, bn) = (row_norms(a, d), row_norms(b, d));
    (0..na.div_ceil(BLOCK))
        .into_par_iter()
        .map(|blk| {
            let start = blk * BLOCK;
            let rows = BLOCK.min(na - start);
            let mut d2 = vec![0.0f32; rows * nb];
            let a_blk = &a[start * d..(start + rows) * d];
            matmul(
                &mut d2,
                View::rows(a_blk, rows, d),
                View::transposed(b, nb, d),
                Split::None,
            );
            for (i, row) in d2.chunks_exact_mut(nb).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = at_least_zero(an[start + i] + bn[j] - 2.0 * *v);
                }
            }
            f(start, &d2)
        })
        .collect()
}

/// `ln(sum(exp(x)))` of `scale * x_i` without overflow or underflow: the largest term is
/// factored out and the rest summed in f64.
pub fn logsumexp_scaled(x: &[f32], scale: f32) -> f64 {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(scale * v));
    if !max.is_finite() {
        return max as f64;
    }
    let sum: f64 = x.iter().map(|&v| exp_fast(scale * v - max) as f64).sum();
    max as f64 + sum.ln()
}

/// The Gaussian Parzen window log-likelihood of each of `points` under a window of width
/// `sigma` on each of `samples` (rows of `d` values), for several widths at once:
/// `ll[s][i] = logsumexp_j(-|x_i - s_j|^2 / (2 sigma^2)) - ln n - d/2 ln(2 pi sigma^2)`.
pub fn parzen_ll(samples: &[f32], points: &[f32], d: usize, sigmas: &[f64]) -> Vec<Vec<f64>> {
    let n = (samples.len() / d) as f64;
    let per_block = for_distance_blocks(points, samples, d, |_, d2| {
        let cols = samples.len() / d;
        d2.chunks_exact(cols)
            .map(|row| {
                sigmas
                    .iter()
                    .map(|&s| {
                        let scale = (-1.0 / (2.0 * s * s)) as f32;
                        logsumexp_scaled(row, scale)
                            - n.ln()
                            - d as f64 / 2.0 * (2.0 * std::f64::consts::PI * s * s).ln()
                    })
                    .collect::<Vec<f64>>()
            })
            .collect::<Vec<_>>()
    });
    let rows: Vec<Vec<f64>> = per_block.into_iter().flatten().collect();
    (0..sigmas.len())
        .map(|k| rows.iter().map(|r| r[k]).collect())
        .collect()
}

/// Mean and standard error (std / sqrt(n)) of `v`.
pub fn mean_and_std_err(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, (var / n).sqrt())
}

/// Mean vector and covariance (n - 1) of the rows of an `n x d` matrix, in f64.
pub fn mean_cov(x: &[f32], d: usize) -> (Vec<f64>, DMatrix<f64>) {
    let n = x.len() / d;
    let mut mean = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred = DMatrix::from_fn(n, d, |i, j| x[i * d + j] as f64 - mean[j]);
    let cov = centred.transpose() * &centred / (n as f64 - 1.0).max(1.0);
    (mean, cov)
}

/// The Frechet distance between N(m1, c1) and N(m2, c2):
/// `|m1 - m2|^2 + tr(c1) + tr(c2) - 2 tr((c1^1/2 c2 c1^1/2)^1/2)`.
pub fn frechet_distance(m1: &[f64], c1: &DMatrix<f64>, m2: &[f64], c2: &DMatrix<f64>) -> f64 {
    let mean_term: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    let sqrt_c1 = psd_sqrt(c1);
    let inner = &sqrt_c1 * c2 * &sqrt_c1;
    let inner = (&inner + inner.transpose()) * 0.5; // symmetric up to rounding
    let tr_sqrt: f64 = SymmetricEigen::new(inner)
        .eigenvalues
        .iter()
        .map(|&l| at_least_zero(l).sqrt())
        .sum();
    at_least_zero(mean_term + c1.trace() + c2.trace() - 2.0 * tr_sqrt)
}

/// The square root of a symmetric positive semi-definite matrix (negative rounding noise in
/// its eigenvalues is treated as 0).
fn psd_sqrt(c: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (c + c.transpose()) * 0.5;
    let e = SymmetricEigen::new(sym);
    let sqrt_vals = DMatrix::from_diagonal(&e.eigenvalues.map(|l| at_least_zero(l).sqrt()));
    &e.eigenvectors * sqrt_vals * e.eigenvectors.transpose()
}

/// `exp(E_x[KL(p(y|x) || p(y))])` for class probabilities `n x k`: between 1 and k.
pub fn inception_score(probs: &[f32], k: usize) -> f64 {
    let n = probs.len() / k;
    let mut marginal = vec![0.0f64; k];
    for row in probs.chunks_exact(k) {
        for (m, &p) in marginal.iter_mut().zip(row) {
            *m += p as f64 / n as f64;
        }
    }
    let mean_kl = probs
        .chunks_exact(k)
        .map(|row| {
            row.iter()
                .zip(&marginal)
                .filter(|(&p, _)| p > 0.0)
                .map(|(&p, &m)| p as f64 * ((p as f64).ln() - m.ln()))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64;
    mean_kl.exp()
}

/// `KL(p || q)` for two distributions (terms with `p = 0` contribute nothing).
pub fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(&a, _)| a > 0.0)
        .map(|(&a, &b)| a * (a / b).ln())
        .sum()
}

/// Improved precision and recall (Kynkaanniemi et al. 2019): a point is covered by a set if it
/// lies within the k-th-nearest-neighbour ball of some member of the set.
/// Returns (precision: fake covered by real, recall: real covered by fake).
pub fn precision_recall(real: &[f32], fake: &[f32], d: usize, k: usize) -> (f64, f64) {
    let real_r2 = knn_radii_sq(real, d, k);
    let fake_r2 = knn_radii_sq(fake, d, k);
    let n_real = real.len() / d;
    // One pass over fake x real distances answers both questions.
    let blocks = for_distance_blocks(fake, real, d, |start, d2| {
        let mut precise = 0usize;
        let mut covers = vec![false; n_real];
        for (i, row) in d2.chunks_exact(n_real).enumerate() {
            let mut in_real_ball = false;
            for (j, &dist) in row.iter().enumerate() {
                in_real_ball |= dist <= real_r2[j];
                covers[j] |= dist <= fake_r2[start + i];
            }
            precise += in_real_ball as usize;
        }
        (precise, covers)
    });
    let mut precise = 0;
    let mut covered = vec![false; n_real];
    for (p, c) in blocks {
        precise += p;
        covered.iter_mut().zip(c).for_each(|(a, b)| *a |= b);
    }
    let recall = covered.iter().filter(|&&c| c).count() as f64 / n_real as f64;
    (precise as f64 / (fake.len() / d) as f64, recall)
}

/// Squared distance from each row to its k-th nearest other row.
fn knn_radii_sq(x: &[f32], d: usize, k: usize) -> Vec<f32> {
    let n = x.len() / d;
    for_distance_blocks(x, x, d, |start, d2| {
        d2.chunks_exact(n)
            .enumerate()
            .map(|(i, row)| {
                // The k+1 smallest, in order; the row itself (distance ~0) is among them.
                let mut best = vec![f32::INFINITY; k + 1];
                for (j, &v) in row.iter().enumerate() {
                    let v = if j == start + i { 0.0 } else { v };
                    if v < best[k] {
                        let pos = best.partition_point(|&b| b <= v);
                        best.insert(pos, v);
                        best.pop();
                    }
                }
                best[k]
            })
            .collect::<Vec<f32>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logsumexp_handles_huge_and_tiny_values() {
        assert!((logsumexp_scaled(&[0.0, 0.0], 1.0) - 2f64.ln()).abs() < 1e-7);
        // exp(1000) overflows f32 and f64; the result is still 1000 + ln 2.
        assert!((logsumexp_scaled(&[1000.0, 1000.0], 1.0) - (1000.0 + 2f64.ln())).abs() < 1e-4);
        // exp(-1000) underflows to 0; factoring the max out keeps it.
        assert!((logsumexp_scaled(&[1000.0, 1000.0], -1.0) - (-1000.0 + 2f64.ln())).abs() < 1e-4);
        let v = logsumexp_scaled(&[0.0, -200.0], 1.0);
        assert!((v - (1.0 + (-200f64).exp()).ln()).abs() < 1e-12);
    }

    #[test]
    fn a_nan_sample_gives_nan_not_a_perfect_score() {
        let points = [0.0f32, 1.0, 1.0, 0.0];
        let mut samples = [0.0f32, 1.0, 0.5, 0.5];
        samples[2] = f32::NAN;
        let ll = parzen_ll(&samples, &points, 2, &[0.2]);
        assert!(ll.iter().flatten().all(|v| v.is_nan()), "{ll:?}");
        let c = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, f64::NAN]);
        let fd = frechet_distance(&[0.0, 0.0], &c, &[0.0, 0.0], &DMatrix::identity(2, 2));
        assert!(fd.is_nan(), "{fd}");
        assert_eq!(at_least_zero(-1e-9f32), 0.0);
        assert_eq!(at_least_zero(2.5f64), 2.5);
    }

    #[test]
    fn parzen_on_one_point_is_the_gaussian_log_density() {
        // One sample at the origin in 3 dimensions, one point at (1, 2, 2): |x|^2 = 9.
        let (s, d) = (0.5f64, 3usize);
        let ll = parzen_ll(&[0.0, 0.0, 0.0], &[1.0, 2.0, 2.0], d, &[s])[0][0];
        let want =
            -9.0 / (2.0 * s * s) - d as f64 / 2.0 * (2.0 * std::f64::consts::PI * s * s).ln();
        assert!((ll - want).abs() < 1e-5, "{ll} vs {want}");
        // Two identical samples: the same density (the mean of two equal kernels).
        let ll2 = parzen_ll(&[0.0; 6], &[1.0, 2.0, 2.0], d, &[s])[0][0];
        assert!((ll2 - want).abs() < 1e-5);
    }

    #[test]
    fn frechet_distance_of_known_gaussians() {
        // Diagonal covariances: FD = |m1-m2|^2 + sum (sqrt(a) - sqrt(b))^2.
        let c1 = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![4.0, 1.0, 9.0]));
        let c2 = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![1.0, 1.0, 4.0]));
        let fd = frechet_distance(&[0.0, 1.0, 2.0], &c1, &[3.0, 1.0, 2.0], &c2);
        let want = 9.0 + (2.0f64 - 1.0).powi(2) + 0.0 + (3.0f64 - 2.0).powi(2);
        assert!((fd - want).abs() < 1e-9, "{fd} vs {want}");
        // A full covariance against itself: 0.
        let a = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]);
        assert!(frechet_distance(&[1.0, 1.0], &a, &[1.0, 1.0], &a).abs() < 1e-9);
    }

    #[test]
    fn mean_and_covariance() {
        let (m, c) = mean_cov(&[1.0, 2.0, 3.0, 6.0], 2);
        assert_eq!(m, vec![2.0, 4.0]);
        assert!(
            (c[(0, 0)] - 2.0).abs() < 1e-12
                && (c[(0, 1)] - 4.0).abs() < 1e-12
                && (c[(1, 1)] - 8.0).abs() < 1e-12
        );
    }

    #[test]
    fn inception_score_bounds() {
        // Confident and spread evenly over 4 classes: IS = 4.
        let mut p = vec![0.0f32; 8 * 4];
        for i in 0..8 {
            p[i * 4 + i % 4] = 1.0;
        }
        assert!((inception_score(&p, 4) - 4.0).abs() < 1e-9);
        // Every image the same class: 1.
        let same: Vec<f32> = (0..8).flat_map(|_| [1.0, 0.0, 0.0, 0.0]).collect();
        assert!((inception_score(&same, 4) - 1.0).abs() < 1e-12);
        assert!((kl_divergence(&[0.5, 0.5], &[0.5, 0.5])).abs() < 1e-15);
        assert!((kl_divergence(&[1.0, 0.0], &[0.5, 0.5]) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn precision_and_recall_on_constructed_sets() {
        // Real: 8 points on a line 0..7 (3rd-NN radius 2 inside, 3 at the ends).
        let real: Vec<f32> = (0..8).map(|i| i as f32).collect();
        // Fake: 4 points near real ones, 4 far away: precision 0.5.
        let fake: Vec<f32> = vec![0.5, 1.5, 2.5, 3.5, 100.0, 101.0, 102.0, 103.0];
        let (p, r) = precision_recall(&real, &fake, 1, 3);
        assert!((p - 0.5).abs() < 1e-12, "precision {p}");
        // Fake 3rd-NN radii: 3, 2, 2, 3 for the near cluster, so its balls span -2.5..6.5 and
        // cover real 0..6; 7 is 3.5 from the nearest fake point, outside its ball of 3.
        assert!((r - 0.875).abs() < 1e-12, "recall {r}");
        let (p, r) = precision_recall(&real, &real, 1, 3);
        assert_eq!((p, r), (1.0, 1.0));
    }
}
