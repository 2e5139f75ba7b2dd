//! The engine's rooms follow the flow of the data: no module reaches back into one that
//! reaches it (a circle of `crate::` paths between top-level modules fails this test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The stages' folders: a module in one is named by its file (`src/judging/audit.rs` and
/// `src/judging/audit/…` are `audit`).
const STAGES: [&str; 4] = ["storage", "judging", "analytics", "supervision"];

/// Each module of the engine (a stage's file, or a file at the root) with the modules its
/// files name as `crate::…` or `crate::<stage>::…`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    // The module a file belongs to: its first component below the root or its stage.
    let module_of = |f: &Path| -> Option<String> {
        let parts: Vec<String> = f
            .strip_prefix(&src)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        match parts.as_slice() {
            [stage, module, ..] if STAGES.contains(&stage.as_str()) => Some(module.clone()),
            [file] if file != "lib" && file != "error" => Some(file.clone()),
            _ => None,
        }
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    for f in &files {
        let Some(module) = module_of(f) else { continue };
        let text = std::fs::read_to_string(f).unwrap();
        let ident =
            |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect() };
        let used: Vec<String> = text
            .match_indices("crate::")
            .filter_map(|(i, _)| {
                let rest = &text[i + 7..];
                let mut name = ident(rest);
                if STAGES.contains(&name.as_str()) {
                    name = ident(rest.get(name.len() + 2..).unwrap_or(""));
                }
                (modules.contains(&name) && name != module).then_some(name)
            })
            .collect();
        graph.entry(module).or_default().extend(used);
    }
    graph
}

#[test]
fn no_module_of_the_engine_reaches_back_into_one_that_reaches_it() {
    let graph = imports();
    assert!(graph.len() > 10, "{graph:?}");
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == m) {
            panic!("a circle of modules: {} -> {m}", path[at..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_owned());
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}
