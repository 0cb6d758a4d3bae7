//! Where the development CA is kept so that every process of a user on one machine shares
//! it: which directory, the permissions it must have, and creating it atomically when two
//! processes start at once.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Names the directory of the development CA, overriding the per-user default.
pub(crate) const DIR_ENV: &str = "RPCNET_DEV_CA_DIR";

/// The file in that directory: the CA certificate and its private key, as PEM.
pub(crate) const FILE: &str = "ca-key.pem";

/// The directory of the development CA: `$RPCNET_DEV_CA_DIR`, else
/// `$XDG_DATA_HOME/rpcnet/dev-ca`, else `$HOME/.local/share/rpcnet/dev-ca`; `None` if none
/// of these is set (to an absolute path, for the XDG and HOME ones).
pub(crate) fn shared_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(dir) = var(DIR_ENV) {
        return Some(dir);
    }
    let data_home = var("XDG_DATA_HOME")
        .filter(|dir| dir.is_absolute())
        .or_else(|| var("HOME").filter(|home| home.is_absolute()).map(|home| home.join(".local/share")))?;
    Some(data_home.join("rpcnet").join("dev-ca"))
}

/// Why the stored CA cannot be used.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// The directory cannot be made or written to: nothing is wrong with a CA, there is
    /// just no place to keep one.
    Unwritable(String),
    /// A CA is there but is unsafe or unreadable: using it, or replacing it, would hide a
    /// problem its owner must fix.
    Refused(String),
}

/// The CA's PEM as stored in `dir`, and whether this call created it with `create`.
///
/// Creation is atomic: the PEM is written to a temporary file of its own (mode 0600),
/// then linked to its final name, which fails if another process got there first; that
/// process's CA is then read instead, so every process ends up with the same one.
pub(crate) fn load_or_create(dir: &Path, create: impl FnOnce() -> String) -> Result<(String, bool), StoreError> {
    make_private_dir(dir)?;
    check_dir(dir)?;
    let path = dir.join(FILE);
    if let Some(pem) = read(&path)? {
        return Ok((pem, false));
    }
    let unwritable = |e: std::io::Error| StoreError::Unwritable(format!("cannot write to {}: {e}", dir.display()));
    let temp = dir.join(format!(".{FILE}.{}.{:016x}.tmp", std::process::id(), rand::random::<u64>()));
    let pem = create();
    let written = write_private(&temp, &pem).map_err(unwritable);
    let linked = written.and_then(|()| match std::fs::hard_link(&temp, &path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(unwritable(e)),
    });
    let _ = std::fs::remove_file(&temp);
    if linked? {
        return Ok((pem, true));
    }
    // Another process created it between our read and our link: theirs is the one.
    match read(&path)? {
        Some(pem) => Ok((pem, false)),
        None => Err(StoreError::Refused(format!("{} vanished while it was being created", path.display()))),
    }
}

/// Reads the stored CA, `None` if there is none yet.
fn read(path: &Path) -> Result<Option<String>, StoreError> {
    let refused = |e: std::io::Error| StoreError::Refused(format!("cannot read {}: {e}", path.display()));
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refused(e)),
    };
    check_key_file(path, &metadata)?;
    std::fs::read_to_string(path).map(Some).map_err(refused)
}

#[cfg(unix)]
fn make_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Unwritable(format!("cannot create {}: {e}", dir.display())))
}

#[cfg(not(unix))]
fn make_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Unwritable(format!("cannot create {}: {e}", dir.display())))
}

/// A directory others can write to would let them swap the CA for theirs.
#[cfg(unix)]
fn check_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(dir)
        .map_err(|e| StoreError::Refused(format!("cannot read the directory {}: {e}", dir.display())))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(StoreError::Refused(format!(
            "the development CA directory {} is writable by other users (mode {mode:03o}): run `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_dir(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// The CA's key must be the user's alone: anyone who can read it can impersonate every
/// development server, and anyone who can write it can replace the CA.
#[cfg(unix)]
fn check_key_file(path: &Path, metadata: &std::fs::Metadata) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Refused(format!(
            "the development CA key {} is accessible to other users (mode {mode:03o}), so it is not used: run \
             `chmod 600 {}` if nobody else could have read it, else delete it to make a new CA",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_file(_path: &Path, _metadata: &std::fs::Metadata) -> Result<(), StoreError> {
    Ok(())
}

/// Writes `contents` to a new file that only its owner can read (on Unix), flushed to disk
/// before it is linked into place.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("rpcnet-{name}-{}-{:x}", std::process::id(), rand::random::<u32>()));
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_first_use_creates_a_private_file_and_later_uses_read_it() {
        let dir = TempDir::new("store-first");
        let (pem, created) = load_or_create(&dir.0, || "first".to_owned()).unwrap();
        assert_eq!((pem.as_str(), created), ("first", true));
        let (pem, created) = load_or_create(&dir.0, || unreachable!("a CA is there")).unwrap();
        assert_eq!((pem.as_str(), created), ("first", false), "the stored CA is read, not replaced");
        let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE], "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.0), 0o700, "the directory is the user's alone");
            assert_eq!(mode(&dir.0.join(FILE)), 0o600, "the key file is the user's alone");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_naming_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("store-readable");
        load_or_create(&dir.0, || "secret".to_owned()).unwrap();
        let path = dir.0.join(FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        match load_or_create(&dir.0, || unreachable!("never replaced")) {
            Err(StoreError::Refused(message)) => {
                assert!(message.contains("chmod 600") && message.contains("644"), "{message}");
            }
            other => panic!("a group/world readable key must be refused, got {other:?}"),
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        match load_or_create(&dir.0, || unreachable!("never replaced")) {
            Err(StoreError::Refused(message)) => assert!(message.contains("chmod 700"), "{message}"),
            other => panic!("a directory others can write must be refused, got {other:?}"),
        }
    }

    #[test]
    fn concurrent_first_uses_agree_on_one_ca() {
        let dir = TempDir::new("store-race");
        let start = std::sync::Barrier::new(8);
        let results: Vec<(String, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (dir, start) = (&dir.0, &start);
                    scope.spawn(move || {
                        start.wait();
                        load_or_create(dir, || format!("ca of thread {i}")).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created = results.iter().filter(|(_, created)| *created).count();
        assert_eq!(created, 1, "exactly one first use creates the CA: {results:?}");
        assert!(results.iter().all(|(pem, _)| *pem == results[0].0), "every use gets the same CA: {results:?}");
        let stored = std::fs::read_to_string(dir.0.join(FILE)).unwrap();
        assert_eq!(stored, results[0].0, "and it is the stored one");
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_unwritable_not_refused() {
        let dir = TempDir::new("store-blocked");
        std::fs::write(&dir.0, b"a file where the directory should be").unwrap();
        let result = load_or_create(&dir.0.join("dev-ca"), || "never".to_owned());
        assert!(matches!(result, Err(StoreError::Unwritable(_))), "got {result:?}");
        let _ = std::fs::remove_file(&dir.0);
    }
}
