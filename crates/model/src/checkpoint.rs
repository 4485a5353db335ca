//! Weights and training state as safetensors, read back through dfdx's safetensors loader,
//! for every architecture: each implements [`Stored`] (its tensors, metadata and decoding),
//! and one encoder and decoder of weights ([`encode_weights`]) and of training states
//! ([`encode_state`], [`decode_state`]) serve them all. A file's `architecture` metadata
//! says which it holds (none: the tutorial's perceptrons).
//!
//! Names follow PyTorch. Perceptrons: `generator.0.weight` (`[hidden, noise_dim]`),
//! `generator.0.bias`, `generator.2.weight`, `generator.2.bias`, and the same under
//! `discriminator.`, so `nn.Sequential(nn.Linear(...), nn.ReLU(), nn.Linear(...))` loads them
//! as they are; a DCGAN's, the modules of `tools/peers/gan_torch_dcgan.py`. A full training
//! state adds each Adam's moments under `adam.<net>.exp_avg.<param>` and
//! `adam.<net>.exp_avg_sq.<param>` (PyTorch's names), with counters in the metadata.
//!
//! This module only encodes and decodes bytes; where and how files are written (atomically)
//! is the run directory's business.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use dfdx::prelude::{Cpu, Tensor, ZerosTensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::any::{AnyState, Generator, Model};
use crate::dcgan::networks::SEED_PIXELS;
use crate::dcgan::{ConvDiscriminator, ConvGenerator, Dcgan};
use crate::layers::activation::{Activation, Output};
use crate::layers::slots::ParamSlot;
use crate::mlp::{Gan, Mlp};
use crate::optim::adam::{Adam, AdamConfig};
use crate::train::config::IMAGE_PIXELS;
use crate::train::step::{Networks, TrainerState};

const FORMAT_KEY: &str = "format";
const WEIGHTS_FORMAT: &str = "gan-weights-v1";
const STATE_FORMAT: &str = "gan-trainer-state-v1";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("metadata `{0}` is missing or malformed")]
    Metadata(String),
}

/// One named tensor to write.
struct Entry {
    name: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn entries_for(prefix: &str, slots: Vec<ParamSlot>, values: &[f32]) -> Vec<Entry> {
    slots
        .into_iter()
        .map(|slot| Entry {
            name: format!("{prefix}.{}", slot.name),
            shape: slot.shape,
            bytes: values[slot.range]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        })
        .collect()
}

fn serialize(entries: &[Entry], metadata: BTreeMap<String, String>) -> Vec<u8> {
    let views: Vec<(&str, TensorView)> = entries
        .iter()
        .map(|e| {
            let view = TensorView::new(Dtype::F32, e.shape.clone(), &e.bytes).expect("sizes agree");
            (e.name.as_str(), view)
        })
        .collect();
    let metadata: HashMap<String, String> = metadata.into_iter().collect();
    let bytes =
        safetensors::tensor::serialize(views, &Some(metadata)).expect("in-memory serialisation");
    sorted_header(bytes)
}

/// The same file with its JSON header's keys sorted. safetensors 0.3 writes the metadata map
/// in a hash order that changes from process to process; sorted, identical contents give
/// identical bytes (a resumed run's weights equal an uninterrupted run's). The header keeps
/// its length, so the data offsets stay valid.
fn sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    use std::collections::BTreeMap as Sorted;
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = &bytes[8..8 + len];
    let mut parsed: Sorted<String, serde_json::Value> =
        serde_json::from_slice(header).expect("safetensors wrote a JSON header");
    if let Some(meta) = parsed.get_mut("__metadata__") {
        let sorted: Sorted<String, serde_json::Value> =
            serde_json::from_value(meta.take()).expect("metadata is an object");
        *meta = serde_json::to_value(sorted).expect("plain strings");
    }
    let mut text = serde_json::to_string(&parsed).expect("plain JSON");
    assert!(text.len() <= len, "a sorted header has the same length");
    text.extend(std::iter::repeat_n(' ', len - text.len()));
    bytes[8..8 + len].copy_from_slice(text.as_bytes());
    bytes
}

/// What the tensor shapes do not say: each network's nonlinearities, as metadata
/// (`generator.activation: leaky_relu:0.2`, `generator.output: tanh`, ...).
fn mlp_metadata(gan: &Gan) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (net, mlp) in [
        ("generator", &gan.generator),
        ("discriminator", &gan.discriminator),
    ] {
        m.insert(format!("{net}.activation"), mlp.hidden_act.name());
        m.insert(format!("{net}.output"), mlp.output.name().to_string());
        if mlp.label_inputs > 0 {
            m.insert(format!("{net}.label_inputs"), mlp.label_inputs.to_string());
        }
    }
    insert_label_counts(&mut m, &gan.generator.label_counts);
    m
}

/// Metadata key of a self-conditioned generator's cluster sizes (comma-separated).
const LABEL_COUNTS_KEY: &str = "generator.label_counts";

/// Records how often a generator is asked for each class, when not equally often.
fn insert_label_counts(m: &mut BTreeMap<String, String>, counts: &[u32]) {
    if !counts.is_empty() {
        let list: Vec<String> = counts.iter().map(u32::to_string).collect();
        m.insert(LABEL_COUNTS_KEY.into(), list.join(","));
    }
}

/// The generator's odds of each of its `classes` classes (empty when the file does not
/// name them: every class equally often).
fn read_label_counts(
    meta: &BTreeMap<String, String>,
    classes: usize,
) -> Result<Vec<u32>, CheckpointError> {
    let Some(list) = meta.get(LABEL_COUNTS_KEY) else {
        return Ok(Vec::new());
    };
    let counts: Option<Vec<u32>> = list.split(',').map(|c| c.trim().parse().ok()).collect();
    counts
        .filter(|c| {
            let total: u64 = c.iter().map(|&v| v as u64).sum();
            c.len() == classes && total > 0 && total <= u32::MAX as u64
        })
        .ok_or_else(|| CheckpointError::Metadata(LABEL_COUNTS_KEY.into()))
}

/// Reads perceptrons written by [`encode_gan`] (or the weights inside a training state).
fn decode_mlp_networks(bytes: &[u8]) -> Result<Gan, CheckpointError> {
    let st = open(bytes)?;
    let meta = read_metadata(bytes)?;
    let generator = read_mlp(&st, &meta, "generator", Output::Sigmoid)?;
    let discriminator = read_mlp(&st, &meta, "discriminator", Output::Identity)?;
    if generator.output_size() != IMAGE_PIXELS
        || discriminator.plain_inputs() != IMAGE_PIXELS
        || discriminator.output_size() != 1
        || discriminator.label_inputs != generator.label_inputs
    {
        return Err(CheckpointError::Shape {
            name: "generator / discriminator".into(),
            found: vec![
                generator.output_size(),
                discriminator.plain_inputs(),
                discriminator.output_size(),
            ],
            expected: vec![IMAGE_PIXELS, IMAGE_PIXELS, 1],
        });
    }
    Ok(Gan {
        generator,
        discriminator,
    })
}

/// The network stored under `prefix`: its layers `{prefix}.0.weight`, `{prefix}.2.weight`,
/// ... as far as they go (their shapes give the sizes), its nonlinearities from the metadata
/// (the tutorial's ReLU and `default_output` when the file does not name them).
fn read_mlp(
    st: &SafeTensors,
    meta: &BTreeMap<String, String>,
    prefix: &str,
    default_output: Output,
) -> Result<Mlp, CheckpointError> {
    let mut sizes = Vec::new();
    for l in 0.. {
        let name = format!("{prefix}.{}.weight", 2 * l);
        let Ok(t) = st.tensor(&name) else { break };
        let [out, input] = t.shape()[..] else {
            return Err(CheckpointError::Shape {
                name,
                found: t.shape().to_vec(),
                expected: vec![0, 0],
            });
        };
        if l == 0 {
            sizes.push(input);
        } else if sizes[l] != input {
            return Err(CheckpointError::Shape {
                name,
                found: vec![out, input],
                expected: vec![out, sizes[l]],
            });
        }
        sizes.push(out);
    }
    if sizes.is_empty() {
        return Err(CheckpointError::Missing(format!("{prefix}.0.weight")));
    }
    let key = |k: &str| meta.get(&format!("{prefix}.{k}"));
    let hidden_act = match key("activation") {
        None => Activation::Relu,
        Some(a) => Activation::from_name(a)
            .ok_or_else(|| CheckpointError::Metadata(format!("{prefix}.activation")))?,
    };
    let output = match key("output") {
        None => default_output,
        Some(o) => Output::from_name(o)
            .ok_or_else(|| CheckpointError::Metadata(format!("{prefix}.output")))?,
    };
    let label_inputs = match key("label_inputs") {
        None => 0,
        Some(n) => n
            .parse()
            .ok()
            .filter(|&n: &usize| n < sizes[0])
            .ok_or_else(|| CheckpointError::Metadata(format!("{prefix}.label_inputs")))?,
    };
    let mut mlp = Mlp::zeros(&sizes, hidden_act, output);
    mlp.label_inputs = label_inputs;
    if prefix == "generator" {
        mlp.label_counts = read_label_counts(meta, label_inputs)?;
    }
    load_into(&Cpu::default(), st, prefix, &mlp.slots(), &mut mlp.params)?;
    Ok(mlp)
}

/// Only the generator of a `.safetensors` file: its `generator.{0,2,...}.weight` and `.bias`
/// tensors in PyTorch's `nn.Sequential(Linear, Act, ..., Linear)` layout (`generator.0.weight`
/// is `[hidden, noise]`, the last `[784, hidden]`), ReLU and a sigmoid output unless its
/// metadata names others. Other tensors are ignored, so a run's `model.safetensors` works as
/// well as another program's exported generator.
pub fn decode_generator(bytes: &[u8]) -> Result<Mlp, CheckpointError> {
    let st = open(bytes)?;
    let g = read_mlp(&st, &read_metadata(bytes)?, "generator", Output::Sigmoid)?;
    if g.output_size() != IMAGE_PIXELS {
        return Err(CheckpointError::Shape {
            name: format!("generator.{}.weight", 2 * (g.layers() - 1)),
            found: vec![g.output_size()],
            expected: vec![IMAGE_PIXELS],
        });
    }
    Ok(g)
}

/// The weights in a `.safetensors` file.
pub fn load_gan(path: &Path) -> Result<Gan, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|cause| CheckpointError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    decode_gan(&bytes)
}

/// A safetensors file's tensors, refusing any with a zero dimension: such a tensor holds no
/// data, yet its other dimensions would size the networks read from it (a noise width or a
/// channel count of billions in a file of a few bytes). With every dimension at least 1, a
/// tensor's shape is backed by its bytes, which safetensors checks.
fn open(bytes: &[u8]) -> Result<SafeTensors<'_>, CheckpointError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let mut names = st.names();
    names.sort();
    for name in names {
        let shape = st
            .tensor(name)
            .map(|t| t.shape().to_vec())
            .unwrap_or_default();
        if shape.contains(&0) {
            return Err(CheckpointError::Format(format!(
                "tensor `{name}` has shape {shape:?}: a zero dimension holds no data, yet its \
                 other dimensions would size the networks"
            )));
        }
    }
    Ok(st)
}

/// The metadata of a safetensors file (empty if it has none).
pub fn read_metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>, CheckpointError> {
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
    Ok(meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// Loads the tensors `<prefix>.<slot>` into `values` (laid out as `slots` say) with dfdx.
fn load_into(
    dev: &Cpu,
    st: &SafeTensors,
    prefix: &str,
    slots: &[ParamSlot],
    values: &mut [f32],
) -> Result<(), CheckpointError> {
    for slot in slots.iter().cloned() {
        let name = format!("{prefix}.{}", slot.name);
        let found = st
            .tensor(&name)
            .map_err(|_| CheckpointError::Missing(name.clone()))?;
        if found.shape() != slot.shape.as_slice() || found.dtype() != Dtype::F32 {
            return Err(CheckpointError::Shape {
                name,
                found: found.shape().to_vec(),
                expected: slot.shape,
            });
        }
        let out = &mut values[slot.range.clone()];
        let loaded = match slot.shape[..] {
            [a, b, c, d] => {
                let mut t: Tensor<(usize, usize, usize, usize), f32, Cpu> =
                    dev.zeros_like(&(a, b, c, d));
                t.load_safetensor(st, &name).map(|_| t.copy_into(out))
            }
            [r, c] => {
                let mut t: Tensor<(usize, usize), f32, Cpu> = dev.zeros_like(&(r, c));
                t.load_safetensor(st, &name).map(|_| t.copy_into(out))
            }
            _ => {
                let mut t: Tensor<(usize,), f32, Cpu> = dev.zeros_like(&(slot.shape[0],));
                t.load_safetensor(st, &name).map(|_| t.copy_into(out))
            }
        };
        loaded.map_err(|e| CheckpointError::Format(format!("{name}: {e:?}")))?;
    }
    Ok(())
}

const ARCH_KEY: &str = "architecture";

/// A DCGAN's metadata: its architecture and the nonlinearities the shapes do not say.
fn dcgan_metadata(gan: &Dcgan) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(ARCH_KEY.into(), "dcgan".into());
    m.insert("generator.activation".into(), gan.generator.act.name());
    m.insert(
        "generator.output".into(),
        gan.generator.output.name().into(),
    );
    m.insert(
        "discriminator.activation".into(),
        gan.discriminator.act.name(),
    );
    insert_label_counts(&mut m, &gan.generator.label_counts);
    m
}

/// Whether a file's metadata names the DCGAN architecture (files without the key hold MLPs).
fn is_dcgan(meta: &BTreeMap<String, String>) -> Result<bool, CheckpointError> {
    match meta.get(ARCH_KEY).map(String::as_str) {
        None | Some("mlp") => Ok(false),
        Some("dcgan") => Ok(true),
        Some(_) => Err(CheckpointError::Metadata(ARCH_KEY.into())),
    }
}

/// The weights in a `.safetensors` file, of either architecture.
pub fn load_model(path: &Path) -> Result<Model, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|cause| CheckpointError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    decode_model(&bytes)
}

/// Only the generator of a `.safetensors` file: a DCGAN's if its metadata says so,
/// otherwise an MLP's as [`decode_generator`] reads it.
pub fn decode_any_generator(bytes: &[u8]) -> Result<Generator, CheckpointError> {
    if is_dcgan(&read_metadata(bytes)?)? {
        decode_dcgan_networks(bytes).map(|gan| Generator::Dcgan(gan.generator))
    } else {
        decode_generator(bytes).map(Generator::Mlp)
    }
}

/// The shape of tensor `name`, which must have `rank` dimensions.
fn shape_of(st: &SafeTensors, name: &str, rank: usize) -> Result<Vec<usize>, CheckpointError> {
    let t = st
        .tensor(name)
        .map_err(|_| CheckpointError::Missing(name.into()))?;
    if t.shape().len() != rank {
        return Err(CheckpointError::Shape {
            name: name.into(),
            found: t.shape().to_vec(),
            expected: vec![0; rank],
        });
    }
    Ok(t.shape().to_vec())
}

/// A DCGAN's networks: widths from the tensors' shapes, nonlinearities from the metadata.
fn decode_dcgan_networks(bytes: &[u8]) -> Result<Dcgan, CheckpointError> {
    let st = open(bytes)?;
    let meta = read_metadata(bytes)?;
    let fc = shape_of(&st, "generator.fc.weight", 2)?;
    let up1 = shape_of(&st, "generator.up1.weight", 4)?;
    let conv2 = shape_of(&st, "discriminator.conv2.weight", 4)?;
    let activation = |key: &str| {
        meta.get(key)
            .and_then(|a| Activation::from_name(a))
            .ok_or_else(|| CheckpointError::Metadata(key.into()))
    };
    let output = meta
        .get("generator.output")
        .and_then(|o| Output::from_name(o))
        .ok_or_else(|| CheckpointError::Metadata("generator.output".into()))?;
    // A conditional GAN's D has `embed.weight` [classes, features]; its G's input rows end
    // in the label one-hot, so `fc.weight` is [C1 x 49, noise + classes].
    let classes = match st.tensor("discriminator.embed.weight") {
        Ok(_) => shape_of(&st, "discriminator.embed.weight", 2)?[0],
        Err(_) => 0,
    };
    if fc[1] <= classes {
        return Err(CheckpointError::Shape {
            name: "generator.fc.weight".into(),
            found: fc.clone(),
            expected: vec![fc[0], classes + 1],
        });
    }
    // Tensors that share a dimension agree before anything is allocated from them, so every
    // buffer is no larger than a tensor the file holds.
    let agree = |name: &str, found: &[usize], expected: Vec<usize>| {
        if found == expected.as_slice() {
            Ok(())
        } else {
            Err(CheckpointError::Shape {
                name: name.into(),
                found: found.to_vec(),
                expected,
            })
        }
    };
    agree(
        "generator.fc.weight",
        &fc,
        vec![up1[0].saturating_mul(SEED_PIXELS), fc[1]],
    )?;
    let mut generator = ConvGenerator::zeros(
        fc[1] - classes,
        classes,
        [up1[0], up1[1]],
        activation("generator.activation")?,
        output,
    );
    generator.label_counts = read_label_counts(&meta, classes)?;
    // PyTorch's names say it: a normalised D has `bn2.weight`, one without has `conv2.bias`.
    let batch_norm = st.tensor("discriminator.bn2.weight").is_ok();
    // A D with a dense hidden layer (`model.d_dense`) has `dense.weight` [units, features].
    let features = conv2[0].saturating_mul(SEED_PIXELS);
    let dense = match st.tensor("discriminator.dense.weight") {
        Ok(_) => {
            let shape = shape_of(&st, "discriminator.dense.weight", 2)?;
            agree(
                "discriminator.dense.weight",
                &shape,
                vec![shape[0], features],
            )?;
            shape[0]
        }
        Err(_) => 0,
    };
    if classes > 0 {
        let shape = shape_of(&st, "discriminator.embed.weight", 2)?;
        let fc_inputs = if dense > 0 { dense } else { features };
        agree(
            "discriminator.embed.weight",
            &shape,
            vec![classes, fc_inputs],
        )?;
    }
    let mut discriminator = ConvDiscriminator::zeros(
        [conv2[1], conv2[0]],
        activation("discriminator.activation")?,
        batch_norm,
        dense,
        classes,
    );
    let dev = Cpu::default();
    load_into(
        &dev,
        &st,
        "generator",
        &generator.slots(),
        &mut generator.params,
    )?;
    let running = generator.running_slots();
    load_into(&dev, &st, "generator", &running, &mut generator.running)?;
    let slots = discriminator.slots();
    load_into(
        &dev,
        &st,
        "discriminator",
        &slots,
        &mut discriminator.params,
    )?;
    Ok(Dcgan {
        generator,
        discriminator,
    })
}

/// Records the dropout stream's word position. Only runs with dropout draw from that
/// stream; others' checkpoints stay as they were, without the key.
fn insert_dropout_pos(metadata: &mut BTreeMap<String, String>, pos: u128) {
    if pos > 0 {
        metadata.insert("dropout_pos".into(), pos.to_string());
    }
}

/// The dropout stream's word position ([`insert_dropout_pos`]): 0 when the key is absent.
fn dropout_pos(metadata: &BTreeMap<String, String>) -> Result<u128, CheckpointError> {
    match metadata.get("dropout_pos") {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| CheckpointError::Metadata("dropout_pos".into())),
    }
}

/// What checkpoints need of an architecture's networks beyond [`Networks`]: every tensor of
/// its weights, the metadata the tensors' shapes do not say, and how to read them back. With
/// it, one encoder and one decoder of weights and training states serve every architecture.
pub trait Stored: Networks + Sized {
    /// Every tensor of the weights as `(prefix, slots, values)`, G's first (a DCGAN G's
    /// running statistics beside its parameters).
    fn weights(&self) -> Vec<(&'static str, Vec<ParamSlot>, &[f32])>;
    /// The architecture and nonlinearities, and a self-conditioned G's cluster sizes.
    fn metadata(&self) -> BTreeMap<String, String>;
    /// Reads the networks from a file written by [`encode_weights`] (or a training state).
    fn decode(bytes: &[u8]) -> Result<Self, CheckpointError>;
}

impl Stored for Gan {
    fn weights(&self) -> Vec<(&'static str, Vec<ParamSlot>, &[f32])> {
        let (g, d) = (&self.generator, &self.discriminator);
        vec![
            ("generator", g.slots(), &g.params),
            ("discriminator", d.slots(), &d.params),
        ]
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        mlp_metadata(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        decode_mlp_networks(bytes)
    }
}

impl Stored for Dcgan {
    fn weights(&self) -> Vec<(&'static str, Vec<ParamSlot>, &[f32])> {
        let (g, d) = (&self.generator, &self.discriminator);
        vec![
            ("generator", g.slots(), &g.params),
            ("generator", g.running_slots(), &g.running),
            ("discriminator", d.slots(), &d.params),
        ]
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        dcgan_metadata(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        decode_dcgan_networks(bytes)
    }
}

/// The tensors of the networks' weights.
fn weight_entries<N: Stored>(gan: &N) -> Vec<Entry> {
    gan.weights()
        .into_iter()
        .flat_map(|(prefix, slots, values)| entries_for(prefix, slots, values))
        .collect()
}

/// The weights of both networks (a run's `model.safetensors`).
pub fn encode_weights<N: Stored>(gan: &N) -> Vec<u8> {
    let mut metadata = gan.metadata();
    metadata.insert(FORMAT_KEY.into(), WEIGHTS_FORMAT.into());
    serialize(&weight_entries(gan), metadata)
}

/// A full training state plus `extra` metadata of the caller's (e.g. the data order): the
/// weights, each Adam's moments under `adam.<net>.exp_avg(_sq).<param>` and its step count,
/// G's moving average under `ema.generator.<param>`, the streams' positions.
pub fn encode_state<N: Stored>(
    state: &TrainerState<N>,
    extra: &BTreeMap<String, String>,
) -> Vec<u8> {
    let gan = &state.gan;
    let mut entries = weight_entries(gan);
    let [g_slots, d_slots] = gan.slots();
    for (net, slots, adam) in [
        ("generator", &g_slots, &state.adam_g),
        ("discriminator", &d_slots, &state.adam_d),
    ] {
        entries.extend(entries_for(
            &format!("adam.{net}.exp_avg"),
            slots.clone(),
            &adam.m,
        ));
        entries.extend(entries_for(
            &format!("adam.{net}.exp_avg_sq"),
            slots.clone(),
            &adam.v,
        ));
    }
    if let Some(ema) = &state.g_ema {
        entries.extend(entries_for("ema.generator", g_slots, ema));
    }
    let mut metadata = extra.clone();
    metadata.extend(gan.metadata());
    metadata.insert(FORMAT_KEY.into(), STATE_FORMAT.into());
    metadata.insert("steps_done".into(), state.steps_done.to_string());
    metadata.insert("noise_pos".into(), state.noise_pos.to_string());
    insert_dropout_pos(&mut metadata, state.dropout_pos);
    metadata.insert("adam.generator.step".into(), state.adam_g.t.to_string());
    metadata.insert("adam.discriminator.step".into(), state.adam_d.t.to_string());
    serialize(&entries, metadata)
}

/// Reads a state written by [`encode_state`]; `adam` supplies the hyperparameters.
pub fn decode_state<N: Stored>(
    bytes: &[u8],
    adam: AdamConfig,
) -> Result<(TrainerState<N>, BTreeMap<String, String>), CheckpointError> {
    let metadata = read_metadata(bytes)?;
    if metadata.get(FORMAT_KEY).map(String::as_str) != Some(STATE_FORMAT) {
        return Err(CheckpointError::Metadata(FORMAT_KEY.into()));
    }
    let gan = N::decode(bytes)?;
    let st = open(bytes)?;
    let dev = Cpu::default();
    let number = |key: &str| -> Result<u128, CheckpointError> {
        metadata
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| CheckpointError::Metadata(key.into()))
    };
    let [g_slots, d_slots] = gan.slots();
    let [g_len, d_len] = gan.params().map(<[f32]>::len);
    let mut adams = Vec::new();
    for (net, slots, len) in [
        ("generator", &g_slots, g_len),
        ("discriminator", &d_slots, d_len),
    ] {
        let mut a = Adam::new(adam, len);
        load_into(&dev, &st, &format!("adam.{net}.exp_avg"), slots, &mut a.m)?;
        load_into(
            &dev,
            &st,
            &format!("adam.{net}.exp_avg_sq"),
            slots,
            &mut a.v,
        )?;
        a.t = number(&format!("adam.{net}.step"))? as u64;
        adams.push(a);
    }
    let g_ema = if st.names().iter().any(|n| n.starts_with("ema.generator.")) {
        let mut ema = vec![0.0; g_len];
        load_into(&dev, &st, "ema.generator", &g_slots, &mut ema)?;
        Some(ema)
    } else {
        None
    };
    let adam_d = adams.pop().expect("two optimisers");
    let adam_g = adams.pop().expect("two optimisers");
    let state = TrainerState {
        noise_pos: number("noise_pos")?,
        dropout_pos: dropout_pos(&metadata)?,
        g_ema,
        steps_done: number("steps_done")? as u64,
        gan,
        adam_g,
        adam_d,
    };
    Ok((state, metadata))
}

/// The weights of a perceptron GAN (the tutorial's `model.safetensors`).
pub fn encode_gan(gan: &Gan) -> Vec<u8> {
    encode_weights(gan)
}

/// Reads perceptrons written by [`encode_gan`] (or the weights inside a training state).
pub fn decode_gan(bytes: &[u8]) -> Result<Gan, CheckpointError> {
    Gan::decode(bytes)
}

/// The weights of a run's networks (its `model.safetensors`).
pub fn encode_model(model: &Model) -> Vec<u8> {
    match model {
        Model::Mlp(gan) => encode_weights(gan),
        Model::Dcgan(gan) => encode_weights(gan),
    }
}

/// Reads weights written by [`encode_model`] (or those inside a training state).
pub fn decode_model(bytes: &[u8]) -> Result<Model, CheckpointError> {
    if is_dcgan(&read_metadata(bytes)?)? {
        Dcgan::decode(bytes).map(Model::Dcgan)
    } else {
        Gan::decode(bytes).map(Model::Mlp)
    }
}

/// A training state of either architecture plus `extra` metadata of the caller's.
pub fn encode_any_state(state: &AnyState, extra: &BTreeMap<String, String>) -> Vec<u8> {
    match state {
        AnyState::Mlp(s) => encode_state(s, extra),
        AnyState::Dcgan(s) => encode_state(s, extra),
    }
}

/// Reads a state written by [`encode_any_state`]; `adam` supplies the hyperparameters.
pub fn decode_any_state(
    bytes: &[u8],
    adam: AdamConfig,
) -> Result<(AnyState, BTreeMap<String, String>), CheckpointError> {
    if is_dcgan(&read_metadata(bytes)?)? {
        decode_state(bytes, adam).map(|(s, m)| (AnyState::Dcgan(s), m))
    } else {
        decode_state(bytes, adam).map(|(s, m)| (AnyState::Mlp(s), m))
    }
}
