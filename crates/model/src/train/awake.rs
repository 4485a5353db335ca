//! Keeping the pool's other threads awake through a step.
//!
//! A step is a chain of short parallel sections (a layer's two lanes, a batch
//! normalisation's halves, Adam's blocks) with short serial stretches between them. An idle
//! rayon worker yields a few dozen times and then sleeps, so after a serial stretch of some
//! 20 µs the next section's second half waits for a wake-up, which on the machines measured
//! costs about as long again. Steps make dozens of such sections: on a 2-core Xeon the
//! wake-ups took a quarter of the tutorial's step and a tenth to a sixth of the DCGAN's
//! (docs/notebook/speed.md, 2026-12-08).
//!
//! [`with_workers_awake`] runs a step with a keeper on each other thread of the pool: a job
//! that takes the step's parallel work as soon as it is offered (`rayon::yield_now`) and
//! spins between, until the step is done. Which thread runs which half never changes what
//! is computed, so the results are the same bits with or without keepers.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::Yield;

/// Runs `body` with the other threads of the current rayon pool kept awake (busy-waiting
/// for its parallel sections) until it returns. On a one-thread pool, or outside any pool,
/// it just runs `body`. Allocates nothing: each keeper is the second half of a join.
pub fn with_workers_awake<R: Send>(body: impl FnOnce() -> R + Send) -> R {
    let Some(here) = rayon::current_thread_index() else {
        return body();
    };
    let done = AtomicBool::new(false);
    with_keepers(rayon::current_num_threads() - 1, &done, here, body)
}

/// `body` beside `others` keepers, one per level of nested joins (whose second halves the
/// idle threads steal, oldest first); the innermost sets `done` when `body` ends, even by a
/// panic, so the keepers end and a panic reaches the caller.
fn with_keepers<R: Send>(
    others: usize,
    done: &AtomicBool,
    here: usize,
    body: impl FnOnce() -> R + Send,
) -> R {
    if others == 0 {
        let _finish = Finish(done);
        return body();
    }
    rayon::join(
        || with_keepers(others - 1, done, here, body),
        || keep_awake(done, here),
    )
    .0
}

/// Sets the flag the keepers watch when dropped.
struct Finish<'a>(&'a AtomicBool);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs whatever parallel work the pool offers until `done`. A keeper that the step's own
/// thread runs (taking it back from its queue, or while it waits in a join) returns at
/// once: that thread must get back to the step.
fn keep_awake(done: &AtomicBool, step_thread: usize) {
    if rayon::current_thread_index() == Some(step_thread) {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool")
    }

    /// The body's joins still run both halves, on every pool size, and the call returns
    /// the body's value (the keepers end).
    #[test]
    fn runs_the_body_and_ends_on_any_pool() {
        for threads in [1, 2, 3] {
            let sum = pool(threads).install(|| {
                with_workers_awake(|| {
                    (0..50)
                        .map(|i| {
                            let (a, b) = rayon::join(|| i * 2, || i * 3);
                            a + b
                        })
                        .sum::<i32>()
                })
            });
            assert_eq!(
                sum,
                (0..50).map(|i| i * 5).sum::<i32>(),
                "{threads} threads"
            );
        }
        assert_eq!(with_workers_awake(|| 7), 7, "outside a pool");
    }

    /// A panic in the body reaches the caller instead of leaving the keepers spinning.
    #[test]
    fn a_panicking_body_panics_the_caller() {
        let result = pool(2)
            .install(|| std::panic::catch_unwind(|| with_workers_awake(|| panic!("in the step"))));
        assert!(result.is_err());
    }
}
