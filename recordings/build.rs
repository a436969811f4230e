//! Embeds the product's prompts (`../sounds/*.wav`) in the crate, so the `oncall` binary answers calls
//! from any folder with nothing beside it; `[storage] sounds_dir` only overrides them.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let sounds = manifest.join("../sounds");
    println!("cargo:rerun-if-changed={}", sounds.display());
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(&sounds)
        .unwrap_or_else(|e| panic!("reading {}: {e}", sounds.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            (path.extension()? == "wav").then_some((stem, path))
        })
        .collect();
    names.sort();
    let mut out = String::from("/// The prompts shipped in `sounds/`, by name (file stem), as WAV bytes.\n");
    out.push_str("pub static EMBEDDED_PROMPTS: &[(&str, &[u8])] = &[\n");
    for (name, path) in &names {
        let path = path.canonicalize().expect("a listed file exists");
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(out, "    ({name:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_prompts.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}
