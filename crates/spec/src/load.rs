//! Reading a spec file and `--set` overrides, with errors that say where and what to do.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::{ArchSpec, LossSpec, ModelSpec, Spec, KEYS};

/// A spec problem, always naming the file (with line) or the `--set` argument.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read spec {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{origin}: YAML syntax error{location}: {message}")]
    Syntax {
        origin: String,
        location: String,
        message: String,
    },
    #[error("{origin}: unknown key `{key}`{hint}")]
    UnknownKey {
        origin: String,
        key: String,
        hint: String,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Reads `path`, applies `overrides` (`key=value`) and checks the result.
pub fn load_spec(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SpecError::Read {
        path: path.display().to_string(),
        cause,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    parse_spec(&text, &path.display().to_string(), &stem, overrides)
}

/// A resolved spec's YAML as this version writes it: keys added since `yaml` was written
/// appear with their defaults, so specs from older runs compare with today's by content.
/// `None` if it does not parse.
pub fn normalized_yaml(yaml: &str) -> Option<String> {
    serde_yaml::from_str::<Spec>(yaml).ok().map(|s| s.to_yaml())
}

/// How deep `[...]` and `{...}` may nest in a spec. A spec needs two levels (a sweep over
/// layer lists); the YAML parser takes time growing with the square of the depth before its
/// own limit refuses a deeper text (100,000 levels: 40 s).
pub const MAX_NESTING: usize = 32;

/// Refuses flow collections (`[`, `{`) nested deeper than [`MAX_NESTING`] in `text`, with the
/// line where the limit is passed, in one pass over the text (quoted strings and comments
/// are skipped as YAML reads them).
fn check_nesting(text: &str) -> Result<(), (usize, String)> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
            comment = false;
        } else if comment {
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if q == '"' && c == '\\' {
                chars.next();
            }
        } else {
            match c {
                '"' | '\'' => quote = Some(c),
                '#' if previous.is_whitespace() => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err((
                            line,
                            format!("lists or sections nested more than {MAX_NESTING} deep"),
                        ));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        previous = c;
    }
    Ok(())
}

/// Parses spec text; `origin` names it in errors and `default_name` is used when it has no `name`.
pub fn parse_spec(
    text: &str,
    origin: &str,
    default_name: &str,
    overrides: &[String],
) -> Result<Spec, SpecError> {
    // A UTF-8 byte-order mark, as some editors write one, is not part of the YAML.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_nesting(text).map_err(|(line, message)| SpecError::Syntax {
        origin: origin.to_string(),
        location: format!(" at line {line}"),
        message,
    })?;
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| SpecError::Syntax {
        origin: origin.to_string(),
        location: e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default(),
        message: strip_location(&e.to_string()),
    })?;
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    if !value.is_mapping() {
        return Err(SpecError::Invalid {
            origin: origin.to_string(),
            message: "a spec is a mapping of keys such as `seed: 1` and `train:`".into(),
        });
    }
    rename_old_keys(&mut value, text, origin)?;
    check_keys(&value, &schema(), "", &|key| {
        let line = line_of(text, key)
            .map(|l| format!(" line {l}"))
            .unwrap_or_default();
        format!("{origin}{line}")
    })?;
    // Types of the file alone first, so errors carry the file's line and column.
    let in_file = serde_yaml::from_str::<Spec>(text).map_err(|e| type_error(origin, &e))?;
    if let Some(sweep) = &in_file.sweep {
        check_sweep(sweep, &|key| {
            let line = line_of(text, "sweep")
                .and_then(|start| {
                    text.lines()
                        .enumerate()
                        .skip(start)
                        .find(|(_, l)| l.trim_start().starts_with(&format!("{key}:")))
                        .map(|(i, _)| i + 1)
                })
                .map(|l| format!(" line {l}"))
                .unwrap_or_default();
            format!("{origin}{line}")
        })?;
    }
    for o in overrides {
        apply_override(&mut value, o)?;
        serde_yaml::from_value::<Spec>(value.clone())
            .map_err(|e| type_error(&format!("--set {o}"), &e))?;
    }
    let mut spec: Spec = serde_yaml::from_value(value).map_err(|e| type_error(origin, &e))?;
    if spec.name.is_empty() {
        spec.name = default_name.to_string();
    }
    validate(&spec).map_err(|message| SpecError::Invalid {
        origin: if overrides.is_empty() {
            origin.to_string()
        } else {
            format!("{origin} with --set {}", overrides.join(" --set "))
        },
        message,
    })?;
    Ok(spec)
}

/// One run of a sweep: its place in the grid, its folder name and its full spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    pub index: usize,
    /// `key=value+key=value`, the run directory's name inside the sweep folder.
    pub name: String,
    /// The overrides that make this point, in the sweep's key order.
    pub overrides: Vec<String>,
    pub spec: Spec,
}

/// The runs of a spec's sweep: the Cartesian product of its lists, keys in the order they
/// are written, the last key changing fastest (like nested loops). Each point's spec is the
/// spec without its sweep plus the point's overrides, checked like any spec. A spec without
/// a sweep has no points.
pub fn expand_sweep(spec: &Spec, origin: &str) -> Result<Vec<SweepPoint>, SpecError> {
    let Some(sweep) = &spec.sweep else {
        return Ok(Vec::new());
    };
    check_sweep(sweep, &|_| origin.to_string())?;
    let axes: Vec<(String, Vec<Value>)> = sweep
        .iter()
        .map(|(k, v)| {
            let values = v.as_sequence().expect("checked").clone();
            (k.as_str().expect("checked").to_string(), values)
        })
        .collect();
    let mut base = spec.clone();
    base.sweep = None;
    let base_value = serde_yaml::to_value(&base).expect("a spec serialises");
    let total: usize = axes.iter().map(|(_, v)| v.len()).product();
    let mut points = Vec::with_capacity(total);
    for index in 0..total {
        let mut rest = index;
        let mut picks = vec![0; axes.len()];
        for (a, (_, values)) in axes.iter().enumerate().rev() {
            picks[a] = rest % values.len();
            rest /= values.len();
        }
        let overrides: Vec<String> = axes
            .iter()
            .zip(&picks)
            .map(|((k, values), &i)| format!("{k}={}", yaml_text(&values[i])))
            .collect();
        let name = point_name(&axes, &picks);
        if name.len() > MAX_POINT_NAME {
            return Err(SpecError::Invalid {
                origin: origin.to_string(),
                message: format!(
                    "sweep point {index}'s folder name would be {} bytes, more than the \
                     {MAX_POINT_NAME} a folder name may have ({}...); sweep shorter values",
                    name.len(),
                    name.chars().take(60).collect::<String>()
                ),
            });
        }
        let mut value = base_value.clone();
        for o in &overrides {
            apply_override(&mut value, o)?;
        }
        let origin = format!("{origin} sweep point {name}");
        let point: Spec = serde_yaml::from_value(value).map_err(|e| type_error(&origin, &e))?;
        validate(&point).map_err(|message| SpecError::Invalid { origin, message })?;
        points.push(SweepPoint {
            index,
            name,
            overrides,
            spec: point,
        });
    }
    Ok(points)
}

/// Keys whose values are lists (a sweep over them lists lists).
const LIST_KEYS: [&str; 4] = [
    "model.g_hidden",
    "model.d_hidden",
    "model.g_channels",
    "model.d_channels",
];

/// The sweep's keys are known spec keys (not `name`), each with a non-empty list of distinct
/// plain values (lists of numbers for list keys).
fn check_sweep(sweep: &Mapping, origin: &dyn Fn(&str) -> String) -> Result<(), SpecError> {
    if sweep.is_empty() {
        return Err(SpecError::Invalid {
            origin: origin(""),
            message: "sweep is empty; give it keys with lists of values, e.g. `seed: [1, 2, 3]`"
                .into(),
        });
    }
    for (k, v) in sweep {
        let key = k.as_str().unwrap_or_default().to_string();
        let key = current_name(&key).to_string();
        if key == "name" || !KEYS.iter().any(|d| d.key == key) {
            return Err(SpecError::UnknownKey {
                origin: origin(&key),
                hint: if key == "name" {
                    " (a sweep cannot vary `name`: it names the sweep)".into()
                } else {
                    hint(&key)
                },
                key: format!("sweep.{key}"),
            });
        }
        let Some(values) = v.as_sequence().filter(|s| !s.is_empty()) else {
            return Err(SpecError::Invalid {
                origin: origin(&key),
                message: format!(
                    "sweep.{key} must be a non-empty list of values, e.g. `{key}: [1, 2]`"
                ),
            });
        };
        let list_key = LIST_KEYS.contains(&key.as_str());
        let plain = |x: &Value| !x.is_mapping() && !x.is_sequence();
        let ok = |x: &Value| match x.as_sequence() {
            Some(items) => list_key && items.iter().all(plain),
            None => plain(x),
        };
        if !values.iter().all(ok) {
            return Err(SpecError::Invalid {
                origin: origin(&key),
                message: if list_key {
                    format!(
                        "sweep.{key} must list lists of numbers, e.g. `{key}: [[256], [512, 512]]`"
                    )
                } else {
                    format!("sweep.{key} must list plain values, not lists or sections")
                },
            });
        }
        let mut seen = std::collections::HashSet::new();
        for x in values {
            let text = yaml_text(x);
            if !seen.insert(text.clone()) {
                return Err(SpecError::Invalid {
                    origin: origin(&key),
                    message: format!("sweep.{key} lists {text} twice"),
                });
            }
        }
    }
    // Counted, not built: a grid beyond the bound is refused before anything is allocated.
    let sizes: Vec<usize> = sweep
        .values()
        .map(|v| v.as_sequence().map_or(0, Vec::len))
        .collect();
    let points = sizes
        .iter()
        .try_fold(1usize, |n, &len| n.checked_mul(len))
        .filter(|&n| n <= MAX_SWEEP_POINTS);
    if points.is_none() {
        let product: f64 = sizes.iter().map(|&n| n as f64).product();
        return Err(SpecError::Invalid {
            origin: origin(""),
            message: format!(
                "the sweep has {product:.0} grid points ({}), more than the {MAX_SWEEP_POINTS} a \
                 sweep may have; sweep fewer values, or split it into several sweeps",
                sizes
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" x ")
            ),
        });
    }
    Ok(())
}

/// The longest folder name a grid point may have (most file systems' limit, in bytes).
const MAX_POINT_NAME: usize = 255;

/// The most grid points a sweep may have (each is a whole run).
pub const MAX_SWEEP_POINTS: usize = 10_000;

/// A grid point's folder name: its overrides `key=value` joined by `+`. In a value, every
/// character a folder name cannot hold or that would make two points' names alike (`/`,
/// `\`, `%`, `+`, whitespace, control characters) is written `%XX` (its UTF-8 bytes in
/// hex), so distinct points always have distinct folders; a list's items are joined by `,_`
/// (`model.g_hidden=[512,_512]`).
fn point_name(axes: &[(String, Vec<Value>)], picks: &[usize]) -> String {
    fn part(v: &Value) -> String {
        match v.as_sequence() {
            Some(items) => format!(
                "[{}]",
                items.iter().map(part).collect::<Vec<_>>().join(",_")
            ),
            None => yaml_text(v)
                .chars()
                .map(|c| {
                    if matches!(c, '/' | '\\' | '%' | '+') || c.is_whitespace() || c.is_control() {
                        let mut utf8 = [0u8; 4];
                        c.encode_utf8(&mut utf8)
                            .bytes()
                            .map(|b| format!("%{b:02X}"))
                            .collect()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        }
    }
    axes.iter()
        .zip(picks)
        .map(|((k, values), &i)| format!("{k}={}", part(&values[i])))
        .collect::<Vec<_>>()
        .join("+")
}

/// Sets `key=value` (dotted key, YAML value) in `value`, rejecting unknown keys.
pub fn apply_override(value: &mut Value, arg: &str) -> Result<(), SpecError> {
    let origin = format!("--set {arg}");
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(SpecError::Invalid {
            origin,
            message: "expected KEY=VALUE, for example --set train.epochs=1".into(),
        });
    };
    let key = current_name(key.trim());
    if !KEYS.iter().any(|k| k.key == key) {
        return Err(SpecError::UnknownKey {
            origin,
            key: key.to_string(),
            hint: hint(key),
        });
    }
    check_nesting(raw).map_err(|(_, message)| SpecError::Invalid {
        origin: origin.clone(),
        message,
    })?;
    let new: Value = serde_yaml::from_str(raw).map_err(|e| SpecError::Invalid {
        origin: origin.clone(),
        message: format!("the value is not YAML: {}", strip_location(&e.to_string())),
    })?;
    let mut node = value;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        let map = node.as_mapping_mut().ok_or_else(|| SpecError::Invalid {
            origin: origin.clone(),
            message: format!("`{part}` in the spec is not a section"),
        })?;
        node = map
            .entry(Value::String(part.to_string()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
    }
    let map = node.as_mapping_mut().ok_or_else(|| SpecError::Invalid {
        origin: origin.clone(),
        message: format!("the section holding `{key}` is not a mapping"),
    })?;
    map.insert(Value::String(parts[parts.len() - 1].to_string()), new);
    Ok(())
}

/// Keys that were renamed, old name first: specs written before keep working.
const RENAMED: [(&str, &str); 1] = [("train.g_loss", "train.loss")];

/// A key's current name.
fn current_name(key: &str) -> &str {
    RENAMED
        .iter()
        .find(|(old, _)| *old == key)
        .map_or(key, |(_, new)| new)
}

/// Moves renamed keys of a spec file to their current names (both at once is an error).
fn rename_old_keys(value: &mut Value, text: &str, origin: &str) -> Result<(), SpecError> {
    for (old, new) in RENAMED {
        let (section, old_leaf) = old.split_once('.').expect("dotted");
        let new_leaf = new.split_once('.').expect("dotted").1;
        let Some(map) = value.get_mut(section).and_then(Value::as_mapping_mut) else {
            continue;
        };
        let Some(v) = map.remove(old_leaf) else {
            continue;
        };
        if map.contains_key(new_leaf) {
            let line = line_of(text, old)
                .map(|l| format!(" line {l}"))
                .unwrap_or_default();
            return Err(SpecError::Invalid {
                origin: format!("{origin}{line}"),
                message: format!("`{old}` is the older name of `{new}`; give only `{new}`"),
            });
        }
        map.insert(Value::String(new_leaf.into()), v);
    }
    Ok(())
}

/// The tree of known keys: the default spec as YAML.
fn schema() -> Value {
    serde_yaml::to_value(Spec::default()).expect("the default spec serialises")
}

fn check_keys(
    value: &Value,
    schema: &Value,
    prefix: &str,
    origin: &dyn Fn(&str) -> String,
) -> Result<(), SpecError> {
    let (Some(map), Some(known)) = (value.as_mapping(), schema.as_mapping()) else {
        return Ok(()); // a wrong type here is reported by the typed pass
    };
    for (k, v) in map {
        if prefix.is_empty() && k.as_str() == Some("sweep") {
            continue; // checked by `check_sweep`: its keys are dotted spec keys
        }
        let name = key_text(k);
        let dotted = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match known.get(k) {
            Some(sub) => check_keys(v, sub, &dotted, origin)?,
            None => {
                return Err(SpecError::UnknownKey {
                    origin: origin(&dotted),
                    hint: hint(&dotted),
                    key: dotted,
                })
            }
        }
    }
    Ok(())
}

/// A spec's YAML tree as `dotted.key -> value` (each leaf written as YAML), the form in which
/// specs are compared and keys listed.
pub fn flatten(value: &Value) -> std::collections::BTreeMap<String, String> {
    fn walk(v: &Value, prefix: &str, out: &mut std::collections::BTreeMap<String, String>) {
        match v.as_mapping() {
            Some(map) => {
                for (k, v) in map {
                    let dotted = if prefix.is_empty() {
                        key_text(k)
                    } else {
                        format!("{prefix}.{}", key_text(k))
                    };
                    walk(v, &dotted, out);
                }
            }
            None => {
                out.insert(prefix.to_string(), yaml_text(v));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(value, "", &mut out);
    out
}

/// A mapping key as written in YAML (keys are strings in every valid spec).
fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => yaml_text(other),
    }
}

/// A value as written in YAML on one line (lists in flow style: `[512, 512]`), for point
/// names, overrides and key listings.
fn yaml_text(v: &Value) -> String {
    match v.as_sequence() {
        Some(items) => format!(
            "[{}]",
            items.iter().map(yaml_text).collect::<Vec<_>>().join(", ")
        ),
        None => serde_yaml::to_string(v)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// ", did you mean `x`?" for the known key closest to `key`, plus where the key list is.
fn hint(key: &str) -> String {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let best = KEYS
        .iter()
        .map(|k| {
            let known_leaf = k.key.rsplit('.').next().unwrap_or(k.key);
            let d = strsim::levenshtein(key, k.key).min(strsim::levenshtein(leaf, known_leaf) + 1);
            (d, k.key)
        })
        .min();
    let reference = " (every key is listed in docs/spec.md and `runner --help`)";
    match best {
        Some((d, k)) if d <= 3.max(leaf.len() / 3) => format!(", did you mean `{k}`?{reference}"),
        _ => reference.to_string(),
    }
}

/// 1-based line where a dotted key is written, found by indentation.
fn line_of(text: &str, dotted: &str) -> Option<usize> {
    let mut parts = dotted.split('.').peekable();
    let mut min_indent = 0usize;
    let mut start = 0usize;
    let lines: Vec<&str> = text.lines().collect();
    while let Some(part) = parts.next() {
        let found = lines.iter().enumerate().skip(start).find(|(_, l)| {
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start();
            indent >= min_indent
                && (t.starts_with(&format!("{part}:")) || t.starts_with(&format!("\"{part}\":")))
        })?;
        if parts.peek().is_none() {
            return Some(found.0 + 1);
        }
        start = found.0 + 1;
        min_indent = found.1.len() - found.1.trim_start().len() + 1;
    }
    None
}

fn type_error(origin: &str, e: &serde_yaml::Error) -> SpecError {
    let location = e
        .location()
        .map(|l| format!(" line {}, column {}", l.line(), l.column()))
        .unwrap_or_default();
    SpecError::Invalid {
        origin: format!("{origin}{location}"),
        message: strip_location(&e.to_string()),
    }
}

/// serde_yaml writes " at line L column C" into its messages; the location is reported separately.
fn strip_location(msg: &str) -> String {
    let mut out = msg.to_string();
    while let Some(i) = out.find(" at line ") {
        let rest = &out[i + " at line ".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ' ' || "column".contains(c)))
            .unwrap_or(rest.len());
        out.replace_range(i..i + " at line ".len() + end, "");
    }
    out
}

/// A float as a user would write it: `1e-300`, not three hundred zeros.
fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

fn validate(s: &Spec) -> Result<(), String> {
    let valid_name = !s.name.is_empty()
        && !s.name.starts_with('.')
        && s.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid_name {
        return Err(format!(
            "name `{}` must be letters, digits, `.`, `_` or `-` (it names a folder)",
            s.name
        ));
    }
    let at_least_one = [
        ("model.noise_dim", s.model.noise_dim),
        ("model.hidden", s.model.hidden),
        ("train.epochs", s.train.epochs),
        ("train.batch_size", s.train.batch_size),
        ("train.d_steps", s.train.d_steps),
        ("samples.every", s.samples.every),
        ("checkpoint.keep", s.checkpoint.keep),
    ];
    for (key, v) in at_least_one {
        if v == 0 {
            return Err(format!("{key} must be at least 1 (got 0)"));
        }
    }
    if s.eval.samples < 10 {
        return Err(format!(
            "eval.samples must be at least 10 (got {})",
            s.eval.samples
        ));
    }
    if s.data.limit == Some(0) {
        return Err("data.limit must be at least 1, or null for all images (got 0)".into());
    }
    if s.data.dir.trim().is_empty() {
        return Err("data.dir must name a folder".into());
    }
    // Training runs in single precision: each float key is checked as the f32 it becomes
    // (1e-300 is a positive f64 but 0 in f32, 0.99999999 is 1).
    let mut positive = vec![("train.lr", s.train.lr), ("train.eps", s.train.eps)];
    positive.extend(s.train.lr_g.map(|v| ("train.lr_g", v)));
    positive.extend(s.train.lr_d.map(|v| ("train.lr_d", v)));
    for (key, v) in positive {
        let single = v as f32;
        if !(single.is_finite() && single > 0.0) {
            return Err(format!(
                "{key} must be a positive finite number in single precision, from 1.4e-45 to \
                 3.4e38 (got {}{})",
                show(v),
                if v.is_finite() && v > 0.0 {
                    format!(", which is {single} in f32")
                } else {
                    String::new()
                }
            ));
        }
    }
    for (key, v) in [
        ("train.beta1", s.train.beta1),
        ("train.beta2", s.train.beta2),
        ("model.d_dropout", s.model.d_dropout),
        ("train.label_smoothing", s.train.label_smoothing),
    ] {
        let single = v as f32;
        if !(0.0..1.0).contains(&single) {
            return Err(format!(
                "{key} must be in [0, 1) in single precision (got {}{})",
                show(v),
                if (0.0..1.0).contains(&v) {
                    format!(", which is {single} in f32")
                } else {
                    String::new()
                }
            ));
        }
    }
    for (key, widths) in [
        ("model.g_hidden", &s.model.g_hidden),
        ("model.d_hidden", &s.model.d_hidden),
    ] {
        if let Some(w) = widths {
            if w.contains(&0) {
                return Err(format!("{key} widths must be at least 1 (got {w:?})"));
            }
            if w.len() > 16 {
                return Err(format!(
                    "{key} has {} layers; at most 16 are supported",
                    w.len()
                ));
            }
        }
    }
    for (key, widths) in [
        ("model.g_channels", &s.model.g_channels),
        ("model.d_channels", &s.model.d_channels),
    ] {
        if widths.len() != 2 || widths.iter().any(|&c| c == 0 || c > 4096) {
            return Err(format!(
                "{key} must be two channel counts from 1 to 4096, one for 7 x 7 and one for \
                 14 x 14 feature maps (MNIST's 28 pixels halved twice), e.g. [128, 64] (got \
                 {widths:?})"
            ));
        }
    }
    if s.model.arch == ArchSpec::Mlp && !s.model.d_batch_norm {
        return Err(
            "model.d_batch_norm applies to model.arch: dcgan only; an mlp's D has no \
                    batch normalisation: remove the key or set model.arch: dcgan"
                .into(),
        );
    }
    if s.model.arch == ArchSpec::Mlp {
        let defaults = ModelSpec::default();
        for (key, set, default) in [
            (
                "model.g_channels",
                &s.model.g_channels,
                &defaults.g_channels,
            ),
            (
                "model.d_channels",
                &s.model.d_channels,
                &defaults.d_channels,
            ),
        ] {
            if set != default {
                return Err(format!(
                    "{key} applies to model.arch: dcgan only (got {set:?}); an mlp's layers are \
                     set by model.g_hidden and model.d_hidden: remove the key or set \
                     model.arch: dcgan"
                ));
            }
        }
    }
    if s.model.arch == ArchSpec::Mlp && s.model.d_dense != 0 {
        return Err(format!(
            "model.d_dense applies to model.arch: dcgan only (got {}); an mlp's D sets its \
             layers with model.d_hidden",
            s.model.d_dense
        ));
    }
    if s.model.d_dense > 65_536 {
        return Err(format!(
            "model.d_dense must be at most 65536 units (got {})",
            s.model.d_dense
        ));
    }
    if s.model.clusters == 1 || s.model.clusters > 256 {
        return Err(format!(
            "model.clusters must be 0 (off) or 2 to 256 clusters (got {})",
            s.model.clusters
        ));
    }
    if s.model.clusters > 0 && s.model.conditional {
        return Err(format!(
            "model.clusters and model.conditional both condition the networks (on clusters, \
             on digits): set model.conditional to false or model.clusters to 0 (got {})",
            s.model.clusters
        ));
    }
    if s.model.d_dense > 0 && s.model.d_dropout != 0.0 {
        return Err(format!(
            "model.d_dense and model.d_dropout cannot be combined yet (dropout acts after \
             the convolutions only and would leave the dense layer out): set model.d_dropout \
             to 0 or model.d_dense to 0 (got d_dropout {})",
            show(s.model.d_dropout)
        ));
    }
    if s.model.arch == ArchSpec::Dcgan {
        let mlp_only = [
            ("model.g_hidden", s.model.g_hidden.is_some(), "null"),
            ("model.d_hidden", s.model.d_hidden.is_some(), "null"),
            (
                "model.hidden",
                s.model.hidden != ModelSpec::default().hidden,
                "256",
            ),
        ];
        if let Some((key, _, default)) = mlp_only.iter().find(|(_, set, _)| *set) {
            return Err(format!(
                "{key} applies to model.arch: mlp only; a dcgan's networks are set by \
                 model.g_channels and model.d_channels: leave {key} at {default}"
            ));
        }
    }
    let slope = s.model.leaky_slope as f32;
    if !(slope.is_finite() && (0.0..1.0).contains(&slope)) {
        return Err(format!(
            "model.leaky_slope must be in [0, 1) (got {})",
            show(s.model.leaky_slope)
        ));
    }
    if s.train.loss == LossSpec::Hinge && s.train.label_smoothing != 0.0 {
        return Err(format!(
            "train.label_smoothing applies to the cross-entropy and least-squares losses; the \
             hinge loss has no targets to smooth (got {}): set it to 0 or choose another \
             train.loss",
            show(s.train.label_smoothing)
        ));
    }
    if let Some(decay) = s.train.g_ema {
        if !(decay > 0.0 && (decay as f32) < 1.0) {
            return Err(format!(
                "train.g_ema must be in (0, 1) in single precision, e.g. 0.999, or null for no \
                 average (got {})",
                show(decay)
            ));
        }
    }
    if s.train.d_steps > 100 {
        return Err(format!(
            "train.d_steps must be at most 100 (got {})",
            s.train.d_steps
        ));
    }
    let std = s.model.init_std as f32;
    if !(std.is_finite() && std >= 0.0) {
        return Err(format!(
            "model.init_std must be a non-negative finite number in single precision (got {})",
            s.model.init_std
        ));
    }
    Ok(())
}
