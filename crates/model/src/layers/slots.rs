//! A network's parameters as one flat `f32` buffer, so the optimiser runs over a single slice
//! and the passes read weights without copying: the named tensors in it ([`ParamSlot`],
//! what checkpoints are written from), and the buffer cut into its parts.

/// One named tensor of a network: its name suffix in a checkpoint, its shape and its place in
/// the network's flat parameter buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSlot {
    pub name: String,
    pub shape: Vec<usize>,
    pub range: std::ops::Range<usize>,
}

/// Named tensors laid end to end, in order.
pub fn laid_end_to_end(tensors: &[(&str, Vec<usize>)]) -> Vec<ParamSlot> {
    let mut start = 0;
    tensors
        .iter()
        .map(|(name, shape)| {
            let len: usize = shape.iter().product();
            let slot = ParamSlot {
                name: name.to_string(),
                shape: shape.clone(),
                range: start..start + len,
            };
            start += len;
            slot
        })
        .collect()
}

/// Splits `buf` into consecutive parts of the given lengths.
pub(crate) fn split<const N: usize>(mut buf: &mut [f32], lens: [usize; N]) -> [&mut [f32]; N] {
    std::array::from_fn(|i| {
        let (part, rest) = std::mem::take(&mut buf).split_at_mut(lens[i]);
        buf = rest;
        part
    })
}

/// The same for reading.
pub(crate) fn split_ref<const N: usize>(mut buf: &[f32], lens: [usize; N]) -> [&[f32]; N] {
    std::array::from_fn(|i| {
        let (part, rest) = buf.split_at(lens[i]);
        buf = rest;
        part
    })
}
