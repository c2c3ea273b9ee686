//! The modules depend on each other one way (docs/architecture.md, "Crates and their
//! modules"): a change to a leaf never needs a change above it. A `use crate::x` that closes a
//! circle fails here, naming the circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The crate's modules and the modules each one names (`crate::name`, `use crate::{a, b}`).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let module = relative
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let uses: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap())
                    .collect(),
                None => vec![rest
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .next()
                    .unwrap()],
            };
            for name in names {
                let is_module = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
                if is_module && name != module {
                    uses.insert(name.to_string());
                }
            }
        }
    }
    graph
}

fn circle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let here = path.last().unwrap().clone();
    for next in graph.get(&here).into_iter().flatten() {
        if let Some(start) = path.iter().position(|m| m == next) {
            let mut circle = path[start..].to_vec();
            circle.push(next.clone());
            return Some(circle);
        }
        if done.contains(next) {
            continue;
        }
        path.push(next.clone());
        if let Some(circle) = circle_from(graph, path, done) {
            return Some(circle);
        }
        path.pop();
    }
    done.insert(here);
    None
}

#[test]
fn modules_depend_on_each_other_one_way() {
    let graph = module_graph();
    assert!(
        graph.contains_key("run") && graph["run"].contains("revert"),
        "{graph:?}"
    );
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(circle) = circle_from(&graph, &mut vec![module.clone()], &mut done) {
            panic!("modules in a circle: {}", circle.join(" → "));
        }
    }
}

#[test]
fn the_engine_is_a_leaf() {
    let graph = module_graph();
    assert_eq!(graph["engine"], BTreeSet::new());
}
