//! The docs cannot drift silently from the code: every relative link in the repository's
//! Markdown resolves, every `gan` and `runner` command and flag quoted in the user docs
//! exists, every `experiments/*.yaml` the docs name is there (each loads: gan-spec's
//! `every_shipped_spec_loads`), the spec reference lists exactly `gan_spec::KEYS` with their
//! defaults, and README's results table says what the committed runs' files under
//! `docs/results/` say.

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

/// The anchors GitHub gives a Markdown text's headings: lower case, punctuation other than
/// `-` and `_` dropped, spaces as `-`; a repeated heading's gets `-1`, `-2`, ...
fn heading_anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut times_seen = std::collections::HashMap::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !fenced) else {
            continue;
        };
        let slug: String = title
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || " -_".contains(*c))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let seen = times_seen.entry(slug.clone()).or_insert(0);
        out.push(match *seen {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *seen += 1;
    }
    out
}

#[test]
fn heading_anchors_are_githubs() {
    let text = "# Quick start\n## `dcgan.yaml`: self-conditioned\n```sh\n# a comment\n```\n# Quick start\n### Quick start";
    assert_eq!(
        heading_anchors(text),
        [
            "quick-start",
            "dcganyaml-self-conditioned",
            "quick-start-1",
            "quick-start-2"
        ]
    );
}

#[test]
fn every_relative_link_resolves() {
    let files = markdown_files();
    assert!(files.len() >= 5, "{files:?}");
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in link_targets(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !linked.exists() {
                broken.push(format!("{}: {target}", shown(file)));
            } else if !anchor.is_empty() && linked.extension().is_some_and(|e| e == "md") {
                let headings = heading_anchors(&std::fs::read_to_string(&linked).unwrap());
                if !headings.iter().any(|h| h == anchor) {
                    broken.push(format!("{}: {target} (no such heading)", shown(file)));
                }
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

/// `printed` is `value` rounded to the decimals printed (`111.2` for 111.24, `7` for 7).
fn rounds_to(printed: &str, value: f64) -> bool {
    let decimals = printed.split('.').nth(1).map_or(0, str::len) as i32;
    printed
        .parse::<f64>()
        .is_ok_and(|p| (p - value).abs() <= 0.5 * 10f64.powi(-decimals) + 1e-9)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", shown(path)));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", shown(path)))
}

/// How a results-table column that shows a metric reads it from a run's `metrics.json`
/// (`None` for a column that is not a metric); the reading is `None` for a metric the run
/// does not have (label accuracy of an unconditional model).
fn metric(column: &str) -> Option<fn(&serde_json::Value) -> Option<f64>> {
    Some(match column {
        "FID" => |m| m["generated"]["fid"].as_f64(),
        "classes >= 5%" => |m| m["generated"]["coverage"]["classes_over_5pct"].as_f64(),
        "Parzen (nats)" => |m| m["generated"]["parzen"]["mean_ll"].as_f64(),
        "label accuracy (%)" => |m| m["generated"]["label_accuracy"].as_f64().map(|a| a * 100.0),
        _ => return None,
    })
}

/// The median, smallest and largest of `values`.
fn median_and_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

/// README's results table: each row names its picture `docs/results/<name>.png`, beside
/// which the run's own `run.json` and `metrics.json` are committed as
/// `docs/results/<name>.run.json` and `<name>.metrics.json`. A row that names a sweep
/// (`experiments/<sweep>.yaml`) shows the median (range) over `docs/results/<sweep>/*.metrics.json`
/// instead. Every number must be the files' value rounded as printed, the training time the
/// run's epochs' seconds, and the caption must give the runs' commit, dates, CPU and threads.
#[test]
fn the_readme_results_table_is_what_the_committed_runs_say() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("\n## Results").expect("a Results section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let lines: Vec<&str> = section.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with('|'))
        .expect("a table");
    let end = first
        + lines[first..]
            .iter()
            .take_while(|l| l.starts_with('|'))
            .count();
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(lines[first]);
    let caption: String = lines[end..]
        .iter()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let results = root().join("docs/results");
    let mut problems = Vec::new();
    let mut quoted = Vec::new();
    for line in &lines[first + 2..end] {
        let row = cells(line);
        assert_eq!(row.len(), header.len(), "{line}");
        let picture = line
            .split("docs/results/")
            .nth(1)
            .and_then(|rest| rest.split(".png").next())
            .unwrap_or_else(|| panic!("no docs/results/<name>.png in {line}"));
        quoted.push(picture.to_string());
        let run = read_json(&results.join(format!("{picture}.run.json")));
        let metrics = read_json(&results.join(format!("{picture}.metrics.json")));
        let sweep = row[0]
            .split("experiments/")
            .nth(1)
            .and_then(|rest| rest.split(".yaml").next())
            .map(|name| results.join(name))
            .filter(|dir| dir.is_dir());
        let sweep_metrics: Vec<serde_json::Value> = sweep
            .iter()
            .flat_map(|dir| {
                let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".metrics.json"))
                    .collect();
                files.sort();
                files.iter().map(|p| read_json(p)).collect::<Vec<_>>()
            })
            .collect();
        for (column, cell) in header.iter().zip(&row).skip(1) {
            let cell = cell.replace("**", "");
            let cell = cell.trim_end_matches('%').trim();
            if column == "training (min)" {
                let seconds: f64 = run["epoch_seconds"]
                    .as_array()
                    .expect("epoch_seconds")
                    .iter()
                    .map(|s| s.as_f64().unwrap())
                    .sum();
                if !rounds_to(cell, seconds / 60.0) {
                    problems.push(format!(
                        "{picture}: {column} {cell}, the run's {:.2}",
                        seconds / 60.0
                    ));
                }
                continue;
            }
            let Some(read) = metric(column) else {
                continue;
            };
            if !sweep_metrics.is_empty() {
                let values: Option<Vec<f64>> = sweep_metrics.iter().map(read).collect();
                let Some(values) = values else {
                    if !cell.is_empty() {
                        problems.push(format!(
                            "{picture}: {column} {cell}, not in the sweep's metrics"
                        ));
                    }
                    continue;
                };
                let (median, low, high) = median_and_range(values);
                let ok = cell
                    .split_once(" (")
                    .and_then(|(m, range)| {
                        let (a, b) = range.trim_end_matches(')').split_once(" to ")?;
                        Some(rounds_to(m, median) && rounds_to(a, low) && rounds_to(b, high))
                    })
                    .unwrap_or(false);
                if !ok {
                    problems.push(format!(
                        "{picture}: {column} {cell}, the sweep's median {median:.3} ({low:.3} to {high:.3}) over {} runs",
                        sweep_metrics.len()
                    ));
                }
                continue;
            }
            match read(&metrics) {
                None if cell.is_empty() => {}
                None => problems.push(format!(
                    "{picture}: {column} {cell}, not in its metrics.json"
                )),
                Some(v) if !rounds_to(cell, v) => {
                    problems.push(format!("{picture}: {column} {cell}, metrics.json {v:.4}"))
                }
                Some(_) => {}
            }
        }
        let commit = run["git"]["commit"].as_str().unwrap();
        let date = &run["started_at"].as_str().unwrap()[..10];
        let cpu = run["machine"]["cpu"].as_str().unwrap();
        let threads = format!("{} threads", run["threads"]);
        for (what, needed) in [
            ("commit", format!("`{}`", &commit[..7])),
            ("date", date.to_string()),
            ("CPU", cpu.to_string()),
            ("threads", threads),
        ] {
            if !caption.contains(&needed) {
                problems.push(format!(
                    "{picture}: the caption does not give its {what}, {needed}"
                ));
            }
        }
    }
    for e in std::fs::read_dir(&results).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(run) = name.strip_suffix(".run.json") {
            if !quoted.iter().any(|q| q == run) {
                problems.push(format!(
                    "docs/results/{name} is quoted by no row of README's table"
                ));
            }
        }
    }
    assert!(quoted.len() >= 6, "{quoted:?}");
    assert!(
        problems.is_empty(),
        "README's results table:\n{}",
        problems.join("\n")
    );
}
