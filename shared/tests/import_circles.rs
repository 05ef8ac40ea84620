//! No two files of `shared/src` (or of `testkit/src`) import each other, directly or round a
//! circle: imports point one way, from the web on top through the domain and the adapters
//! down to the records (the README's layout). A circle means a name sits on the wrong floor;
//! this test names the files that close it, so it is mended by moving that name down.
//!
//! What counts as an import: a `crate::` or `super::` path anywhere outside comments (a `use`
//! tree, or a path in the code), unit tests included, resolved to the deepest file it names.
//! A module's own `mod child;` and its plain `child::` paths are not counted: a folder's
//! `mod.rs` and its files are one module and may know each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn shared_src_has_no_import_circle() {
    assert_no_circle(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
}

#[test]
fn testkit_src_has_no_import_circle() {
    assert_no_circle(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../testkit/src"));
}

fn assert_no_circle(root: &Path) {
    let files = rust_files(root);
    assert!(files.len() > 5, "no sources under {}", root.display());
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|file| (module_path(root, file), display(root, file)))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let me = module_path(root, file);
        let from = display(root, file);
        let text = without_comments(&std::fs::read_to_string(file).unwrap());
        for path in paths(&text) {
            let absolute = match path.first().map(String::as_str) {
                Some("crate") => path[1..].to_vec(),
                Some("super") => {
                    let mut base = me.clone();
                    let mut rest = &path[..];
                    while rest.first().map(String::as_str) == Some("super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().cloned());
                    base
                }
                _ => continue,
            };
            // The deepest file the path names (`crate::store::local::LocalStore` is
            // store/local/mod.rs).
            let target = (0..=absolute.len())
                .rev()
                .find_map(|n| modules.get(&absolute[..n]));
            if let Some(to) = target.filter(|to| **to != from) {
                edges.entry(from.clone()).or_default().insert(to.clone());
            }
        }
    }
    if let Some(circle) = find_circle(&edges) {
        panic!(
            "{} imports round a circle: {}",
            root.display(),
            circle.join(" -> ")
        );
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `store/local/mod.rs` is `["store", "local"]`, `lib.rs` is `[]`, `bin/x.rs` is
/// `["bin", "x"]` (a binary is its own crate root, but no file imports it).
fn module_path(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn display(root: &Path, file: &Path) -> String {
    file.strip_prefix(root).unwrap().display().to_string()
}

/// The text with `//` comments (doc comments too: their links are not imports) and string
/// literals blanked.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut previous = ' ';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_string && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            let char_literal = previous == '\'' && chars.get(i + 1) == Some(&'\'');
            if c == '"' && previous != '\\' && !char_literal {
                in_string = !in_string;
            }
            kept.push(if in_string { ' ' } else { c });
            previous = if previous == '\\' && c == '\\' {
                ' '
            } else {
                c
            };
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate` or `super`, `use` trees expanded:
/// `use crate::{a::B, c::{d, e}}` gives `crate::a::B`, `crate::c::d` and `crate::c::e`.
fn paths(text: &str) -> Vec<Vec<String>> {
    let tokens = tokenize(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let starts = (tokens[i] == "crate" || tokens[i] == "super")
            && (i == 0 || tokens[i - 1] != "::")
            && tokens.get(i + 1).map(String::as_str) == Some("::");
        if starts {
            i = tree(&tokens, i, Vec::new(), &mut out);
        } else {
            i += 1;
        }
    }
    out
}

/// Reads one path or `{...}` group at `tokens[i]` under `prefix`; returns the index after it.
fn tree(
    tokens: &[String],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match tokens.get(i).map(String::as_str) {
            Some("{") => {
                i += 1;
                while i < tokens.len() && tokens[i] != "}" {
                    i = tree(tokens, i, prefix.clone(), out);
                    if tokens.get(i).map(String::as_str) == Some(",") {
                        i += 1;
                    }
                }
                return i + 1;
            }
            Some(word) if is_ident(word) => {
                if word != "self" {
                    prefix.push(word.to_string());
                }
                i += 1;
                if tokens.get(i).map(String::as_str) == Some("::") {
                    i += 1;
                    continue;
                }
                out.push(prefix);
                return i;
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
    }
}

fn is_ident(word: &str) -> bool {
    word.chars().all(|c| c.is_alphanumeric() || c == '_') && !word.is_empty()
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".into());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

/// A circle of the graph, as the files round it (first again at the end), if there is one.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let start = stack.iter().position(|n| n == next).unwrap();
                    let mut circle = stack[start..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(circle) = visit(next, edges, marks, stack) {
                        return Some(circle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if !marks.contains_key(node) {
            if let Some(circle) = visit(node, edges, &mut marks, &mut Vec::new()) {
                return Some(circle);
            }
        }
    }
    None
}
