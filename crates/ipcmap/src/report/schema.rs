//! The JSON Schemas of what ipcmap writes for programs, generated from the Rust types that are
//! serialized (schemars): a report (one line of `--format json`, one element of an
//! `--export-json` file), the channel probe, the codec probe and the function probe. The files under
//! `crates/ipcmap/schema/` are these, written by `coordinator schema KIND`; a test fails when
//! they drift from the types, and another validates real output against them with an
//! independent validator.

use super::{CodecProbe, FunctionProbe, ProbeReport, Report, SCHEMA_VERSION};
use schemars::{JsonSchema, Schema};

/// Each document ipcmap writes for programs, by the name `coordinator schema` takes.
pub const KINDS: [&str; 4] = ["report", "probe", "codecs", "functions"];

/// The schema of `kind` (one of [`KINDS`]), or None for another name.
pub fn schema(kind: &str) -> Option<Schema> {
    let (schema, title) = match kind {
        "report" => (of::<Report>(), "ipcmap report"),
        "probe" => (of::<ProbeReport>(), "ipcmap channel probe"),
        "codecs" => (of::<CodecProbe>(), "ipcmap codec probe"),
        "functions" => (of::<FunctionProbe>(), "ipcmap function probe"),
        _ => return None,
    };
    let mut schema = schema;
    schema.insert("title".into(), title.into());
    schema.insert("$comment".into(), format!("schema_version {SCHEMA_VERSION}").into());
    Some(schema)
}

/// `kind`'s schema as the file under `crates/ipcmap/schema/` holds it: pretty JSON, one newline.
pub fn schema_text(kind: &str) -> Option<String> {
    let schema = schema(kind)?;
    let text = serde_json::to_string_pretty(&schema).ok()?;
    Some(text + "\n")
}

/// The schema of `T`, with the doc comment of every field as its description.
fn of<T: JsonSchema>() -> Schema {
    schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_schema_that_describes_its_fields() {
        for kind in KINDS {
            let s = schema(kind).unwrap();
            let v = s.as_value();
            assert_eq!(v["type"], "object", "{kind}");
            let props = v["properties"].as_object().expect("properties");
            assert!(props.len() >= 4, "{kind}");
            for (key, p) in props {
                assert!(p.get("description").is_some() || p.get("$ref").is_some(), "{kind}.{key}");
            }
        }
        assert!(schema("nothing").is_none());
    }

    /// The published files are what the types say: run `coordinator schema KIND >
    /// crates/ipcmap/schema/KIND.schema.json` after changing a report type.
    #[test]
    fn the_published_files_match_the_types() {
        for kind in KINDS {
            let path = format!("{}/schema/{kind}.schema.json", env!("CARGO_MANIFEST_DIR"));
            let published = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                published == schema_text(kind).unwrap(),
                "{path} is out of date: run `coordinator schema {kind} > {path}`"
            );
        }
    }
}
