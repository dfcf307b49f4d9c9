//! The layers of the crate, checked: a module uses only modules below it. The wire never
//! depends on a role, a role never on the drivers that run it, and nothing below the console
//! knows the console exists. (docs/ARCHITECTURE.md draws the same layers.)

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level module and its layer; a module may use only modules of a lower layer.
const LAYERS: &[(&str, u32)] = &[
    // Facts with no dependencies: time, the topology language, the state directory, how the
    // processes hold memory.
    ("clock", 0),
    ("topology", 0),
    ("state_dir", 0),
    ("memory", 0),
    // What every layer shares: events, jobs, workers.
    ("cluster", 1),
    ("logging", 1),
    // The wire.
    ("protocol", 2),
    ("tls", 2),
    ("shaper", 3),
    // Pure state machines, and a client of the wire.
    ("role", 3),
    ("client", 3),
    // Readings of events: the journal on disk, the one view of the cluster.
    ("journal", 4),
    ("view", 4),
    // Drivers: sockets, processes, time.
    ("node", 5),
    ("supervisor", 6),
    // What a person sees, what measures it, and the command line that runs both.
    ("console", 7),
    ("bench", 8),
    ("cli", 9),
];

fn layer_of(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every `crate::name` a line of code (not a comment) mentions.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let Some(layer) = layer_of(&module) else {
            unplaced.push(module);
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            for used in crate_paths(line) {
                if used == module {
                    continue;
                }
                match layer_of(&used) {
                    Some(l) if l < layer => {}
                    _ => wrong.entry(module.clone()).or_default().push(format!(
                        "{}:{}: uses crate::{used}",
                        relative.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS): {unplaced:?}"
    );
    assert!(
        wrong.is_empty(),
        "modules that use a layer at or above their own:\n{}",
        wrong
            .values()
            .flatten()
            .map(|w| format!("  {w}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_check_sees_paths_and_skips_comments() {
    assert_eq!(
        crate_paths("use crate::protocol::message::{Envelope}; // crate::role"),
        ["protocol"]
    );
    assert_eq!(
        crate_paths("let x = crate::clock::now() + crate::role::f();"),
        ["clock", "role"]
    );
    assert!(crate_paths("//! see crate::node").is_empty());
}
