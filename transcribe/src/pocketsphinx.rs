//! The offline engine: CMU pocketsphinx's command-line decoder (`pocketsphinx_continuous`, Debian's
//! `pocketsphinx` package) with a packaged acoustic model, language model and dictionary
//! (`pocketsphinx-en-us`). One child process per job, at a lower CPU priority than the server so a busy
//! machine keeps the calls' timing; killed if the job times out.
//!
//! Its model is trained on 16 kHz speech, so phone audio is resampled to 16 kHz first; accuracy on phone
//! audio is modest (docs/performance.md has the word error rates measured here): use the HTTP engine with a
//! Whisper server where that matters.

use crate::audio::{resample, wav_bytes};
use serde::{Deserialize, Serialize};
use crate::engine::{Audio, Engine, EngineError, EngineFuture};
use oncall_core::transcript::{primary_language, Transcript};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PocketsphinxConfig {
    /// The decoder (`pocketsphinx_continuous` from Debian's `pocketsphinx`), on PATH or a path.
    pub program: String,
    /// The model folder: an acoustic model folder, a `*.lm.bin` language model and a `*.dict` dictionary
    /// (Debian's `pocketsphinx-en-us` installs all three here).
    pub model_dir: PathBuf,
    /// The languages that model is for.
    pub languages: Vec<String>,
    /// The decoder's CPU priority below the server's (nice(2) increment).
    pub nice: i32,
}

impl Default for PocketsphinxConfig {
    fn default() -> Self {
        PocketsphinxConfig {
            program: "pocketsphinx_continuous".into(),
            model_dir: PathBuf::from("/usr/share/pocketsphinx/model/en-us"),
            languages: vec!["en".into()],
            nice: 10,
        }
    }
}

/// A located model: the acoustic model folder, the language model and the dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub hmm: PathBuf,
    pub lm: PathBuf,
    pub dict: PathBuf,
}

/// Finds the model's three parts in `dir` (the layout of Debian's `pocketsphinx-en-us`: `en-us/` with the
/// acoustic model's `mdef`, `en-us.lm.bin`, `cmudict-en-us.dict`). The error names the config key.
pub fn locate_model(dir: &Path) -> Result<Model, String> {
    let key = "transcription.pocketsphinx.model_dir";
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("{key} = {:?}: {e} (install pocketsphinx-en-us, or point it at a pocketsphinx model folder)", dir.display()))?;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let hmm = files.iter().find(|p| p.join("mdef").is_file()).cloned();
    let lm = files.iter().find(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        (name.ends_with(".lm.bin") || name.ends_with(".lm")) && !name.contains("phone")
    });
    let dict = files.iter().find(|p| p.extension().is_some_and(|e| e == "dict"));
    match (hmm, lm, dict) {
        (Some(hmm), Some(lm), Some(dict)) => Ok(Model { hmm, lm: lm.clone(), dict: dict.clone() }),
        (hmm, lm, dict) => {
            let missing: Vec<&str> = [(hmm.is_none(), "acoustic model folder (with mdef)"), (lm.is_none(), "language model (*.lm.bin)"), (dict.is_none(), "dictionary (*.dict)")]
                .into_iter()
                .filter_map(|(m, what)| m.then_some(what))
                .collect();
            Err(format!("{key} = {:?} has no {}", dir.display(), missing.join(", no ")))
        }
    }
}

/// The program on `PATH` (or the path itself when it has a slash).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}

pub struct Pocketsphinx {
    program: PathBuf,
    model: Model,
    languages: Vec<String>,
    work_dir: PathBuf,
    nice: i32,
}

static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// Deletes the job's temporary WAV however the job ends (a timeout drops the future mid-run).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Pocketsphinx {
    /// Checks the program and the model now, so a bad setting stops the start with the key to fix.
    pub fn new(config: &PocketsphinxConfig, work_dir: &Path) -> Result<Pocketsphinx, String> {
        let program = find_program(&config.program).ok_or_else(|| {
            format!("transcription.pocketsphinx.program = {:?} is not installed (apt install pocketsphinx pocketsphinx-en-us)", config.program)
        })?;
        let model = locate_model(&config.model_dir)?;
        Ok(Pocketsphinx { program, model, languages: config.languages.iter().map(|l| primary_language(l)).collect(), work_dir: work_dir.to_path_buf(), nice: config.nice })
    }

    async fn run(&self, audio: &Audio) -> Result<Transcript, EngineError> {
        let wide = resample(audio, 16_000);
        let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
        let file = TempFile(self.work_dir.join(format!("transcribe-{}-{n}.wav", std::process::id())));
        tokio::fs::write(&file.0, wav_bytes(&wide)).await.map_err(|e| EngineError::Retry(format!("writing {}: {e}", file.0.display())))?;
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.arg("-infile").arg(&file.0).arg("-hmm").arg(&self.model.hmm).arg("-lm").arg(&self.model.lm).arg("-dict").arg(&self.model.dict);
        cmd.args(["-logfn", "/dev/null", "-time", "yes"]);
        cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
        let nice = self.nice;
        // SAFETY: nice(2) is a plain system call, safe between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::nice(nice);
                Ok(())
            });
        }
        let out = cmd.output().await.map_err(|e| EngineError::Retry(format!("running {}: {e}", self.program.display())))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(EngineError::Retry(format!("{} exited with {}: {}", self.program.display(), out.status, err.lines().last().unwrap_or(""))));
        }
        Ok(parse_timed(&String::from_utf8_lossy(&out.stdout)))
    }
}

impl Engine for Pocketsphinx {
    fn name(&self) -> &str {
        "pocketsphinx"
    }

    fn supports(&self, language: &str) -> bool {
        self.languages.contains(&primary_language(language))
    }

    fn transcribe<'a>(&'a self, audio: &'a Audio, _language: &'a str) -> EngineFuture<'a> {
        Box::pin(self.run(audio))
    }
}

/// The words of `-time yes` output (`word start end posterior` lines; hypothesis lines have other shapes and
/// are skipped), without fillers (`<s>`, `<sil>`, `[NOISE]`) or alternate-pronunciation marks (`read(2)`). The
/// confidence is the mean word posterior.
pub fn parse_timed(out: &str) -> Transcript {
    let mut words = Vec::new();
    let mut posteriors = Vec::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [word, start, end, p] = f[..] else { continue };
        let (Ok(_), Ok(_), Ok(p)) = (start.parse::<f64>(), end.parse::<f64>(), p.parse::<f64>()) else { continue };
        if word.starts_with('<') || word.starts_with('[') || word.starts_with("++") {
            continue;
        }
        let word = word.split('(').next().unwrap_or(word);
        words.push(word.to_string());
        posteriors.push(p);
    }
    let confidence = (!posteriors.is_empty()).then(|| posteriors.iter().sum::<f64>() / posteriors.len() as f64);
    Transcript::new(&words.join(" "), confidence, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_output_gives_words_and_mean_posterior() {
        let out = "water is through the ceiling\n<s> 0.000 0.020 0.998900\nwater 0.030 0.360 0.5\nis(2) 0.370 0.550 0.7\n<sil> 0.560 0.980 0.998900\n[NOISE] 1.0 1.1 0.9\nthrough 0.990 1.230 0.3\n</s> 4.490 4.880 1.000000\n";
        let t = parse_timed(out);
        assert_eq!(t.text, "water is through");
        assert!((t.confidence.unwrap() - 0.5).abs() < 1e-9);
        assert!(!t.low_quality);
    }

    #[test]
    fn no_words_is_an_empty_transcript_without_confidence() {
        let t = parse_timed("\n<s> 0.000 0.020 0.998900\n</s> 4.490 4.880 1.000000\n");
        assert_eq!(t.text, "");
        assert_eq!(t.confidence, None);
    }

    #[test]
    fn a_missing_model_names_the_key() {
        let e = locate_model(Path::new("/nonexistent/model")).unwrap_err();
        assert!(e.contains("transcription.pocketsphinx.model_dir"), "{e}");
        let dir = std::env::temp_dir().join(format!("oncall-ps-model-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("en-us")).unwrap();
        std::fs::write(dir.join("en-us.lm.bin"), b"").unwrap();
        let e = locate_model(&dir).unwrap_err();
        assert!(e.contains("has no acoustic model"), "{e}");
        assert!(e.contains("dictionary"), "{e}");
        std::fs::write(dir.join("en-us/mdef"), b"").unwrap();
        std::fs::write(dir.join("cmudict-en-us.dict"), b"").unwrap();
        let m = locate_model(&dir).unwrap();
        assert!(m.hmm.ends_with("en-us") && m.lm.ends_with("en-us.lm.bin") && m.dict.ends_with("cmudict-en-us.dict"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
