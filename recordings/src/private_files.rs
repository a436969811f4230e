//! Creating the files that hold callers' voices, and their folders, closed to other local users
//! (issue #15: recordings, greetings and archive copies were created 0644 in 0755 folders, so any
//! account on the machine could play every message).
//!
//! Files are created [`FILE_MODE`] (0640: the server's user writes, its group — a backup agent —
//! reads) and folders [`DIR_MODE`] (0750), set at `open`/`mkdir` time so no moment exists when the
//! file is world-readable; the process umask can only narrow them further. Folders that already
//! exist are left as they are except by [`restrict_dir`], which the server runs on its top-level
//! data folders at start-up (closing those closes everything below, whatever older files' modes).
//! On non-Unix systems these are the plain `std::fs` calls.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of recordings, greetings and archive copies.
pub const FILE_MODE: u32 = 0o640;
/// Mode of the folders holding them.
pub const DIR_MODE: u32 = 0o750;

/// `create_dir_all`, with every folder it creates made [`DIR_MODE`].
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(path)
}

/// Opens a new file for writing, [`FILE_MODE`]; fails if it exists (`create_new`).
pub fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
    options().create_new(true).open(path)
}

/// Creates or truncates a file for writing, [`FILE_MODE`] when created.
pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
    options().create(true).truncate(true).open(path)
}

fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, FILE_MODE);
    o
}

/// Takes other users' access away from an existing folder (keeps the owner's and group's).
pub fn restrict_dir(path: impl AsRef<Path>) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = path.as_ref();
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o007 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o007))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_folders_are_created_closed_to_other_users() {
        let dir = TestDir::new("private-files");
        let nested = dir.path().join("org/2026/12");
        create_dir_all(&nested).unwrap();
        for d in [dir.path().join("org"), dir.path().join("org/2026"), nested.clone()] {
            assert_eq!(mode(&d) & 0o007, 0, "{}", d.display());
        }
        let f = nested.join("a.wav");
        create_new(&f).unwrap();
        assert_eq!(mode(&f) & 0o007, 0);
        assert!(create_new(&f).is_err(), "create_new never overwrites");
        create(nested.join("b.wav")).unwrap();
        assert_eq!(mode(&nested.join("b.wav")) & 0o007, 0);

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        restrict_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o750);
    }
}
