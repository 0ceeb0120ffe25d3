//! The orchestrator's modules form layers: no two top-level modules of `src/` use each other,
//! directly or through others. Read from the source, so a new cycle fails here with its path
//! instead of growing unnoticed. (Doc comments and comments do not count: a link is not a use.)

// A test that reads files fails the way its assertions do.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `crate::<module>` a file's code names, with comments left out.
fn uses(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Top-level module → the top-level modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let mut used = uses(&std::fs::read_to_string(&file).unwrap());
        used.remove(&top);
        graph.entry(top).or_default().extend(used);
    }
    graph
}

/// A path `from` → … → `to` in the graph, if there is one.
fn path(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_string()]];
    while let Some(trail) = stack.pop() {
        let last = trail.last().unwrap().clone();
        for next in graph.get(&last).into_iter().flatten() {
            if next == to {
                let mut found = trail.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = trail.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_two_modules_use_each_other_directly_or_in_a_circle() {
    let graph = graph();
    assert!(
        graph.contains_key("progress") && graph.contains_key("state"),
        "{graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| path(&graph, module, module))
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_parts_the_state_holds_do_not_reach_back_into_it() {
    let graph = graph();
    for part in &graph["state"] {
        assert!(
            path(&graph, part, "state").is_none(),
            "`{part}` is held by the state and uses it: {:?}",
            path(&graph, part, "state")
        );
    }
}
