//! The docs cannot drift silently from the code: every relative link in the repository's
//! Markdown resolves, every `gan` and `runner` command and flag quoted in the user docs
//! exists, every `experiments/*.yaml` the docs name is there (each loads: gan-spec's
//! `every_shipped_spec_loads`), and the spec reference lists exactly `gan_spec::KEYS` with
//! their defaults.

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNNER: &str = env!("CARGO_BIN_EXE_runner");
const GAN: &str = env!("CARGO_BIN_EXE_gan");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `path` from the repository's root, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The user docs: what a user reads to run things. The lab notebook (`docs/notebook/`) is a
/// dated record and quotes commands as they were then.
fn user_docs() -> Vec<String> {
    let mut docs: Vec<String> = ["README.md", "experiments/README.md", "runs/README.md"]
        .map(String::from)
        .to_vec();
    for e in std::fs::read_dir(root().join("docs")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            docs.push(format!("docs/{name}"));
        }
    }
    assert!(docs.len() >= 10, "{docs:?}");
    docs
}

/// Every Markdown file of the repository (not build output, data or runs).
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.')
                    && !["target", "data", "node_modules"].contains(&name.as_str())
                {
                    walk(&path, out);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    // Run folders hold only what runs wrote, except runs/README.md.
    out.retain(|p| {
        let rel = p.strip_prefix(root()).unwrap();
        !rel.starts_with("runs") || rel == Path::new("runs/README.md")
    });
    out
}

/// The targets of a Markdown text's inline links `[text](target)` and images, and of its
/// HTML images' `src="..."`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("<img src=\"") {
        let rest = &text[at + 10..];
        out.push(rest[..rest.find('"').unwrap_or(0)].to_string());
    }
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].trim();
        let target = target.split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_string());
        rest = &rest[end..];
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let files = markdown_files();
    assert!(files.len() >= 5, "{files:?}");
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in link_targets(&text) {
            if target.is_empty()
                || target.starts_with('#')
                || target.contains("://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap();
            if !file.parent().unwrap().join(path).exists() {
                broken.push(format!("{}: {target}", shown(file)));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The code a Markdown text shows: its fenced blocks' lines and its inline code spans.
fn code_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(line.to_string());
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let Some(code) = parts.next() {
            out.push(code.to_string());
            parts.next();
        }
    }
    out
}

/// `program --help` (or `program sub --help`): `None` if it is not a command.
fn help(program: &str, sub: Option<&str>) -> Option<String> {
    let mut c = Command::new(program);
    c.args(sub).arg("--help");
    let out = c.output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `--flags` of a command line, up to a shell's next command or comment.
fn flags(words: &[&str]) -> Vec<String> {
    words
        .iter()
        .take_while(|w| !["|", "&&", ";", "#", "||"].contains(w) && !w.starts_with('#'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.split('=')
                .next()
                .unwrap()
                .trim_end_matches([',', ')', '.'])
                .to_string()
        })
        .collect()
}

#[test]
fn every_quoted_gan_and_runner_command_and_flag_exists() {
    let runner_help = help(RUNNER, None).unwrap();
    let mut missing = Vec::new();
    for doc in user_docs() {
        let text = std::fs::read_to_string(root().join(&doc)).unwrap();
        for code in code_of(&text) {
            let words: Vec<&str> = code.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                let after = &words[i + 1..];
                if *w == "gan" && i + 1 < words.len() {
                    let sub = words[i + 1];
                    if !sub.chars().all(|c| c.is_ascii_lowercase() || c == '-') || sub.is_empty() {
                        continue;
                    }
                    match help(GAN, Some(sub)) {
                        None => missing.push(format!("{doc}: `gan {sub}` ({code})")),
                        Some(h) => {
                            for f in flags(&after[1..]) {
                                if !h.contains(&f) {
                                    missing.push(format!("{doc}: `gan {sub} {f}` ({code})"));
                                }
                            }
                        }
                    }
                } else if *w == "runner" || w.ends_with("/runner") {
                    for f in flags(after) {
                        if !runner_help.contains(&f) {
                            missing.push(format!("{doc}: `runner {f}` ({code})"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "quoted but not in the CLI:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_named_spec_exists() {
    let mut missing = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices(".yaml") {
            let start = text[..at]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || "-_/.".contains(c)))
                .map_or(0, |i| i + 1);
            let name = &text[start..at + 5];
            if let Some(spec) = name.strip_prefix("experiments/") {
                if !spec.contains('/') && !root().join(name).is_file() {
                    missing.push(format!("{}: {name}", shown(&file)));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "specs named but missing:\n{}",
        missing.join("\n")
    );
}

/// The spec reference's key table (docs/spec.md) lists exactly the keys of `gan_spec::KEYS`,
/// each with the same default.
#[test]
fn the_spec_reference_lists_exactly_the_keys_with_their_defaults() {
    let text = std::fs::read_to_string(root().join("docs/spec.md")).unwrap();
    let start = text
        .find("| key | default | allowed | meaning |")
        .expect("the key table");
    let mut table = std::collections::BTreeMap::new();
    for line in text[start..].lines().skip(2) {
        let Some(row) = line.strip_prefix("| `") else {
            break;
        };
        let mut cells = row.split(" | ");
        let key = cells.next().unwrap().trim_end_matches('`').to_string();
        let default = cells.next().unwrap_or("").trim_matches('`').to_string();
        table.insert(key, default);
    }
    let keys: std::collections::BTreeMap<String, String> = gan_spec::KEYS
        .iter()
        .map(|k| {
            (
                k.key.to_string(),
                k.default.trim_matches(['<', '>']).to_string(),
            )
        })
        .collect();
    let only_table: Vec<&String> = table.keys().filter(|k| !keys.contains_key(*k)).collect();
    let only_keys: Vec<&String> = keys.keys().filter(|k| !table.contains_key(*k)).collect();
    assert!(
        only_table.is_empty() && only_keys.is_empty(),
        "in the table only: {only_table:?}; in KEYS only: {only_keys:?}"
    );
    let differ: Vec<String> = keys
        .iter()
        .filter(|(k, d)| table[*k] != **d)
        .map(|(k, d)| format!("{k}: table {:?}, KEYS {d:?}", table[k]))
        .collect();
    assert!(differ.is_empty(), "defaults differ:\n{}", differ.join("\n"));
}
