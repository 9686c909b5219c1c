//! [`StaffLockFile`]: the staff PIN's wrong-try count and lock ([`LockRecord`]), kept in `<data_dir>/staff-lock`
//! beside the queue so that a restart (a pulled plug, a crash, `systemctl restart`) does not buy three more tries.
//! Written by the UI thread when the count or the lock changes (a few bytes, replaced durably), read once at start.
//!
//! The lock's end is stored as wall-clock time (the flow's clock starts at zero each run); a clock set back cannot
//! lengthen a lock beyond the policy's longest ([`crate::flow::staff::StaffState::restored`] caps it). A file that
//! cannot be read or parsed fails closed: the pad starts locked for the policy's first lock, and the log says why.

use crate::flow::staff::LockRecord;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The file's name in the data directory.
pub const STAFF_LOCK_FILE: &str = "staff-lock";
/// The largest file read (three short lines).
const MAX_BYTES: u64 = 1024;

/// The staff lock kept in one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffLockFile {
    path: PathBuf,
}

/// Why the file was not used.
#[derive(Debug, thiserror::Error)]
pub enum StaffLockError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not in the form this program writes (or is too long).
    #[error("{path} is not a staff lock record")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

impl StaffLockFile {
    /// The record kept in `data_dir`.
    pub fn new(data_dir: &Path) -> StaffLockFile {
        StaffLockFile { path: data_dir.join(STAFF_LOCK_FILE) }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record as of now: none kept is a clean record.
    pub fn load(&self) -> Result<LockRecord, StaffLockError> {
        self.load_at(SystemTime::now())
    }

    fn load_at(&self, now: SystemTime) -> Result<LockRecord, StaffLockError> {
        let malformed = || StaffLockError::Malformed { path: self.path.clone() };
        let text = match read_bounded(&self.path) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(LockRecord::default()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Err(malformed()),
            Err(source) => return Err(StaffLockError::Read { path: self.path.clone(), source }),
        };
        let (mut failures, mut lockouts, mut until) = (None, None, None);
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once('=').ok_or_else(malformed)?;
            let value: u64 = value.trim().parse().map_err(|_| malformed())?;
            match key.trim() {
                "failures" => failures = Some(u32::try_from(value).map_err(|_| malformed())?),
                "lockouts" => lockouts = Some(u32::try_from(value).map_err(|_| malformed())?),
                "locked_until" => until = Some(value),
                _ => return Err(malformed()),
            }
        }
        let (Some(failures), Some(lockouts), Some(until)) = (failures, lockouts, until) else {
            return Err(malformed());
        };
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(LockRecord { failures, lockouts, locked_for: Duration::from_secs(until.saturating_sub(now_secs)) })
    }

    /// Keeps `record` (a clean record removes the file).
    pub fn save(&self, record: &LockRecord) -> std::io::Result<()> {
        self.save_at(record, SystemTime::now())
    }

    fn save_at(&self, record: &LockRecord, now: SystemTime) -> std::io::Result<()> {
        if *record == LockRecord::default() {
            return crate::durable::remove_file(&self.path);
        }
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Rounded up, so a lock never ends early across a restart.
        let until = if record.locked_for.is_zero() {
            0
        } else {
            now_secs.saturating_add(record.locked_for.as_millis().div_ceil(1000) as u64)
        };
        let text = format!("failures = {}\nlockouts = {}\nlocked_until = {until}\n", record.failures, record.lockouts);
        crate::durable::replace_file(&self.path, text.as_bytes(), 0o600)
    }
}

/// Reads the file if it exists, at most [`MAX_BYTES`]; a longer file or one that is not UTF-8 is `InvalidData`.
fn read_bounded(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidData));
    }
    String::from_utf8(bytes).map(Some).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_its_lock_runs_on_wall_time() {
        let dir = tempfile::tempdir().unwrap();
        let f = StaffLockFile::new(dir.path());
        assert_eq!(f.load().unwrap(), LockRecord::default(), "nothing kept: a clean record");
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let rec = LockRecord { failures: 0, lockouts: 2, locked_for: Duration::from_millis(119_400) };
        f.save_at(&rec, t0).unwrap();
        let later = f.load_at(t0 + Duration::from_secs(20)).unwrap();
        assert_eq!(later, LockRecord { failures: 0, lockouts: 2, locked_for: Duration::from_secs(100) });
        assert_eq!(f.load_at(t0 + Duration::from_secs(500)).unwrap().locked_for, Duration::ZERO);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
        f.save(&LockRecord::default()).unwrap();
        assert!(!f.path().exists(), "a clean record leaves no file");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_clean_record() {
        let dir = tempfile::tempdir().unwrap();
        let f = StaffLockFile::new(dir.path());
        for bad in ["garbage", "failures = 1\nlockouts = x\nlocked_until = 0\n", "failures = 1\n", &"x".repeat(4096)] {
            std::fs::write(f.path(), bad).unwrap();
            assert!(matches!(f.load(), Err(StaffLockError::Malformed { .. })), "{bad:.20}");
        }
    }
}
