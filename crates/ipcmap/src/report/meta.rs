//! What a saved result needs to be compared later: the report's schema and the tool's
//! version, when and how it was run, and the machine it ran on (host, CPU, kernel, the
//! settings that change what processes cost: transparent huge pages, Yama's ptrace scope, the
//! load when the run started). Taken once per invocation, before the first run.

use serde::Serialize;

/// The version of the report's JSON and CSV layout: raised when a key changes meaning (keys
/// are only ever added).
pub const SCHEMA_VERSION: u32 = 1;

/// The report's description of itself and of its machine (flattened into its JSON).
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Meta {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The ipcmap version that wrote it.
    pub ipcmap_version: &'static str,
    /// When the invocation started, seconds since the Unix epoch.
    pub started_at_unix_s: u64,
    /// The command line, its words joined by spaces.
    pub command_line: String,
    /// The host's name.
    pub host: String,
    /// The CPU model (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpu_cores: usize,
    /// The kernel: its release, as `uname -r` prints it.
    pub kernel: String,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`'s chosen value (`always`, `madvise`,
    /// `never`); empty where the file is missing.
    pub thp_enabled: String,
    /// The same for shared memory (`shmem_enabled`), which decides shm's page size.
    pub thp_shmem_enabled: String,
    /// `/proc/sys/kernel/yama/ptrace_scope` (cma needs its workers let in); null without Yama.
    pub yama_ptrace_scope: Option<u32>,
    /// The 1-minute load average when the invocation started.
    pub load_average_1m: Option<f64>,
    /// What ties every process a run starts (its workers and whatever they start) to the
    /// run: "child subreaper" (the coordinator reaps its orphaned descendants and kills any
    /// left when it ends); null where nothing does.
    pub descendants_bound_by: Option<String>,
}

impl Meta {
    /// This invocation, on this machine, now.
    pub fn now() -> Meta {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let chosen = |path: &str| {
            let text = read(path);
            match (text.find('['), text.find(']')) {
                (Some(a), Some(b)) if a < b => text[a + 1..b].to_string(),
                _ => text.trim().to_string(),
            }
        };
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(String::new, |(_, m)| m.trim().to_string());
        Meta {
            schema_version: SCHEMA_VERSION,
            ipcmap_version: env!("CARGO_PKG_VERSION"),
            started_at_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            cpu_model,
            cpu_cores: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            thp_enabled: chosen("/sys/kernel/mm/transparent_hugepage/enabled"),
            thp_shmem_enabled: chosen("/sys/kernel/mm/transparent_hugepage/shmem_enabled"),
            yama_ptrace_scope: read("/proc/sys/kernel/yama/ptrace_scope").trim().parse().ok(),
            load_average_1m: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .and_then(|l| l.parse().ok()),
            descendants_bound_by: nix::sys::prctl::get_child_subreaper()
                .is_ok_and(|on| on)
                .then(|| "child subreaper".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_describes_itself() {
        let m = Meta::now();
        assert_eq!(m.schema_version, SCHEMA_VERSION);
        assert!(!m.ipcmap_version.is_empty() && m.started_at_unix_s > 1_700_000_000);
        assert!(m.cpu_cores >= 1 && !m.kernel.is_empty() && !m.command_line.is_empty());
        assert!(!m.thp_shmem_enabled.contains('['), "{}", m.thp_shmem_enabled);
    }
}
