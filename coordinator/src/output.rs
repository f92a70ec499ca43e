//! Output destinations (`--csv`, `--json`, `--plot`, `--trace`, `--timeline`): each is checked
//! before the first worker starts, so a bad path costs nothing, and written whole or not at
//! all. The data goes to a new private temporary file in the destination's folder
//! (`tempfile`, `O_EXCL`), and is renamed over the destination only once it is complete, flushed
//! and synced; a failed, interrupted or disk-full run leaves an existing file exactly as it
//! was and no temporary file behind.
//!
//! On a shared machine: a destination that is a symbolic link is refused (a link planted in a
//! shared folder never redirects what this run writes), so is one that is not a regular file
//! (a FIFO with no reader would block before the run), and so is one path named for two
//! outputs.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// An output destination, checked and ready.
pub struct Output {
    flag: &'static str,
    path: PathBuf,
    /// The destination with its folder resolved, to tell two spellings of one file apart.
    resolved: PathBuf,
    /// Where the data goes until it is complete.
    staging: Option<tempfile::NamedTempFile>,
    /// The mode the finished file gets: the existing file's, else 0666 less the umask.
    mode: u32,
}

/// Why user `me` could not rename a finished file over `file` in `folder`, if it could not:
/// in a sticky folder (`/tmp`), only the file's owner, the folder's owner or root may replace
/// it, and the rename would fail after the whole run.
fn cannot_replace(
    file: &std::fs::Metadata,
    folder: &std::fs::Metadata,
    me: u32,
) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let sticky = folder.mode() & 0o1000 != 0;
    match sticky && me != 0 && file.uid() != me && folder.uid() != me {
        true => Some("another user's file in a sticky folder: it cannot be replaced; name another"),
        false => None,
    }
}

impl Output {
    /// Checks `path` for `flag` and makes its temporary file beside it; errors name the flag,
    /// the path and the reason.
    pub fn open(flag: &'static str, path: &Path) -> Result<Output, String> {
        let shown = || format!("{flag} {}", path.display());
        let Some(name) = path.file_name() else {
            return Err(format!("{}: names no file", shown()));
        };
        if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
            return Err(format!("{}: names a folder (it ends in /); name a file", shown()));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(format!("{}: folder {} does not exist", shown(), parent.display()));
        }
        let mode = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                "{}: is a symbolic link; name the file itself (a link is never written through)",
                shown()
            ))
            }
            Ok(meta) if meta.is_dir() => return Err(format!("{}: is a directory", shown())),
            Ok(meta) if !meta.is_file() => {
                return Err(format!(
                    "{}: not a regular file (a FIFO, a device or a socket); name a file",
                    shown()
                ))
            }
            Ok(meta) => {
                let folder = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", shown()))?;
                let me = nix::unistd::geteuid().as_raw();
                if let Some(why) = cannot_replace(&meta, &folder, me) {
                    return Err(format!("{}: {why}", shown()));
                }
                meta.permissions().mode() & 0o7777
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0o666 & !umask(),
            Err(e) => return Err(format!("{}: {e}", shown())),
        };
        let resolved =
            std::fs::canonicalize(parent).map_err(|e| format!("{}: {e}", shown()))?.join(name);
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(parent)
            .map_err(|e| format!("{}: cannot write in {}: {e}", shown(), parent.display()))?;
        Ok(Output { flag, path: path.to_path_buf(), resolved, staging: Some(staging), mode })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything `write` produces to the temporary file, flushes and syncs it, then
    /// renames it over the destination. Any failure is an error that names the destination
    /// (a stop asked for by a signal is that stop's error), and leaves the destination as it
    /// was.
    pub fn write_with(
        &mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        let name = format!("{} {}", self.flag, self.path.display());
        let failed = |e: std::io::Error| match ipcmap::interrupt::requested() {
            Some(_) => anyhow::Error::from(ipcmap::interrupt::interrupted()),
            None => anyhow::anyhow!("{name}: {e}"),
        };
        let mut staging =
            self.staging.take().ok_or_else(|| anyhow::anyhow!("{name}: already written"))?;
        {
            let mut stoppable = Stoppable(std::io::BufWriter::new(staging.as_file_mut()));
            write(&mut stoppable).map_err(failed)?;
            stoppable.flush().map_err(failed)?;
        }
        let file = staging.as_file();
        file.sync_data().map_err(failed)?;
        file.set_permissions(std::fs::Permissions::from_mode(self.mode)).map_err(failed)?;
        if ipcmap::interrupt::requested().is_some() {
            return Err(ipcmap::interrupt::interrupted().into());
        }
        staging.persist(&self.path).map_err(|e| failed(e.error))?;
        Ok(())
    }
}

/// Errors unless every output names a different file.
pub fn check_distinct(outputs: &[Option<&Output>]) -> Result<(), String> {
    let outputs: Vec<&Output> = outputs.iter().flatten().copied().collect();
    for (i, a) in outputs.iter().enumerate() {
        if let Some(b) = outputs[..i].iter().find(|b| b.resolved == a.resolved) {
            return Err(format!(
                "{} and {} name the same file {}: give each output its own",
                b.flag,
                a.flag,
                a.path.display()
            ));
        }
    }
    Ok(())
}

/// A writer that fails as soon as a stop was asked for (SIGINT, SIGTERM, SIGHUP ...), so a
/// big trace is not written on for seconds after the user asked to stop.
struct Stoppable<W>(W);

impl<W: Write> Write for Stoppable<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(signal) = ipcmap::interrupt::requested() {
            return Err(std::io::Error::other(format!("interrupted by signal {signal}")));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The process's umask, read once (reading it means setting it; it is set straight back).
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        use nix::sys::stat::{umask, Mode};
        let old = umask(Mode::from_bits_truncate(0o077));
        umask(old);
        old.bits()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ipcmap-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_path_ending_in_a_slash_is_refused_up_front() {
        let e = Output::open("--export-json", Path::new("nodir/")).err().unwrap();
        assert!(e.contains("names a folder"), "{e}");
    }

    /// Another user's file in a sticky folder cannot be replaced by anyone but its owner, the
    /// folder's owner or root: refused before the run (as user 1000 here, for a file and a
    /// folder of nobody's).
    #[test]
    fn another_users_file_in_a_sticky_folder_is_refused_before_the_run() {
        use std::os::unix::fs::MetadataExt;
        let dir = scratch("sticky");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let file = dir.join("theirs.json");
        std::fs::write(&file, "{}").unwrap();
        let (meta, folder) = (std::fs::metadata(&file).unwrap(), std::fs::metadata(&dir).unwrap());
        let stranger = meta.uid().wrapping_add(1000).max(1);
        assert!(cannot_replace(&meta, &folder, stranger).is_some(), "a stranger is refused");
        assert!(cannot_replace(&meta, &folder, meta.uid()).is_none(), "its owner may");
        assert!(cannot_replace(&meta, &folder, 0).is_none(), "root may");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let folder = std::fs::metadata(&dir).unwrap();
        assert!(
            cannot_replace(&meta, &folder, stranger).is_none(),
            "not sticky: anyone who writes"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_a_missing_folder_a_link_and_a_fifo_are_refused_with_their_reason() {
        let dir = scratch("refused");
        let err = Output::open("--csv", &dir).err().unwrap();
        assert!(err.contains("is a directory"), "{err}");
        let err = Output::open("--csv", Path::new("/nonexistent/x.csv")).err().unwrap();
        assert!(err.contains("folder /nonexistent does not exist"), "{err}");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("link.csv")).unwrap();
        let err = Output::open("--csv", &dir.join("link.csv")).err().unwrap();
        assert!(err.contains("symbolic link"), "{err}");
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = Output::open("--json", &dir.join("fifo")).err().unwrap();
        assert!(err.contains("not a regular file"), "{err}");
        let err = Output::open("--json", Path::new("/dev/full")).err().unwrap();
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("failed");
        let path = dir.join("out.csv");
        std::fs::write(&path, b"old results").unwrap();
        let mut out = Output::open("--csv", &path).unwrap();
        let err = out
            .write_with(|w| {
                w.write_all(b"half of the new")?;
                Err(std::io::Error::other("disk full"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("--csv"), "{err}");
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"old results");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary left");
        // Never written (the run failed): also untouched, also nothing left.
        drop(Output::open("--csv", &path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"old results");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_complete_write_replaces_the_file_and_keeps_its_mode() {
        let dir = scratch("complete");
        let path = dir.join("out.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut out = Output::open("--json", &path).unwrap();
        out.write_with(|w| w.write_all(b"{}\n")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_file_named_twice_is_refused() {
        let dir = scratch("twice");
        let a = Output::open("--trace", &dir.join("x")).unwrap();
        let b = Output::open("--timeline", &dir.join(".").join("x")).unwrap();
        let c = Output::open("--plot", &dir.join("y")).unwrap();
        let err = check_distinct(&[Some(&a), None, Some(&c), Some(&b)]).unwrap_err();
        assert!(err.contains("--trace and --timeline name the same file"), "{err}");
        assert!(check_distinct(&[Some(&a), Some(&c)]).is_ok());
        drop((a, b, c));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
