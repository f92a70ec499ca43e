//! The output formats' trait ([`Exporter`]), their registry ([`EXPORTERS`]) and what each is
//! handed ([`Export`]): the reports, a sweep's axes, how a person's formats show them, and the
//! when-it-pays chart where one was drawn.

use super::{csv, html, json, markdown, table, Axis};
use super::{CodecProbe, FunctionProbe, ProbeReport, Report};
use crate::named::{registry_slice, Named};

/// Every output format, `--format`'s values in this order: its name, then its value. One line
/// per format. It makes [`EXPORTERS`], and in the tests one `#[test]` per format and behaviour.
#[macro_export]
macro_rules! for_each_exporter {
    ($($then:ident)::+!($($args:tt)*)) => {
        $($then)::+! { [$($args)*]
            table => &table::TableExporter,
            json => &json::JsonExporter,
            csv => &csv::CsvExporter,
            markdown => &markdown::MarkdownExporter,
            html => &html::HtmlExporter,
        }
    };
}

/// Every output format, `--format`'s values in this order ([`for_each_exporter!`]).
pub static EXPORTERS: &[&dyn Exporter] = crate::for_each_exporter!(registry_slice!());

/// The exporter called `name`.
pub fn exporter(name: &str) -> Option<&'static dyn Exporter> {
    EXPORTERS.iter().find(|e| e.name() == name).copied()
}

/// What an exporter writes: the reports, and the parameters a sweep varied (`None` for a run).
#[derive(Clone, Copy)]
pub struct Export<'a> {
    /// One per configuration and strategy.
    pub reports: &'a [Report],
    /// The sweep's varying parameters.
    pub axes: Option<&'a [Axis]>,
    /// How a person's formats show it (the terminal's table); programs' formats ignore it.
    pub view: View,
    /// The when-it-pays chart (SVG), where `--predict` drew one: the model's speedup lines
    /// with these runs' measured points. The HTML report shows it on its first screen.
    pub pays: Option<&'a str>,
}

impl<'a> Export<'a> {
    /// `reports` (of a sweep over `axes`), shown the default way.
    pub fn new(reports: &'a [Report], axes: Option<&'a [Axis]>) -> Export<'a> {
        Export { reports, axes, view: View::default(), pays: None }
    }

    /// With the when-it-pays chart.
    pub fn with_pays(self, pays: Option<&'a str>) -> Export<'a> {
        Export { pays, ..self }
    }
}

/// How the terminal's table shows a report: the summary and the wall-time table, or every
/// table (`--details`); in colour or not (`--color`, `NO_COLOR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Every table, not only the wall times.
    pub details: bool,
    /// ANSI colour.
    pub color: bool,
}

/// One output format: the reports of a run or sweep, and the probe, written for a reader.
pub trait Exporter: Named + Sync {
    /// Writes `reports`; `axes` are the parameters a sweep varied (`None` for a plain run).
    fn reports(&self, export: Export<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()>;
    /// Writes `reports` as a file of their own (`--export-NAME FILE`): what stdout gets,
    /// unless the format has a whole-document form (JSON: one array; Markdown: the
    /// explanation too).
    fn file(&self, export: Export<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.reports(export, out)
    }
    /// Writes the raw channel probe.
    fn probe(&self, probe: &ProbeReport, out: &mut dyn std::io::Write) -> std::io::Result<()>;
    /// Writes the codec probe (`probe --codecs`); one JSON object unless the format says more.
    fn codecs(&self, probe: &CodecProbe, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, probe)?;
        writeln!(out)
    }
    /// Writes the function probe (`probe --fn`); one JSON object unless the format says more.
    fn functions(
        &self,
        probe: &FunctionProbe,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, probe)?;
        writeln!(out)
    }
}
