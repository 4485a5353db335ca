//! The perceptron GAN's networks, each held as one flat `f32` buffer (`crate::layers::slots`).
//!
//! A network is a perceptron of any depth: `input -> hidden layers -> output`, the same
//! nonlinearity after every hidden layer and its own at the output. Weights use PyTorch's
//! `nn.Linear` layout, `[out, in]` row-major, and checkpoint names follow
//! `nn.Sequential(Linear, Act, Linear, Act, ..., Linear)`: layer `l`'s tensors are
//! `{2l}.weight` and `{2l}.bias` (the tutorial's `0.*` and `2.*`).

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::layers::activation::{Activation, Output};
use crate::layers::slots::ParamSlot;
use crate::train::config::{Arch, ModelConfig};
use crate::train::step::Networks;

/// A perceptron: `sizes = [input, hidden..., output]`, flat parameters in layer order
/// (`w0 [sizes[1], sizes[0]]`, `b0`, `w1`, `b1`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    pub sizes: Vec<usize>,
    pub hidden_act: Activation,
    pub output: Output,
    pub params: Vec<f32>,
    /// How many of the last inputs are a one-hot class label (a conditional GAN's; 0: none).
    pub label_inputs: usize,
    /// A generator's odds of each label when it is sampled, in proportion
    /// ([`crate::ModelConfig::label_counts`]; empty: every label equally often).
    pub label_counts: Vec<u32>,
}

impl Mlp {
    /// Weights from N(0, std), biases zero, drawn in layout order (layer 0's weights first).
    pub fn init(
        sizes: &[usize],
        hidden_act: Activation,
        output: Output,
        std: f32,
        rng: &mut impl Rng,
    ) -> Mlp {
        let mut mlp = Mlp::zeros(sizes, hidden_act, output);
        let normal = Normal::new(0.0f32, std).expect("init_std is finite and >= 0");
        for (w, _) in layout(sizes) {
            for p in &mut mlp.params[w] {
                *p = normal.sample(rng);
            }
        }
        mlp
    }

    pub fn zeros(sizes: &[usize], hidden_act: Activation, output: Output) -> Mlp {
        assert!(sizes.len() >= 2, "a network has an input and an output");
        let len = layer_ranges(sizes, sizes.len() - 2).1.end;
        Mlp {
            sizes: sizes.to_vec(),
            hidden_act,
            output,
            params: vec![0.0; len],
            label_inputs: 0,
            label_counts: Vec::new(),
        }
    }

    pub fn input(&self) -> usize {
        self.sizes[0]
    }

    /// Inputs that are not the label: a generator's noise length, a discriminator's pixels.
    pub fn plain_inputs(&self) -> usize {
        self.sizes[0] - self.label_inputs
    }

    pub fn output_size(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// Linear layers (hidden layers plus the output layer).
    pub fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Layer `l`'s weights, `[sizes[l + 1], sizes[l]]` row-major.
    pub fn weight(&self, l: usize) -> &[f32] {
        &self.params[layer_ranges(&self.sizes, l).0]
    }

    /// Layer `l`'s biases.
    pub fn bias(&self, l: usize) -> &[f32] {
        &self.params[layer_ranges(&self.sizes, l).1]
    }

    /// The tensors in buffer order, named like PyTorch's `nn.Sequential`.
    pub fn slots(&self) -> Vec<ParamSlot> {
        layout(&self.sizes)
            .into_iter()
            .enumerate()
            .flat_map(|(l, (w, b))| {
                let (i, o) = (self.sizes[l], self.sizes[l + 1]);
                [
                    ParamSlot {
                        name: format!("{}.weight", 2 * l),
                        shape: vec![o, i],
                        range: w,
                    },
                    ParamSlot {
                        name: format!("{}.bias", 2 * l),
                        shape: vec![o],
                        range: b,
                    },
                ]
            })
            .collect()
    }
}

/// Where layer `l`'s weights and biases lie in the flat buffer of an MLP of `sizes` (computed,
/// not allocated: the training step asks for it many times a step).
fn layer_ranges(sizes: &[usize], l: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let start: usize = sizes[..l + 1]
        .windows(2)
        .map(|io| io[0] * io[1] + io[1])
        .sum();
    let w = start..start + sizes[l] * sizes[l + 1];
    let b = w.end..w.end + sizes[l + 1];
    (w, b)
}

/// Where each layer's weights and biases lie in the flat buffer of an MLP of `sizes`.
pub(crate) fn layout(sizes: &[usize]) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    (0..sizes.len() - 1)
        .map(|l| layer_ranges(sizes, l))
        .collect()
}

/// A flat buffer laid out like an MLP of `sizes`, split into each layer's
/// `(weights, biases)`, from either end, without allocating.
pub(crate) struct Layers<'a, 's> {
    sizes: &'s [usize],
    rest: &'a mut [f32],
}

/// The layers of `buf`, laid out like an MLP of `sizes`.
pub(crate) fn split_layers_mut<'a, 's>(sizes: &'s [usize], buf: &'a mut [f32]) -> Layers<'a, 's> {
    Layers { sizes, rest: buf }
}

impl<'a> Iterator for Layers<'a, '_> {
    type Item = (&'a mut [f32], &'a mut [f32]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.sizes.len() < 2 {
            return None;
        }
        let (i, o) = (self.sizes[0], self.sizes[1]);
        let rest = std::mem::take(&mut self.rest);
        let (w, rest) = rest.split_at_mut(i * o);
        let (b, rest) = rest.split_at_mut(o);
        self.rest = rest;
        self.sizes = &self.sizes[1..];
        Some((w, b))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.sizes.len().saturating_sub(1);
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Layers<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let n = self.sizes.len();
        if n < 2 {
            return None;
        }
        let (i, o) = (self.sizes[n - 2], self.sizes[n - 1]);
        let rest = std::mem::take(&mut self.rest);
        let at = rest.len() - (i * o + o);
        let (rest, layer) = rest.split_at_mut(at);
        let (w, b) = layer.split_at_mut(i * o);
        self.rest = rest;
        self.sizes = &self.sizes[..n - 1];
        Some((w, b))
    }
}

impl ExactSizeIterator for Layers<'_, '_> {}

/// The generator (`noise -> ... -> 784`) and discriminator (`784 -> ... -> 1` logit).
#[derive(Debug, Clone, PartialEq)]
pub struct Gan {
    pub generator: Mlp,
    pub discriminator: Mlp,
}

impl Gan {
    /// Initial weights; `rng` should be the run's [`crate::Stream::Init`] stream. Generator
    /// first, as the tutorial creates its variables.
    pub fn init(cfg: &ModelConfig, rng: &mut impl Rng) -> Gan {
        let (g, d) = (cfg.generator_sizes(), cfg.discriminator_sizes());
        let generator = Mlp::init(&g, cfg.g_act, cfg.g_output, cfg.init_std, rng);
        let discriminator = Mlp::init(&d, cfg.d_act, Output::Identity, cfg.init_std, rng);
        Gan {
            generator,
            discriminator,
        }
        .with_classes(cfg)
    }

    pub fn zeros(cfg: &ModelConfig) -> Gan {
        Gan {
            generator: Mlp::zeros(&cfg.generator_sizes(), cfg.g_act, cfg.g_output),
            discriminator: Mlp::zeros(&cfg.discriminator_sizes(), cfg.d_act, Output::Identity),
        }
        .with_classes(cfg)
    }

    /// Marks the last `cfg.classes` inputs of both networks as the one-hot label, and gives
    /// G its odds of each.
    fn with_classes(mut self, cfg: &ModelConfig) -> Gan {
        self.generator.label_inputs = cfg.classes;
        self.generator.label_counts.clone_from(&cfg.label_counts);
        self.discriminator.label_inputs = cfg.classes;
        self
    }

    /// Classes of a conditional GAN (0: unconditional).
    pub fn classes(&self) -> usize {
        self.generator.label_inputs
    }
}

impl Networks for Gan {
    fn slots(&self) -> [Vec<ParamSlot>; 2] {
        [self.generator.slots(), self.discriminator.slots()]
    }

    fn params(&self) -> [&[f32]; 2] {
        [&self.generator.params, &self.discriminator.params]
    }

    /// The model config these networks are (for checkpoints read without their spec).
    fn config(&self) -> ModelConfig {
        let (g, d) = (&self.generator, &self.discriminator);
        ModelConfig {
            noise_dim: g.plain_inputs(),
            classes: g.label_inputs,
            label_counts: g.label_counts.clone(),
            g_hidden: g.sizes[1..g.sizes.len() - 1].to_vec(),
            d_hidden: d.sizes[1..d.sizes.len() - 1].to_vec(),
            g_act: g.hidden_act,
            d_act: d.hidden_act,
            g_output: g.output,
            init_std: ModelConfig::default().init_std,
            d_dropout: ModelConfig::default().d_dropout,
            arch: Arch::Mlp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorials_layout_and_names_are_kept() {
        let m = Mlp::zeros(&[128, 256, 784], Activation::Relu, Output::Sigmoid);
        let names: Vec<(String, Vec<usize>)> =
            m.slots().into_iter().map(|s| (s.name, s.shape)).collect();
        assert_eq!(
            names,
            [
                ("0.weight".to_string(), vec![256, 128]),
                ("0.bias".into(), vec![256]),
                ("2.weight".into(), vec![784, 256]),
                ("2.bias".into(), vec![784]),
            ]
        );
        assert_eq!(m.params.len(), 128 * 256 + 256 + 256 * 784 + 784);
        let deep = Mlp::zeros(&[10, 4, 3, 1], Activation::Tanh, Output::Identity);
        assert_eq!(deep.layers(), 3);
        assert_eq!(deep.slots()[4].name, "4.weight");
        assert_eq!(deep.weight(1).len(), 12);
        assert_eq!(deep.bias(2).len(), 1);
        let flat = Mlp::zeros(&[10, 1], Activation::Relu, Output::Identity);
        assert_eq!(flat.params.len(), 11);
    }

    #[test]
    fn layers_split_from_either_end() {
        let sizes = [3, 2, 4, 1];
        let mut buf: Vec<f32> = (0..Mlp::zeros(&sizes, Activation::Relu, Output::Identity)
            .params
            .len())
            .map(|i| i as f32)
            .collect();
        let want: Vec<(Vec<f32>, Vec<f32>)> = layout(&sizes)
            .into_iter()
            .map(|(w, b)| (buf[w].to_vec(), buf[b].to_vec()))
            .collect();
        let fwd: Vec<(Vec<f32>, Vec<f32>)> = split_layers_mut(&sizes, &mut buf)
            .map(|(w, b)| (w.to_vec(), b.to_vec()))
            .collect();
        assert_eq!(fwd, want);
        let mut back: Vec<(Vec<f32>, Vec<f32>)> = split_layers_mut(&sizes, &mut buf)
            .rev()
            .map(|(w, b)| (w.to_vec(), b.to_vec()))
            .collect();
        back.reverse();
        assert_eq!(back, want);
        let mut it = split_layers_mut(&sizes, &mut buf);
        assert_eq!(it.len(), 3);
        let last = it.next_back().unwrap();
        assert_eq!(last.0.len(), 4);
        assert_eq!(it.len(), 2);
    }
}
