//! ipcmap: what does it really cost to move numeric data between processes, and when does it pay?
//!
//! The `coordinator` binary applies a math function ([`kernel`]) to a vector ([`data`]) with one
//! of several [`strategy`] modules: sequentially, on threads, or on real worker processes that
//! receive individual floats or whole sub-vectors encoded by a [`codec`], or share memory. The
//! [`transport`] starts the workers and carries their frames, the [`scheduler`] scatters tasks and gathers results over the
//! [`protocol`], and every phase lands in the [`report`] model. [`engine`] ties them together;
//! [`worker`] is the worker process's side.

/// Equality, hashing, `Debug`, `Display` and `Serialize` by name for a registry handle (a
/// newtype over a registry entry with a `name()`): two handles are one entry when their names
/// are, and a handle prints and serializes as its name.
macro_rules! by_name {
    ($handle:ty) => {
        impl PartialEq for $handle {
            fn eq(&self, other: &Self) -> bool {
                self.name() == other.name()
            }
        }

        impl Eq for $handle {}

        impl std::hash::Hash for $handle {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.name().hash(state);
            }
        }

        impl std::fmt::Debug for $handle {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::fmt::Display for $handle {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $handle {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
    };
}

pub mod calibrate;
pub mod codec;
pub mod config;
pub mod costs;
pub mod data;
pub mod engine;
pub mod error;
pub mod fault;
pub mod floor;
pub mod interrupt;
pub mod kernel;
pub mod memory;
pub mod model;
pub mod named;
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
