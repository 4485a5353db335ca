//! Batches in the order of TensorFlow's `DataSet.next_batch`: a fresh shuffle before the first
//! batch and at every pass boundary, with a batch that crosses the boundary taking the rest of
//! the old pass and the start of the new one. The shuffle comes from a `rand_chacha` stream,
//! so the seed fixes the order exactly, and the stream position can be saved and restored.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// Hands out batches of image indices in `0..n`.
#[derive(Debug, Clone)]
pub struct Batcher {
    n: usize,
    batch: usize,
    rng: ChaCha8Rng,
    order: Vec<u32>,
    next: usize,
    /// Stream position just before `order` was drawn, so it can be drawn again on restore.
    order_drawn_at: u128,
    out: Vec<u32>,
}

/// Where a [`Batcher`] stands, enough to continue it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherState {
    /// Stream word position before the current order was drawn; `None` before the first batch.
    pub order_drawn_at: Option<u128>,
    /// Index into the current order of the next image to hand out.
    pub next: usize,
}

impl Batcher {
    /// Batches of `batch` indices into `n` images; `rng` drives the shuffles.
    pub fn new(n: usize, batch: usize, rng: ChaCha8Rng) -> Result<Batcher, DataError> {
        if batch == 0 {
            return Err(DataError::InvalidBatching(
                "batch size must be at least 1".into(),
            ));
        }
        if batch > n {
            return Err(DataError::InvalidBatching(format!(
                "batch size {batch} is larger than the {n} images available"
            )));
        }
        if n > u32::MAX as usize {
            return Err(DataError::InvalidBatching(format!(
                "{n} images is too many"
            )));
        }
        Ok(Batcher {
            n,
            batch,
            rng,
            order: Vec::new(),
            next: n,
            order_drawn_at: 0,
            out: Vec::with_capacity(batch),
        })
    }

    /// Continues a batcher from a saved state; `rng` must be the same stream (any position).
    pub fn restore(
        n: usize,
        batch: usize,
        rng: ChaCha8Rng,
        state: BatcherState,
    ) -> Result<Batcher, DataError> {
        let mut b = Batcher::new(n, batch, rng)?;
        if let Some(pos) = state.order_drawn_at {
            if state.next > n {
                return Err(DataError::InvalidBatching(format!(
                    "saved batch position {} is past the {n} images",
                    state.next
                )));
            }
            b.rng.set_word_pos(pos);
            b.draw_order();
            b.next = state.next;
        }
        Ok(b)
    }

    pub fn state(&self) -> BatcherState {
        BatcherState {
            order_drawn_at: (!self.order.is_empty()).then_some(self.order_drawn_at),
            next: self.next,
        }
    }

    /// Full batches in one pass over the data, as the tutorial counts an epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.n / self.batch
    }

    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The next batch of indices.
    pub fn next_batch(&mut self) -> &[u32] {
        self.out.clear();
        if self.next + self.batch > self.n {
            self.out
                .extend_from_slice(&self.order[self.next.min(self.order.len())..]);
            self.draw_order();
            self.next = 0;
        }
        let take = self.batch - self.out.len();
        self.out
            .extend_from_slice(&self.order[self.next..self.next + take]);
        self.next += take;
        &self.out
    }

    fn draw_order(&mut self) {
        self.order_drawn_at = self.rng.get_word_pos();
        self.order.clear();
        self.order.extend(0..self.n as u32);
        self.order.shuffle(&mut self.rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn take(b: &mut Batcher, steps: usize) -> Vec<Vec<u32>> {
        (0..steps).map(|_| b.next_batch().to_vec()).collect()
    }

    #[test]
    fn each_pass_is_a_permutation() {
        let mut b = Batcher::new(50, 10, rng(1)).unwrap();
        assert_eq!(b.steps_per_epoch(), 5);
        let mut seen: Vec<u32> = take(&mut b, 5).concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        let a = take(&mut Batcher::new(100, 7, rng(3)).unwrap(), 40);
        let b = take(&mut Batcher::new(100, 7, rng(3)).unwrap(), 40);
        let c = take(&mut Batcher::new(100, 7, rng(4)).unwrap(), 40);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn passes_are_reshuffled() {
        let mut b = Batcher::new(20, 20, rng(9)).unwrap();
        let first = b.next_batch().to_vec();
        let second = b.next_batch().to_vec();
        assert_ne!(first, second);
    }

    #[test]
    fn a_batch_crossing_a_pass_boundary_finishes_the_old_pass_first() {
        let mut b = Batcher::new(10, 4, rng(5)).unwrap();
        let first_pass: Vec<u32> = take(&mut b, 2).concat();
        let crossing = b.next_batch().to_vec();
        let mut old_pass: Vec<u32> = first_pass.iter().chain(&crossing[..2]).copied().collect();
        old_pass.sort_unstable();
        assert_eq!(old_pass, (0..10).collect::<Vec<_>>());
        assert_eq!(crossing.len(), 4);
    }

    #[test]
    fn restore_continues_exactly() {
        let mut a = Batcher::new(30, 8, rng(11)).unwrap();
        take(&mut a, 7);
        let state = a.state();
        let rest_a = take(&mut a, 20);
        let mut b = Batcher::restore(30, 8, rng(11), state).unwrap();
        assert_eq!(take(&mut b, 20), rest_a);
        let fresh = Batcher::new(30, 8, rng(11)).unwrap();
        let mut c = Batcher::restore(30, 8, rng(11), fresh.state()).unwrap();
        let mut d = fresh;
        assert_eq!(take(&mut c, 9), take(&mut d, 9));
    }

    #[test]
    fn bad_batch_sizes_are_errors() {
        assert!(Batcher::new(10, 0, rng(0)).is_err());
        let e = Batcher::new(10, 11, rng(0)).unwrap_err().to_string();
        assert!(e.contains("larger than the 10 images"), "{e}");
    }
}
