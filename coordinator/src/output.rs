//! Output destinations (`--csv`, `--json`, `--plot`): each is opened (or created) before the
//! first worker starts, so a bad path costs nothing, and written through to the end with the
//! flush checked, so a full disk is an error, never a silently short file. A file this run
//! created is removed again if the run fails: no partial output passes for a complete one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An output destination, open and ready.
pub struct Output {
    flag: &'static str,
    path: PathBuf,
    file: Option<File>,
    /// This run created it (so removing it on failure takes nothing of the user's).
    created: bool,
    done: bool,
}

impl Output {
    /// Opens `path` for writing (truncating it) or creates it; errors name the flag, the path
    /// and the OS's reason.
    pub fn open(flag: &'static str, path: &Path) -> Result<Output, String> {
        let existed = std::fs::symlink_metadata(path).is_ok();
        if path.is_dir() {
            return Err(format!("{flag} {}: is a directory", path.display()));
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(format!(
                "{flag} {}: folder {} does not exist",
                path.display(),
                parent.display()
            ));
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        Ok(Output {
            flag,
            path: path.to_path_buf(),
            file: Some(file),
            created: !existed,
            done: false,
        })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything `write` produces, then flushes and syncs; any failure is an error
    /// that names the destination.
    pub fn write_with(
        &mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        let name = format!("{} {}", self.flag, self.path.display());
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("{name}: already written"))?;
        let mut buffered = std::io::BufWriter::new(file);
        write(&mut buffered).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let file = buffered
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{name}: {}", e.error()))?;
        // Regular files: make the data reach the file system; devices may refuse a sync.
        if file.metadata().is_ok_and(|m| m.is_file()) {
            file.sync_data()
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        }
        self.file = None;
        self.done = true;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.done && self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_or_a_missing_folder_is_refused_with_its_reason() {
        let dir = std::env::temp_dir();
        let err = Output::open("--csv", &dir).err().unwrap();
        assert!(err.contains("is a directory"), "{err}");
        let err = Output::open("--csv", Path::new("/nonexistent/x.csv"))
            .err()
            .unwrap();
        assert!(err.contains("folder /nonexistent does not exist"), "{err}");
    }

    #[test]
    fn a_full_device_is_an_error_and_an_unwritten_file_is_removed() {
        if Path::new("/dev/full").exists() {
            let mut full = Output::open("--json", Path::new("/dev/full")).unwrap();
            let err = full.write_with(|w| w.write_all(b"{}\n")).unwrap_err();
            assert!(err.to_string().contains("No space left"), "{err}");
        }
        let path = std::env::temp_dir().join(format!("ipcmap-output-{}.csv", std::process::id()));
        let out = Output::open("--csv", &path).unwrap();
        assert!(path.exists());
        drop(out); // never written: the run failed
        assert!(!path.exists());
    }
}
