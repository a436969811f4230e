//! `oncall backup DIR` and `oncall restore DIR` (issue 24 item 3).
//!
//! A backup folder holds `oncall.db` (a consistent SQLite snapshot taken while the server runs), the recording
//! files that live only on this machine under `recordings/`, and `manifest.json` naming every file with its size
//! and SHA-256. With the local recordings backend that is every recording; with S3 it is the spool, the files not
//! yet archived (the bucket keeps the rest). With PostgreSQL the database is left to `pg_dump`: the backup checks
//! the connection, says so and still saves the spool.
//!
//! Restore checks every checksum before it writes anything, and only into an empty data folder, so a mistyped
//! path never overwrites a running server's data.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use oncall_core::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "oncall.db";
const RECORDINGS: &str = "recordings";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub oncall_version: String,
    pub created_at: String,
    /// The newest migration in the database copy (None: PostgreSQL, not in the backup).
    pub schema_version: Option<i64>,
    /// `oncall.db`, or None when the database is PostgreSQL.
    pub database: Option<String>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Relative to the backup folder, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

pub async fn backup(cfg: &Config, store: &Store, dir: &Path) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty: back up into a new folder (a backup never overwrites another)", dir.display());
    }
    oncall_recordings::private_files::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    oncall_recordings::private_files::restrict_dir(dir)?;
    let mut files = Vec::new();
    let (database, schema_version) = match oncall_core::store::sqlite_file(&cfg.storage.database_url()) {
        Some(_) => {
            let to = dir.join(DATABASE);
            store.snapshot_sqlite(&to).await.context("taking the database snapshot")?;
            files.push(entry(dir, DATABASE)?);
            (Some(DATABASE.to_string()), Some(store.schema_version().await?))
        }
        None => {
            println!("database: PostgreSQL (connection checked, schema version {}); back it up with pg_dump, e.g.", store.schema_version().await?);
            println!("  pg_dump --format=custom --file={}/oncall.pgdump \"$DATABASE_URL\"", dir.display());
            (None, None)
        }
    };
    let recordings = cfg.storage.recordings_dir();
    let mut copied = 0u64;
    for rel in walk(&recordings)? {
        let to = dir.join(RECORDINGS).join(&rel);
        if let Some(parent) = to.parent() {
            oncall_recordings::private_files::create_dir_all(parent)?;
        }
        std::fs::copy(recordings.join(&rel), &to).with_context(|| format!("copying {}", recordings.join(&rel).display()))?;
        files.push(entry(dir, &format!("{RECORDINGS}/{}", slashed(&rel)))?);
        copied += 1;
    }
    let manifest = Manifest {
        format: 1,
        oncall_version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        schema_version,
        database,
        files,
    };
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    std::fs::write(dir.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    let what = match cfg.storage.backend {
        oncall_recordings::storage::Backend::Local => "recordings",
        _ => "recordings not yet archived in S3",
    };
    println!(
        "backup written to {}: {}{copied} {what}, {bytes} bytes; restore with `oncall restore {}`",
        dir.display(),
        if manifest.database.is_some() { "the database, " } else { "" },
        dir.display()
    );
    Ok(())
}

/// Checks the backup, then copies it into the configured (empty) data folder and opens the database once, which
/// brings an older backup's schema up to date and refuses one from a newer OnCall.
pub async fn restore(cfg: &Config, dir: &Path) -> Result<()> {
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).with_context(|| format!("{} has no {MANIFEST}: is it a backup folder?", dir.display()))?)
        .with_context(|| format!("reading {}", dir.join(MANIFEST).display()))?;
    if manifest.format != 1 {
        bail!("{}: backup format {} is not one this OnCall reads (1)", dir.display(), manifest.format);
    }
    if let Some(v) = manifest.schema_version {
        let known = Store::known_schema_version();
        if v > known {
            bail!("the backup was made by OnCall {} (schema version {v}); this binary knows up to {known}: restore it with that version or newer", manifest.oncall_version);
        }
    }
    for f in &manifest.files {
        if f.path.split('/').any(|p| p == ".." || p.is_empty()) {
            bail!("{MANIFEST} names {:?}, outside the backup folder", f.path);
        }
        let got = entry(dir, &f.path).with_context(|| format!("{} is missing from the backup", f.path))?;
        if &got != f {
            bail!("{} does not match the manifest ({} bytes, sha256 {}; expected {} bytes, {}): the backup is damaged, nothing was restored", f.path, got.bytes, got.sha256, f.bytes, f.sha256);
        }
    }
    let db_file = oncall_core::store::sqlite_file(&cfg.storage.database_url());
    let recordings = cfg.storage.recordings_dir();
    match (&manifest.database, &db_file) {
        (Some(_), None) => bail!("the backup holds a SQLite database but storage.database_url is PostgreSQL: restore into a SQLite data folder, or load PostgreSQL with pg_restore"),
        (Some(_), Some(db)) if db.exists() => bail!("{} already exists: restore only into an empty data folder (stop the server and move the old data aside)", db.display()),
        _ => {}
    }
    if !walk(&recordings)?.is_empty() {
        bail!("{} already holds recordings: restore only into an empty data folder", recordings.display());
    }
    oncall_recordings::private_files::create_dir_all(&cfg.storage.data_dir)?;
    oncall_recordings::private_files::restrict_dir(&cfg.storage.data_dir)?;
    let mut restored = 0;
    for f in &manifest.files {
        let to = match f.path.strip_prefix(&format!("{RECORDINGS}/")) {
            Some(rel) => recordings.join(rel),
            None if Some(&f.path) == manifest.database.as_ref() => db_file.clone().context("no SQLite file to restore into")?,
            None => continue,
        };
        if let Some(parent) = to.parent() {
            oncall_recordings::private_files::create_dir_all(parent)?;
        }
        std::fs::copy(dir.join(&f.path), &to).with_context(|| format!("writing {}", to.display()))?;
        restored += 1;
    }
    let store = crate::open_store(cfg).await?;
    let orgs = store.list_organizations().await?.len();
    store.close().await;
    println!("restored {restored} files from the backup of {} (OnCall {}): {orgs} organizations; start the server with this configuration", manifest.created_at, manifest.oncall_version);
    if manifest.database.is_none() {
        println!("the database was not in the backup: load PostgreSQL from your pg_dump with pg_restore");
    }
    Ok(())
}

/// Every file below `root`, relative to it, sorted (none when it does not exist).
fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let Ok(read) = std::fs::read_dir(root.join(&rel)) else { continue };
        for e in read {
            let e = e?;
            let kind = e.file_type()?;
            let path = rel.join(e.file_name());
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn slashed(rel: &Path) -> String {
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn entry(dir: &Path, rel: &str) -> Result<FileEntry> {
    let mut file = std::fs::File::open(dir.join(rel))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    let sha256 = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(FileEntry { path: rel.to_string(), bytes, sha256 })
}
