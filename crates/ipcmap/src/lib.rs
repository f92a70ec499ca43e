//! ipcmap: what does it really cost to move numeric data between processes, and when does it pay?
//!
//! The `coordinator` binary applies a math function ([`kernel`]) to a vector ([`data`]) with one
//! of several [`strategy`] modules: sequentially, on threads, or on real worker processes that
//! receive individual floats or whole sub-vectors encoded by a [`codec`], or share memory. The
//! [`transport`] starts the workers and carries their frames, the [`scheduler`] scatters tasks and gathers results over the
//! [`protocol`], and every phase lands in the [`report`] model. [`engine`] ties them together;
//! [`worker`] is the worker process's side.

pub mod codec;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod fault;
pub mod interrupt;
pub mod kernel;
pub mod memory;
pub mod partition;
pub mod plan;
pub mod probe;
pub mod protocol;
pub mod report;
pub mod rundir;
pub mod scheduler;
pub mod settings;
pub mod shared;
pub mod stats;
pub mod strategy;
pub mod sweep;
pub mod trace;
pub mod transport;
pub mod verify;
pub mod worker;
