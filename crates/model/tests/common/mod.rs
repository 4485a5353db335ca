//! Helpers the oracle tests share (each test file compiles its own copy, using what it needs).
#![allow(dead_code)]

use std::collections::BTreeMap;

/// `max |got - want|` relative to `max |want|`.
pub fn rel_max_diff(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want
        .iter()
        .fold(0.0f64, |m, &v| m.max(v.abs() as f64))
        .max(1e-30);
    let worst = got
        .iter()
        .zip(want)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .fold(0.0, f64::max);
    worst / scale
}

/// Every tensor of a `.safetensors` file holding little-endian f32s, by name.
pub fn f32_tensors(bytes: &[u8]) -> BTreeMap<String, Vec<f32>> {
    let st = safetensors::SafeTensors::deserialize(bytes).expect("a safetensors file");
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, data)
        })
        .collect()
}

/// The fixtures' inputs: `((i * 7919 + salt * 104729) mod 2001) / 1000 - 1`, scaled and
/// offset, exact in f64 here and in the scripts that wrote the fixtures.
pub fn det(len: usize, salt: usize, scale: f64, offset: f64) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let v = ((i * 7919 + salt * 104729) % 2001) as f64 / 1000.0 - 1.0;
            (v * scale + offset) as f32
        })
        .collect()
}
