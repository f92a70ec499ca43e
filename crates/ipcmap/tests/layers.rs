//! The library's layers, checked: no module imports (`crate::...`) a module above its own
//! layer. Test code (after a file's first `#[cfg(test)]`) may reach anywhere. The table here
//! is the one ARCHITECTURE.md draws; a new module must be placed in it.

use std::path::Path;

/// Bottom to top: a module may use modules of its own layer or of layers before it.
const LAYERS: &[&[&str]] = &[
    // leaves
    &[
        "kernel",
        "codec",
        "partition",
        "stats",
        "shared",
        "memory",
        "data",
        "rundir",
        "plan",
        "fault",
        "trace",
    ],
    // the wire, the errors, the result model, the settings a run reads
    &[
        "protocol",
        "error",
        "interrupt",
        "verify",
        "report",
        "settings",
    ],
    // moving frames between processes
    &["transport"],
    // scatter and gather over a pool
    &["scheduler", "decoders"],
    // the strategies, one file each
    &["strategy"],
    // the worker process's loop; a run's validated configuration
    &["worker", "config"],
    // what binaries call
    &["engine", "probe", "sweep"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a source file belongs to (`strategy/shm.rs` -> `strategy`).
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
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
            match layer_of(&used) {
                Some(layer) if layer > own => violations.push(format!(
                    "{} uses crate::{used} (layer {layer}) from {module} (layer {own})",
                    file.display()
                )),
                None if !used.is_empty() => violations.push(format!(
                    "{} uses crate::{used}, in no layer",
                    file.display()
                )),
                _ => {}
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
