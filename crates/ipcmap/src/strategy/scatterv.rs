//! `scatterv`: mpi4py's idiom, `comm.Scatterv` of the `numpy.array_split` parts, compute,
//! `comm.Gatherv` of the results. One part per worker rank, each encoded as one block with the
//! codec (split's framing), sent to every rank in one collective call and gathered back in
//! another: static scheduling, where split hands out parts one by one as results return.
//!
//! It runs only over a transport with collectives (`--transport mpi`); the scheduler asks the
//! pool to [`scatter`](crate::transport::Pool::scatter) the task frames, and the results come
//! back as frames like any other strategy's.

use super::split::Split;
use super::{Compute, Info, Run, Strategy};
use crate::costs::{Load, Prediction};
use crate::error::{PayloadError, RunError};
use crate::partition::{self, Task};
use crate::protocol::Setup;
use crate::settings::Settings;

/// `comm.Scatterv(array_split(data, ranks))`, compute, `comm.Gatherv`.
pub struct Scatterv;

/// Its `--help` line.
const ABOUT: &str =
    "one array_split part per MPI rank by Scatterv/Gatherv, like mpi4py (--transport mpi)";

impl Strategy for Scatterv {
    /// No pipeline: rank 0 encodes every part, one collective moves them all, each rank
    /// decodes, computes and encodes its part at once, another collective brings them all back
    /// and rank 0 decodes them: the sum of those stages.
    fn predict(&self, l: &Load<'_>) -> Option<Prediction> {
        let c = l.cal.codec(&l.codec)?;
        let (encode, decode) = (c.encode_ns.at(l.pick) * l.n, c.decode_ns.at(l.pick) * l.n);
        let moving = l.one_way_ns(c.bytes_per_value * l.n);
        let (spawn, generate) = (l.spawn_ns(), l.generate_ns(false));
        let ranks = (encode + decode + l.compute_ns()) / l.parallel();
        let stages = [
            ("spawn", spawn),
            ("generate", generate),
            ("encode (rank 0)", encode),
            ("Scatterv", moving),
            ("decode, compute, encode (every rank at once)", ranks),
            ("Gatherv", moving),
            ("decode (rank 0)", decode),
        ];
        Some(Prediction {
            wall_ms: Load::ms(stages.iter().map(|(_, ns)| ns).sum()),
            phases_ms: stages.iter().map(|&(name, ns)| (name, Load::ms(ns))).collect(),
        })
    }

    fn info(&self) -> Info {
        Info::local("scatterv", ABOUT).on_processes().encoded().unsplit().collective()
    }

    /// One task per worker: the whole of its part.
    fn tasks(&self, s: &Settings, _chunksize: usize) -> Vec<Task> {
        partition::group(partition::array_split(s.n, s.workers.min(s.n).max(1)), 1)
    }

    /// Split's halves: parts encoded as blocks; only how they travel differs.
    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        Split.run(run)
    }

    fn worker(&self, setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        Split.worker(setup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::TransportKind;

    #[test]
    fn one_part_per_worker_and_only_over_mpi() {
        let s = Settings {
            workers: 3,
            n: 10,
            ..crate::config::RunRequest {
                modes: vec![crate::strategy::Mode::SEQUENTIAL],
                ..Default::default()
            }
            .validate()
            .map(|c| c.settings)
            .unwrap()
        };
        let tasks = Scatterv.tasks(&s, 1);
        let lens: Vec<usize> = tasks.iter().map(Task::len).collect();
        assert_eq!(lens, [4, 3, 3]);
        let (local, mpi) = (TransportKind::default(), TransportKind::named("mpi").unwrap());
        assert!(Scatterv.runs_over(local).is_err());
        assert!(Scatterv.runs_over(mpi).is_ok());
        let refused = crate::strategy::shm::Shm.runs_over(mpi).unwrap_err();
        assert!(refused.contains("over mpi run sequential, item, split, scatterv"), "{refused}");
    }
}
