//! G's input, for every architecture: its noise, and a conditional G's labels (digits, or a
//! self-conditioned G's clusters in the proportions the data has them) one-hot after it.
//! Training steps draw it from the noise stream; pictures, samples and evaluation ask for
//! fixed labels ([`labels_to_ask`]).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// `n` noise vectors of the generator's input size, N(0, 1), drawn from `rng`.
pub fn sample_noise(n: usize, noise_dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    (0..n * noise_dim)
        .map(|_| rng.sample(StandardNormal))
        .collect()
}

/// The `n` labels a generator over `classes` classes is asked for when sampled: with
/// `counts` (a self-conditioned G's cluster sizes) each class as often as its count says, in
/// proportion, in class order (image `i` gets the class whose share of the counts holds the
/// point `(i + 1/2) / n`); without, every class equally often, in turn: 0, 1, ...,
/// classes - 1, 0, ... The same `n` always gives the same labels, so pictures and metrics
/// do not depend on chance draws of the mix.
pub fn labels_to_ask(n: usize, classes: usize, counts: &[u32]) -> Vec<u8> {
    labels_to_ask_among(n, classes, counts, 0..n)
}

/// The labels of images `range` among the `n` of [`labels_to_ask`], computed without the
/// others (for writing a large sample in pieces).
pub fn labels_to_ask_among(
    n: usize,
    classes: usize,
    counts: &[u32],
    range: std::ops::Range<usize>,
) -> Vec<u8> {
    if counts.is_empty() {
        return range.map(|i| (i % classes.max(1)) as u8).collect();
    }
    let total: u64 = counts.iter().map(|&c| c as u64).sum();
    let mut class = 0;
    let mut below = 0u64;
    (range.start as u64..range.end as u64)
        .map(|i| {
            // The point (2i + 1) / 2n of the total, in whole units (in 128 bits: for billions
            // of images the product outgrows 64).
            let point = ((2 * i as u128 + 1) * total as u128 / (2 * n as u128)) as u64;
            while below + counts[class] as u64 <= point {
                below += counts[class] as u64;
                class += 1;
            }
            class as u8
        })
        .collect()
}

/// How a training step draws G's labels: uniformly over the classes (digits), or each class
/// with probability count / total (a self-conditioned G's clusters, as the data has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelOdds {
    /// Running sums of the counts (empty: uniform).
    cumulative: Vec<u32>,
}

impl LabelOdds {
    pub(crate) fn new(counts: &[u32]) -> LabelOdds {
        let cumulative = counts
            .iter()
            .scan(0u32, |sum, &c| {
                *sum += c;
                Some(*sum)
            })
            .collect();
        LabelOdds { cumulative }
    }

    /// One label out of `classes`, drawn from `rng`.
    pub(crate) fn draw(&self, classes: usize, rng: &mut impl Rng) -> u8 {
        match self.cumulative.last() {
            None => rng.gen_range(0..classes) as u8,
            Some(&total) => {
                let u = rng.gen_range(0..total);
                self.cumulative.partition_point(|&c| c <= u) as u8
            }
        }
    }
}

/// G's input rows: each noise row (`noise.len() / labels.len()` long) followed, for a
/// conditional generator (`classes > 0`), by its label one-hot. Without classes, the noise.
pub fn generator_input(noise: &[f32], labels: &[u8], classes: usize) -> Vec<f32> {
    if classes == 0 {
        return noise.to_vec();
    }
    let width = noise.len() / labels.len().max(1);
    let mut out = vec![0.0; labels.len() * (width + classes)];
    join_one_hot(&mut out, noise, labels, classes);
    out
}

/// A conditional network's input rows, written into `out`: each row of `rows`
/// (`rows.len() / labels.len()` wide) followed by its label one-hot over `classes`. G's
/// input (noise, label) and D's (pixels, label) alike.
pub fn join_one_hot(out: &mut [f32], rows: &[f32], labels: &[u8], classes: usize) {
    let width = rows.len() / labels.len().max(1);
    let out_rows = out.chunks_exact_mut(width + classes);
    for ((o, row), &label) in out_rows.zip(rows.chunks_exact(width)).zip(labels) {
        o[..width].copy_from_slice(row);
        one_hot(&mut o[width..], label);
    }
}

/// `row = one-hot(label)`.
pub(crate) fn one_hot(row: &mut [f32], label: u8) {
    row.fill(0.0);
    row[label as usize] = 1.0;
}

/// G's input rows (`width` wide) from the noise stream: every row's noise, then (a
/// conditional G, `classes > 0`) every row's label, drawn with `odds`, into `labels` and
/// one-hot at the row's end. The MLP and DCGAN trainers draw alike.
pub(crate) fn draw_input(
    z: &mut [f32],
    width: usize,
    labels: &mut [u8],
    classes: usize,
    odds: &LabelOdds,
    rng: &mut ChaCha8Rng,
) {
    for row in z.chunks_exact_mut(width) {
        for v in &mut row[..width - classes] {
            *v = rng.sample(StandardNormal);
        }
    }
    if classes > 0 {
        for label in labels.iter_mut() {
            *label = odds.draw(classes, rng);
        }
        for (row, &label) in z.chunks_exact_mut(width).zip(labels.iter()) {
            one_hot(&mut row[width - classes..], label);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn labels_to_ask_follow_the_counts() {
        // Without counts: each class in turn.
        assert_eq!(labels_to_ask(5, 3, &[]), [0, 1, 2, 0, 1]);
        // With counts: in proportion, in class order; an empty class is never asked for.
        assert_eq!(
            labels_to_ask(10, 3, &[6, 0, 4]),
            [0, 0, 0, 0, 0, 0, 2, 2, 2, 2]
        );
        let asked = labels_to_ask(1000, 4, &[100, 300, 500, 100]);
        let count = |c: u8| asked.iter().filter(|&&l| l == c).count();
        assert_eq!(
            (count(0), count(1), count(2), count(3)),
            (100, 300, 500, 100)
        );
        // Fewer images than classes: the points fall in the big classes.
        assert_eq!(labels_to_ask(2, 4, &[1, 10, 1, 10]), [1, 3]);
    }

    #[test]
    fn drawn_labels_follow_the_odds() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let odds = LabelOdds::new(&[1, 0, 3]);
        let mut seen = [0usize; 3];
        for _ in 0..40_000 {
            seen[odds.draw(3, &mut rng) as usize] += 1;
        }
        assert_eq!(seen[1], 0, "an empty class was drawn");
        // 10,000 expected; four standard deviations are about 350.
        assert!((seen[0] as i64 - 10_000).abs() < 350, "{seen:?}");
        let uniform = LabelOdds::new(&[]);
        let mut rng2 = ChaCha8Rng::seed_from_u64(9);
        let mut again = ChaCha8Rng::seed_from_u64(9);
        // Uniform odds draw exactly as `gen_range` over the classes did before odds existed.
        for _ in 0..100 {
            assert_eq!(
                uniform.draw(10, &mut rng2),
                again.gen_range(0..10usize) as u8
            );
        }
    }

    #[test]
    fn labels_among_a_range_are_those_of_the_whole() {
        for (n, classes, counts) in [
            (25, 10, vec![]),
            (1000, 4, vec![100, 300, 500, 100]),
            (997, 3, vec![6, 0, 4]),
        ] {
            let whole = labels_to_ask(n, classes, &counts);
            let mut pieces = Vec::new();
            for start in (0..n).step_by(7) {
                pieces.extend(labels_to_ask_among(
                    n,
                    classes,
                    &counts,
                    start..(start + 7).min(n),
                ));
            }
            assert_eq!(pieces, whole, "{n} labels over {counts:?}");
        }
    }
}
