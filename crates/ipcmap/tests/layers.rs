//! The library's layers, checked: no module imports (`crate::...`) a module above its own
//! layer. Test code (after a file's first `#[cfg(test)]`) may reach anywhere. The table here
//! is the one ARCHITECTURE.md draws; a new module must be placed in it.

use std::path::Path;

/// Bottom to top: a module may use modules of its own layer or of layers before it.
const LAYERS: &[&[&str]] = &[
    // leaves
    &[
        "kernel",
        "calibrate",
        "costs",
        "named",
        "codec",
        "partition",
        "stats",
        "shared",
        "memory",
        "data",
        "rundir",
        "plan",
        "fault",
        "floor",
        "trace",
    ],
    // the wire, the errors, the result model, the settings a run reads
    &["protocol", "error", "interrupt", "verify", "report"],
    // moving frames between processes; the settings a run reads (which name a transport)
    &["transport", "settings"],
    // scatter and gather over a pool
    &["scheduler"],
    // the strategies, one file each
    &["strategy"],
    // the worker process's loop; a run's validated configuration
    &["worker", "config"],
    // what binaries call
    &["engine", "probe", "sweep", "model"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a source file belongs to (`strategy/shm.rs` -> `strategy`).
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_module_above_its_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let module = module_of(&file, &src);
        if module == "lib" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            violations.push(format!("{module} ({}) is in no layer", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let used: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // A registry's list (`crate::for_each_codec!`) is exported at the crate's root by
            // the module that defines it, and used there.
            if used.starts_with("for_each_") {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer > own => violations.push(format!(
                    "{} uses crate::{used} (layer {layer}) from {module} (layer {own})",
                    file.display()
                )),
                None if !used.is_empty() => {
                    violations.push(format!("{} uses crate::{used}, in no layer", file.display()))
                }
                _ => {}
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Each transport's names: its registry name as a string literal, its module path
/// (`transport::local`) and its type (`LocalTransport`).
fn transport_names() -> Vec<String> {
    let names = ipcmap::transport::TransportKind::all().map(|t| t.name());
    let mut out = Vec::new();
    // The in-process fake is a transport too, though not one a user can ask for by name.
    for (name, registered) in names.map(|n| (n, true)).chain([("memory", false)]) {
        let mut ty = name.to_string();
        ty[..1].make_ascii_uppercase();
        if registered {
            out.push(format!("\"{name}\""));
        }
        out.push(format!("transport::{name}"));
        out.push(format!("{ty}Transport"));
    }
    out
}

#[test]
fn no_module_outside_transport_names_a_transport() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let names = transport_names();
    let mut violations = Vec::new();
    for file in files {
        if module_of(&file, &src) == "transport" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            // A strategy may share a transport's name (`pipe`): its own declaration says it.
            let own = |n: &String| {
                ["Info::local", "Info::processes_here"]
                    .iter()
                    .any(|f| line.contains(&format!("{f}({n}")))
            };
            for name in names.iter().filter(|n| line.contains(n.as_str()) && !own(n)) {
                violations.push(format!("{}: {name} in {:?}", file.display(), line.trim()));
            }
        }
        // A transport matched by variant or constant (`TransportKind::Local`).
        for (i, _) in code.match_indices("TransportKind::") {
            if code[i + 15..].starts_with(|c: char| c.is_ascii_uppercase()) {
                violations.push(format!("{}: a TransportKind constant", file.display()));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// The library's modules import each other without a circle (`a` uses `b` uses `a`), test
/// code aside, between top-level modules (a folder module is one).
#[test]
fn no_import_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut uses: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for file in &files {
        let module = module_of(file, &src);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let entry = uses.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let used: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !used.is_empty() && used != module {
                entry.insert(used);
            }
        }
    }
    // Depth-first search for a way back to where it started.
    fn reaches(
        uses: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut Vec<String>,
    ) -> bool {
        for next in uses.get(from).into_iter().flatten() {
            if next == to {
                return true;
            }
            if !seen.contains(next) {
                seen.push(next.clone());
                if reaches(uses, next, to, seen) {
                    return true;
                }
            }
        }
        false
    }
    let circles: Vec<&String> =
        uses.keys().filter(|m| reaches(&uses, m, m, &mut Vec::new())).collect();
    assert!(circles.is_empty(), "modules in an import circle: {circles:?}");
}
