//! The import graph of `rpcnet/src` keeps to the layers of `DESIGN.md`: a module imports
//! only the layers below it, never through the crate root; the pure layers (`wire`, `codec`,
//! `balance`) use neither tokio nor quinn; no two files of one folder import each other,
//! directly or round a circle; and no file grows past 500 lines without saying why.
//!
//! `cargo test -p rpcnet --test layers -- --nocapture` prints the graph, module by module.
#![allow(clippy::print_stdout)] // the graph, for `--nocapture`

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Each top-level module and the modules it may import: the layers of `DESIGN.md`,
/// lowest first.
#[rustfmt::skip] // a layer a line, as in DESIGN.md's table
const LAYERS: &[(&str, &[&str])] = &[
    ("wire", &[]),
    ("codec", &[]),
    ("balance", &[]),
    ("error", &["wire", "codec"]),
    ("stream", &["error"]),
    ("deadline", &["error"]),
    ("metadata", &["wire"]),
    ("telemetry", &["metadata", "stream", "error"]),
    ("transport", &["wire", "error"]),
    ("config", &["transport", "wire", "error"]),
    ("client", &["config", "transport", "deadline", "metadata", "telemetry", "stream", "balance", "wire", "error"]),
    ("server", &["config", "transport", "deadline", "metadata", "telemetry", "stream", "wire", "error"]),
    ("channel", &["client", "config", "transport", "deadline", "metadata", "stream", "balance", "wire", "error"]),
    ("typed", &["channel", "server", "transport", "stream", "codec", "wire", "error"]),
    ("discovery", &["channel", "balance", "error"]),
    ("cluster", &["discovery", "channel", "client", "server", "config", "transport", "stream", "balance", "codec", "wire", "error"]),
];

/// Layers that stay pure: no async runtime, no network.
const PURE: &[&str] = &["wire", "codec", "balance"];

/// Lines past which a file must say at its top why it is long.
const MAX_LINES: usize = 500;

struct SourceFile {
    /// Path below `src/`, e.g. `channel/balanced.rs`.
    relative: String,
    /// The module path, e.g. `["channel", "balanced"]`; empty for `lib.rs`.
    module: Vec<String>,
    text: String,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                let mut module: Vec<String> = relative.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
                if module.last().is_some_and(|last| last == "mod" || last == "lib") {
                    module.pop();
                }
                files.push(SourceFile { relative, module, text: fs::read_to_string(&path).unwrap() });
            }
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    files
}

/// The code of a file without comments (line comments and doc comments), string
/// literals blanked, and its `#[cfg(test)]` module left out: what it imports to run.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start() == "#[cfg(test)]" {
            break;
        }
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut in_string = false;
        for c in line.chars() {
            if c == '"' {
                in_string = !in_string;
            }
            out.push(if in_string { ' ' } else { c });
        }
        out.push('\n');
    }
    out
}

/// Every path a file names that starts with `crate`, `super` or `self`, as segments, from
/// `use` trees (groups expanded) and from paths written in the code.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if starts_word {
            for root in ["crate::", "super::", "self::"] {
                let word: String = chars[i..chars.len().min(i + root.len())].iter().collect();
                if word == root {
                    let (tree, end) = read_tree(&chars, i);
                    expand(&tree, &mut Vec::new(), &mut found);
                    i = end;
                    break;
                }
            }
        }
        i += 1;
    }
    found
}

/// A path tree: `a::b::{c, d::e}` as text from `start`, up to where it ends.
fn read_tree(chars: &[char], start: usize) -> (String, usize) {
    let mut depth = 0;
    let mut end = start;
    while end < chars.len() {
        let c = chars[end];
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':' || c == '*') => break,
            _ => {}
        }
        end += 1;
    }
    (chars[start..end].iter().filter(|c| !c.is_whitespace()).collect(), end)
}

/// The paths of a tree, each group expanded.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some(open) = tree.find('{') else {
        let mut path = prefix.clone();
        path.extend(tree.split("::").filter(|s| !s.is_empty()).map(|s| s.split(" as ").next().unwrap().to_owned()));
        out.push(path);
        return;
    };
    let head: Vec<String> = tree[..open].split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut depth = 0;
    let mut from = 0;
    let mut parts = Vec::new();
    for (at, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[from..at]);
                from = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[from..]);
    let len = prefix.len();
    prefix.extend(head);
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        expand(part, prefix, out);
    }
    prefix.truncate(len);
}

/// The module path a file's path refers to, resolved against `modules` (every module of
/// the crate): the longest prefix that is a module.
fn target(file: &SourceFile, path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    let mut absolute: Vec<String> = match path[0].as_str() {
        "crate" => Vec::new(),
        "self" => file.module.clone(),
        // `super` of `a/b.rs` (module a::b) is `a`; of `a/mod.rs` (module a), the root.
        _ => {
            let mut base = file.module.clone();
            for _ in path.iter().take_while(|s| *s == "super") {
                base.pop();
            }
            base
        }
    };
    absolute.extend(path.iter().skip_while(|s| *s == "crate" || *s == "self" || *s == "super").cloned());
    while !absolute.is_empty() && !modules.contains(&absolute) {
        absolute.pop();
    }
    absolute
}

/// `(file, module it imports)` for every import of every file, and the modules.
/// An import: the index of the importing file, and the module it imports.
type Import = (usize, Vec<String>);

fn imports(files: &[SourceFile]) -> (BTreeSet<Vec<String>>, Vec<Import>) {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges = Vec::new();
    for (index, file) in files.iter().enumerate() {
        for path in paths(&code(&file.text)) {
            let to = target(file, &path, &modules);
            if to != file.module {
                edges.push((index, to));
            }
        }
    }
    (modules, edges)
}

#[test]
fn every_module_imports_only_the_layers_below_it_and_never_through_the_crate_root() {
    let files = source_files();
    let (_, edges) = imports(&files);
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (index, to) in &edges {
        let file = &files[*index];
        let Some(from) = file.module.first() else { continue };
        let Some(to_layer) = to.first() else {
            problems.push(format!("{} imports through the crate root; name the module instead", file.relative));
            continue;
        };
        if from == to_layer {
            continue;
        }
        graph.entry(from.clone()).or_default().insert(to_layer.clone());
        let Some(below) = allowed.get(from.as_str()) else {
            problems.push(format!("{}: module `{from}` is missing from LAYERS (and DESIGN.md)", file.relative));
            continue;
        };
        if !below.contains(&to_layer.as_str()) {
            problems.push(format!("{} imports `{to_layer}`, which is not a layer below `{from}`", file.relative));
        }
    }
    for (from, to) in &graph {
        println!("{from:>9} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "the import graph breaks the layers:\n{}", problems.join("\n"));
}

#[test]
fn the_pure_layers_use_neither_tokio_nor_quinn() {
    let mut problems = Vec::new();
    for file in source_files().iter().filter(|f| f.module.first().is_some_and(|m| PURE.contains(&m.as_str()))) {
        let code = code(&file.text);
        for runtime in ["tokio", "quinn"] {
            if code.contains(&format!("{runtime}::")) {
                problems.push(format!("{} uses {runtime}", file.relative));
            }
        }
    }
    assert!(problems.is_empty(), "pure layers must stay pure:\n{}", problems.join("\n"));
}

#[test]
fn no_two_files_of_a_folder_import_each_other_round_a_circle() {
    let files = source_files();
    let (_, edges) = imports(&files);
    // Edges between files of one folder: a file and its siblings, and the folder's
    // `mod.rs`. A `mod.rs` declaring and re-exporting its children is the folder's table
    // of contents, not an import: only the rest of its code counts.
    let folder = |f: &SourceFile| -> Vec<String> {
        if f.relative.ends_with("mod.rs") || f.relative == "lib.rs" {
            f.module.clone()
        } else {
            f.module[..f.module.len() - 1].to_vec()
        }
    };
    let by_module: BTreeMap<&Vec<String>, usize> = files.iter().enumerate().map(|(i, f)| (&f.module, i)).collect();
    let mut graph: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (from, to) in &edges {
        let Some(&to_file) = by_module.get(to) else { continue };
        let (a, b) = (&files[*from], &files[to_file]);
        let same_folder = folder(a) == folder(b) || folder(b) == a.module;
        if !same_folder {
            continue;
        }
        let table_of_contents =
            (a.relative.ends_with("mod.rs") || a.relative == "lib.rs") && b.module.len() > a.module.len();
        if table_of_contents && only_reexports(&a.text, b.module.last().unwrap()) {
            continue;
        }
        graph.entry(*from).or_default().insert(to_file);
    }
    // Depth-first search for a circle.
    let mut problems = Vec::new();
    let mut state = vec![0u8; files.len()];
    let mut stack = Vec::new();
    fn visit(
        node: usize,
        graph: &BTreeMap<usize, BTreeSet<usize>>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
        circles: &mut Vec<Vec<usize>>,
    ) {
        state[node] = 1;
        stack.push(node);
        for &next in graph.get(&node).into_iter().flatten() {
            match state[next] {
                0 => visit(next, graph, state, stack, circles),
                1 => {
                    let at = stack.iter().position(|&n| n == next).unwrap();
                    circles.push(stack[at..].to_vec());
                }
                _ => {}
            }
        }
        stack.pop();
        state[node] = 2;
    }
    let mut circles = Vec::new();
    for node in 0..files.len() {
        if state[node] == 0 {
            visit(node, &graph, &mut state, &mut stack, &mut circles);
        }
    }
    for circle in circles {
        let names: Vec<&str> = circle.iter().map(|&i| files[i].relative.as_str()).collect();
        problems.push(names.join(" -> "));
    }
    assert!(problems.is_empty(), "files that import each other:\n{}", problems.join("\n"));
}

/// Whether every mention of `child` in a `mod.rs` is its declaration or a re-export.
fn only_reexports(text: &str, child: &str) -> bool {
    code(text)
        .lines()
        .filter(|line| line.contains(&format!("{child}::")) || line.contains(&format!("mod {child}")))
        .all(|line| {
            let line = line.trim_start();
            line.starts_with("pub use ")
                || line.starts_with("pub(crate) use ")
                || line.starts_with("mod ")
                || line.starts_with("pub mod ")
                || line.starts_with("pub(crate) mod ")
        })
}

#[test]
fn no_file_is_longer_than_500_lines_without_a_reason_at_its_top() {
    let mut problems = Vec::new();
    for file in source_files() {
        let lines = file.text.lines().count();
        let head: String = file.text.lines().take(8).collect::<Vec<_>>().join("\n");
        if lines > MAX_LINES && !head.contains("Longer than") {
            problems
                .push(format!("{}: {lines} lines, and no `Longer than ...` reason in its module doc", file.relative));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
