//! Replacing a small file so that it survives a power cut: the old content or the new one, never half of either.
//!
//! A process kill leaves the page cache to the kernel, which writes it out anyway; a power cut loses it. So a file is
//! durable only once its data and the directory entry naming it are on the disk: write a temporary file beside it,
//! `fsync` it, rename it over the old one, then `fsync` the directory. Used for every file the product replaces (the
//! camera choice, the staff PIN lock, the sandbox's state, the metrics file); the queue key has its own variant that
//! never replaces an existing key, and directories the product creates (the data directory, quarantine) are made
//! with [`create_dir_all`], which makes each new entry durable in its parent. Tested against real power cuts by
//! `.ci/vm/powercut-test`.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Makes the entries of directory `dir` durable (a file created, renamed or removed in it).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes`, durably, with permission bits `mode` on a new file. A temporary file
/// (`.<name>.tmp-<pid>`) is removed again if any step fails.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = parent_dir(path);
    let tmp = temp_path(path);
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates directory `path` and any missing parents with permission bits `mode` (before the umask, as `mkdir`), and
/// makes each new entry durable: after every `mkdir`, its parent is `fsync`ed. Without that, a power cut shortly
/// after the first start can take the whole new directory away with everything in it, even files that were
/// `fsync`ed themselves (their data is on the disk, but no directory names them). A directory that already exists is
/// left as it is. Returns how many directories were created.
pub fn create_dir_all(path: &Path, mode: u32) -> std::io::Result<usize> {
    // The missing tail of the path, outermost first.
    let mut missing = Vec::new();
    let mut p = path;
    loop {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", p.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(p);
                match p.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                    _ => break,
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut created = 0;
    for dir in missing.into_iter().rev() {
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match b.create(dir) {
            Ok(()) => {
                created += 1;
                sync_dir(parent_dir(dir))?;
            }
            // Another process made it meanwhile: it is theirs to make durable, and it is there.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

/// Removes `path` durably; a file that is not there is not an error.
pub fn remove_file(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(parent_dir(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("choice");
        replace_file(&path, b"one", 0o600).unwrap();
        replace_file(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("choice")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        remove_file(&path).unwrap();
        remove_file(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn create_dir_all_makes_only_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a").join("b").join("c");
        assert_eq!(create_dir_all(&deep, 0o700).unwrap(), 3);
        assert!(deep.is_dir());
        assert_eq!(create_dir_all(&deep, 0o700).unwrap(), 0);
        assert_eq!(create_dir_all(dir.path(), 0o700).unwrap(), 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&deep).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !0o700, 0, "never looser than asked: {mode:o}");
        }
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(create_dir_all(&file.join("sub"), 0o700).is_err(), "a file in the way is an error");
        assert!(create_dir_all(&file, 0o700).is_err());
        // Relative paths work too (their parent is the current directory).
        assert_eq!(parent_dir(Path::new("rel")), Path::new("."));
    }

    #[test]
    fn a_failed_replace_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("missing-dir-file");
        assert!(replace_file(&path, b"x", 0o600).is_err());
        assert!(!path.exists());
    }
}
