//! How much memory a spec needs, estimated before anything is allocated, so that a spec that
//! cannot fit this machine is refused with the figure instead of aborting half-way (and
//! leaving a run marked `running` that every resume would abort again).

use anyhow::bail;
use gan_model::{Arch, DcganShape, IMAGE_PIXELS};
use gan_spec::Spec;

/// Images of MNIST's training file, the most a run loads.
const TRAINING_FILE_IMAGES: u128 = 60_000;
/// The process itself, the classifier for evaluation, thread stacks: a generous constant.
const FIXED_BYTES: u128 = 200 << 20;
/// Bytes per pixel of a sample picture (3 x 3 pixels per digit pixel, plus the gaps),
/// counted twice for the PNG encoding.
const PICTURE_BYTES_PER_PIXEL: u128 = 2 * 11;

/// One part of the estimate, named by the spec keys that size it.
struct Part {
    what: &'static str,
    keys: &'static str,
    bytes: u128,
}

/// The estimate's parts: upper estimates, each within a small factor of what is allocated.
fn parts(spec: &Spec) -> Vec<Part> {
    let cfg = crate::config::train_config(spec);
    if let Arch::Dcgan(shape) = &cfg.model.arch {
        return dcgan_parts(spec, &cfg, shape);
    }
    let (g, d) = (cfg.model.generator_sizes(), cfg.model.discriminator_sizes());
    let (z, x) = (g[0] as u128, IMAGE_PIXELS as u128);
    // The widest layer, for generation's intermediate values.
    let h = g.iter().chain(&d).map(|&w| w as u128).max().unwrap_or(0);
    let f = 4u128; // bytes per f32
    let (g_params, d_params, buffers) = gan_model::mlp::float_counts(&cfg.model, cfg.batch_size);
    // Weights, gradients and both Adam moments, plus a checkpoint's copies while it is
    // encoded; the average of G's weights and its copy.
    let average = if cfg.g_ema.is_some() { 2 * g_params } else { 0 };
    let networks = ((g_params + d_params) * (4 + 6) + average) * f;
    let workspace = buffers * f;
    let data = TRAINING_FILE_IMAGES * x * 2;
    let count = pictured_images(spec, &cfg);
    let pictures = count * ((x + z + h) * f + x * PICTURE_BYTES_PER_PIXEL);
    let eval = if spec.eval.enabled {
        gan_eval::evaluation_bytes(spec.eval.samples, z as usize, h as usize)
    } else {
        0
    };
    vec![
        Part {
            what: "the two networks with their gradients, Adam state and checkpoint copies",
            keys: "model.hidden (or model.g_hidden, model.d_hidden), model.noise_dim, train.g_ema",
            bytes: networks,
        },
        Part {
            what: "the training step's buffers",
            keys: "train.batch_size, model.hidden",
            bytes: workspace,
        },
        Part {
            what: "the training images",
            keys: "data",
            bytes: data,
        },
        Part {
            what: "the sample pictures",
            keys: "samples.count",
            bytes: pictures,
        },
        Part {
            what: "the evaluation",
            keys: "eval.samples",
            bytes: eval,
        },
        Part {
            what: "the program itself",
            keys: "",
            bytes: FIXED_BYTES,
        },
    ]
}

/// Images in each sample picture: a conditional GAN's have a row of `samples.count` per
/// digit (a self-conditioned GAN's, like an unconditional one's, only `samples.count`).
fn pictured_images(spec: &Spec, cfg: &gan_model::TrainConfig) -> u128 {
    let rows = if spec.model.conditional {
        cfg.model.classes
    } else {
        1
    };
    spec.samples.count as u128 * rows as u128
}

/// The same for a DCGAN.
fn dcgan_parts(spec: &Spec, cfg: &gan_model::TrainConfig, shape: &DcganShape) -> Vec<Part> {
    let f = 4u128;
    let (input, classes) = (cfg.model.noise_dim + cfg.model.classes, cfg.model.classes);
    let z = input as u128;
    let x = IMAGE_PIXELS as u128;
    let (g, d, workspace) = gan_model::dcgan::float_counts(input, shape, classes, cfg.batch_size);
    let average = if cfg.g_ema.is_some() { 2 * g } else { 0 };
    let masks = if cfg.model.d_dropout > 0.0 {
        gan_model::dcgan::dropout_mask_floats(shape, cfg.batch_size)
    } else {
        0
    };
    // Generation runs in chunks: one chunk's feature maps (counted as a training step's
    // buffers for that many images), plus each image and its noise.
    let chunk = gan_model::dcgan::GENERATE_CHUNK;
    let (_, _, generating) = gan_model::dcgan::float_counts(input, shape, classes, chunk);
    let count = pictured_images(spec, cfg);
    let pictures = (generating + count * (x + z)) * f + count * x * PICTURE_BYTES_PER_PIXEL;
    let eval = if spec.eval.enabled {
        generating * f + gan_eval::evaluation_bytes(spec.eval.samples, input, 0)
    } else {
        0
    };
    vec![
        Part {
            what: "the two networks with their gradients, Adam state and checkpoint copies",
            keys: "model.g_channels, model.d_channels, model.d_dense, model.noise_dim, model.conditional, train.g_ema",
            bytes: ((g + d) * (4 + 6) + average) * f,
        },
        Part {
            what: "the training step's buffers",
            keys: "train.batch_size, model.g_channels, model.d_channels, model.d_dense, model.d_dropout",
            bytes: (workspace + masks) * f,
        },
        Part {
            what: "the training images",
            keys: "data",
            bytes: TRAINING_FILE_IMAGES * x * 2,
        },
        Part {
            what: "the sample pictures",
            keys: "samples.count",
            bytes: pictures,
        },
        Part {
            what: "the evaluation",
            keys: "eval.samples",
            bytes: eval,
        },
        Part {
            what: "the program itself",
            keys: "",
            bytes: FIXED_BYTES,
        },
    ]
}

/// Bytes `spec` needs at its peak (an upper estimate).
pub(crate) fn estimate(spec: &Spec) -> u128 {
    parts(spec).iter().map(|p| p.bytes).sum()
}

/// Refuses `spec` (naming `origin`, its file) if it needs more memory than this machine has.
pub(crate) fn check_fits(spec: &Spec, origin: &str) -> anyhow::Result<()> {
    let Some(have) = gan_tools::machine_memory() else {
        return Ok(()); // nothing known to compare with; the allocator will say
    };
    check_against(spec, origin, have)
}

fn check_against(spec: &Spec, origin: &str, have: u128) -> anyhow::Result<()> {
    let need = estimate(spec);
    if need <= have {
        return Ok(());
    }
    let parts = parts(spec);
    let biggest = parts
        .iter()
        .max_by_key(|p| p.bytes)
        .expect("the estimate has parts");
    bail!(
        "{origin}: this spec needs about {} of memory, more than the {} this machine has; \
         most of it ({}) is {}, sized by {}: lower {} and run again",
        gan_tools::gib(need),
        gan_tools::gib(have),
        gan_tools::gib(biggest.bytes),
        biggest.what,
        biggest.keys,
        biggest.keys
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorial_needs_little_and_huge_specs_are_refused_by_name() {
        let tutorial = Spec::default();
        let need = estimate(&tutorial);
        // About 435,000 parameters and 47 MB of images: well under a gigabyte.
        assert!(need > 100 << 20 && need < 600 << 20, "{need}");
        check_against(&tutorial, "baseline.yaml", 1 << 30).unwrap();

        let mut wide = Spec::default();
        wide.model.hidden = 100_000_000;
        let e = check_against(&wide, "w.yaml", 24 << 30)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.yaml: this spec needs about")
                && e.contains("than the 24.0 GiB this machine has")
                && e.contains("lower model.hidden"),
            "{e}"
        );
        let mut pictures = Spec::default();
        pictures.samples.count = 100_000_000;
        let e = check_against(&pictures, "p.yaml", 24 << 30)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the sample pictures, sized by samples.count"),
            "{e}"
        );
    }
}
