//! Every file an invocation writes besides stdout (hyperfine's `ExportManager`): `--plot`,
//! `--csv`, `--json`, the `--export-*` files, `--trace`, `--timeline` and `--save-output`.
//! Each is opened, and checked, before anything runs, and written only once the reports are
//! in, each whole or not at all ([`Output`]).

use crate::cli::{Cli, SweepArgs};
use crate::output::Output;
use ipcmap::config::RunConfig;
use ipcmap::report::{plot_phases, plot_sweep, write_csv, write_json, Export, Exporter, Report};
use ipcmap::sweep::Axis;

/// The files of one invocation, opened.
#[derive(Default)]
pub struct Files {
    plot: Option<Output>,
    csv: Option<Output>,
    json: Option<Output>,
    /// `--export-json`, `--export-csv`, `--export-markdown`, `--export-html`.
    exports: Exports,
    /// `--trace`: the spans as a Chrome trace.
    trace: Option<Output>,
    /// `--timeline`: the spans as a Gantt chart.
    timeline: Option<Output>,
    /// `--save-output`: the result as a .npy file.
    save_output: Option<Output>,
}

impl Files {
    /// A run's files.
    pub fn for_run(cli: &Cli) -> Result<Files, String> {
        Files {
            plot: open(cli.plot.as_deref(), "--plot")?,
            exports: Exports::open(&cli.export)?,
            trace: open(cli.trace.as_deref(), "--trace")?,
            timeline: open(cli.timeline.as_deref(), "--timeline")?,
            save_output: open(cli.save_output.as_deref(), "--save-output")?,
            ..Files::default()
        }
        .distinct()
    }

    /// A sweep's files.
    pub fn for_sweep(args: &SweepArgs) -> Result<Files, String> {
        Files {
            plot: open(args.plot.as_deref(), "--plot")?,
            csv: open(args.csv.as_deref(), "--csv")?,
            json: open(args.json.as_deref(), "--json")?,
            exports: Exports::open(&args.export)?,
            ..Files::default()
        }
        .distinct()
    }

    /// Refuses one file named for two outputs.
    fn distinct(self) -> Result<Files, String> {
        crate::output::check_distinct(
            &[
                self.plot.as_ref(),
                self.csv.as_ref(),
                self.json.as_ref(),
                self.trace.as_ref(),
                self.timeline.as_ref(),
                self.save_output.as_ref(),
            ]
            .into_iter()
            .chain(self.exports.outputs().map(Some))
            .collect::<Vec<_>>(),
        )?;
        Ok(self)
    }

    /// Writes every file of `reports` (`axes`: a sweep's varying parameters; `pays`: the
    /// when-it-pays chart, for the HTML report; `first`: the run whose result `--save-output`
    /// keeps).
    pub fn write(
        &mut self,
        reports: &[Report],
        axes: Option<&[Axis]>,
        pays: Option<&str>,
        first: Option<&RunConfig>,
    ) -> anyhow::Result<()> {
        if let Some(out) = self.csv.as_mut() {
            out.write_with(|w| write_csv(reports, w))?;
        }
        if let Some(out) = self.json.as_mut() {
            out.write_with(|w| write_json(reports, w))?;
        }
        self.exports.write(reports, axes, pays)?;
        if let Some(out) = self.trace.as_mut() {
            out.write_with(|w| ipcmap::report::write_trace(reports, w))?;
        }
        if let Some(out) = self.timeline.as_mut() {
            let svg = ipcmap::report::plot_timeline(reports)
                .map_err(|e| anyhow::anyhow!("--timeline {}: {e}", out.path().display()))?;
            out.write_with(|w| w.write_all(svg.as_bytes()))?;
        }
        if let (Some(out), Some(c)) = (self.save_output.as_mut(), first) {
            // The verified result of every strategy is this, bit for bit: the kernel over the
            // input the seed generates.
            let s = &c.settings;
            let mut values = ipcmap::data::generate(s.seed, s.n);
            ipcmap::kernel::apply_work_in_place(s.function, s.work, &mut values);
            out.write_with(|w| ipcmap::codec::npy::write_array(&values, w))?;
        }
        if let Some(out) = self.plot.as_mut() {
            let svg = match axes {
                Some(axes) => plot_sweep(reports, axes),
                None => plot_phases(reports),
            }
            .map_err(|e| anyhow::anyhow!("--plot {}: {e}", out.path().display()))?;
            out.write_with(|w| w.write_all(svg.as_bytes()))?;
        }
        Ok(())
    }
}

/// The files `--export-*` name, opened (nothing is written until the reports are in), each
/// with the exporter that writes it.
#[derive(Default)]
struct Exports(Vec<(&'static dyn Exporter, Output)>);

impl Exports {
    fn open(args: &crate::cli::ExportArgs) -> Result<Exports, String> {
        let mut files = Vec::new();
        for (flag, format, path) in args.files() {
            let exporter = ipcmap::report::exporter(format)
                .ok_or_else(|| format!("{flag}: no exporter named {format}"))?;
            files.push((exporter, Output::open(flag, path)?));
        }
        Ok(Exports(files))
    }

    /// Writes every export of `reports` (`axes`: a sweep's varying parameters).
    fn write(
        &mut self,
        reports: &[Report],
        axes: Option<&[Axis]>,
        pays: Option<&str>,
    ) -> anyhow::Result<()> {
        for (exporter, out) in &mut self.0 {
            out.write_with(|w| exporter.file(Export::new(reports, axes).with_pays(pays), w))?;
        }
        Ok(())
    }

    fn outputs(&self) -> impl Iterator<Item = &Output> {
        self.0.iter().map(|(_, out)| out)
    }
}

fn open(path: Option<&std::path::Path>, flag: &'static str) -> Result<Option<Output>, String> {
    path.map(|p| Output::open(flag, p)).transpose()
}
