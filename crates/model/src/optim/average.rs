//! An exponential moving average of G's weights (`train.g_ema`; Yazıcı et al. 2019), kept
//! beside the trained weights and used for pictures, the saved model and evaluation.

use rayon::prelude::*;

/// `average = decay * average + (1 - decay) * current`, element by element (in parallel
/// blocks; each element's arithmetic is the same however it is cut).
pub(crate) fn update_average(average: &mut [f32], current: &[f32], decay: f32) {
    let rest = 1.0 - decay;
    average
        .par_chunks_mut(1 << 15)
        .zip(current.par_chunks(1 << 15))
        .for_each(|(average, current)| {
            for (a, &p) in average.iter_mut().zip(current) {
                *a = decay * *a + rest * p;
            }
        });
}
