//! IVR settings: the menu (what each key does, timeouts, message length) and the greeting.
//!
//! The menu is an `oncall_ivr::IvrConfig`, stored per organization as JSON (`ivr_settings`);
//! until an organization saves one, the config file's `[ivr]` section is shown. A greeting
//! upload (WAV, MP3, FLAC, OGG, ...) is decoded with symphonia, resampled to 8 kHz mono by
//! `oncall_recordings::decode_bytes_to_8k_mono` and written with hound as 16-bit PCM to
//! `<data_dir>/sounds/<org-slug>/greeting.wav`, the key the binary plays to callers.

use super::layout::{base, see_other, Flash};
use crate::auth::{Manager, Viewer};
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::render;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use oncall_core::Timestamp;
use oncall_ivr::menu::{Action, Menu, MenuOption};
use oncall_ivr::{Digit, IvrConfig};
use std::path::PathBuf;

/// A sub-menu carried through the form unchanged (as a whole config's JSON, so it reads back
/// with `oncall_ivr::menu_json`).
fn sub_menu_json(menu: &Menu) -> String {
    let cfg = IvrConfig { menu: menu.clone(), ..IvrConfig::default() };
    oncall_ivr::menu_json::to_json(&cfg).unwrap_or_default()
}

fn sub_menu_from(text: &str) -> Option<Menu> {
    oncall_ivr::menu_json::from_json(text).ok().map(|c| c.menu)
}

/// Where an organization's greeting lives, relative to the data directory.
pub fn greeting_key(slug: &str) -> String {
    format!("sounds/{slug}/greeting.wav")
}

/// The organization's IVR config: saved on the web, else the server's default.
pub async fn current(state: &AppState, org: oncall_core::OrgId) -> WebResult<(IvrConfig, Option<String>)> {
    match state.store.ivr_settings(org).await? {
        Some(s) => {
            let cfg = oncall_ivr::menu_json::from_json(&s.menu_json).unwrap_or_else(|e| {
                tracing::warn!(org = %org, error = %e, "stored IVR menu does not parse; showing the default");
                state.config.default_ivr.clone()
            });
            Ok((cfg, s.greeting_key))
        }
        None => Ok((state.config.default_ivr.clone(), None)),
    }
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::PageOnCall { urgency: oncall_ivr::Urgency::Urgent } => "page_on_call",
        Action::PageOnCall { urgency: oncall_ivr::Urgency::Normal } => "page_on_call_normal",
        Action::RecordMessage => "record_message",
        Action::Play { .. } => "play",
        Action::SubMenu { .. } => "sub_menu",
        Action::Repeat => "repeat",
        Action::Hangup => "hangup",
    }
}

async fn page(state: &AppState, v: &Viewer, cfg: &IvrConfig, flash: Option<&str>, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let (_, greeting) = current(state, v.org.id).await?;
    let mut options: Vec<_> = cfg
        .menu
        .options
        .iter()
        .map(|o| {
            let (prompt, sub) = match &o.action {
                Action::Play { prompt } => (prompt.clone(), String::new()),
                Action::SubMenu { menu } => (String::new(), sub_menu_json(menu)),
                _ => (String::new(), String::new()),
            };
            serde_json::json!({"digit": o.digit.to_string(), "action": action_name(&o.action), "prompt": prompt, "sub": sub})
        })
        .collect();
    for _ in 0..2 {
        options.push(serde_json::json!({"digit": "", "action": "", "prompt": "", "sub": ""}));
    }
    let mut ctx = base(v, "ivr", flash);
    ctx.insert("cfg", cfg);
    ctx.insert("options", &options);
    ctx.insert("digits", &["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#"]);
    ctx.insert("has_greeting", &greeting.is_some());
    let mut prompts: Vec<&str> = state.config.prompts.names().collect();
    prompts.sort_unstable();
    ctx.insert("prompts", &prompts);
    ctx.insert("error", &error);
    Ok((status, render("ivr.html", &ctx)?).into_response())
}

pub async fn show(State(state): State<AppState>, Manager(v): Manager, Query(f): Query<Flash>) -> WebResult<Response> {
    let (cfg, _) = current(&state, v.org.id).await?;
    page(&state, &v, &cfg, f.flash.as_deref(), None, StatusCode::OK).await
}

/// Builds and checks the config from the form; the error names the field in words.
fn parse(pairs: &[(String, String)], base_cfg: &IvrConfig) -> Result<IvrConfig, String> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let all = |k: &str| pairs.iter().filter(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).collect::<Vec<_>>();
    let num = |k: &str, label: &str, lo: u64, hi: u64| -> Result<u64, String> {
        let v: u64 = get(k).parse().map_err(|_| format!("{label}: enter a whole number."))?;
        if !(lo..=hi).contains(&v) {
            return Err(format!("{label}: must be between {lo} and {hi}."));
        }
        Ok(v)
    };
    let mut cfg = base_cfg.clone();
    cfg.timeout_secs = num("timeout_secs", "Seconds to wait for a key", 1, 60)?;
    cfg.max_retries = num("max_retries", "Retries", 0, 10)? as u32;
    cfg.after_hours_emergency = pairs.iter().any(|(k, v)| k == "after_hours_emergency" && v == "1");
    cfg.max_message_secs = num("max_message_secs", "Longest message", 5, 600)?;
    cfg.silence_secs = num("silence_secs", "Silence that ends a message", 0, 60)?;
    let prompt = get("menu_prompt");
    if !prompt.is_empty() {
        cfg.menu.prompt = prompt;
    }
    let (digits, actions, prompts, subs) = (all("digit"), all("action"), all("prompt"), all("sub"));
    let mut options = Vec::new();
    for (i, d) in digits.iter().enumerate() {
        let action = actions.get(i).map(String::as_str).unwrap_or("");
        if d.is_empty() && action.is_empty() {
            continue;
        }
        let n = i + 1;
        let digit = d.chars().next().filter(|_| d.chars().count() == 1).and_then(Digit::from_char).ok_or(format!("Option {n}: choose a key."))?;
        if options.iter().any(|o: &MenuOption| o.digit == digit) {
            return Err(format!("Option {n}: key {digit} is used twice."));
        }
        let action = match action {
            "page_on_call" => Action::PageOnCall { urgency: oncall_ivr::Urgency::Urgent },
            "page_on_call_normal" => Action::PageOnCall { urgency: oncall_ivr::Urgency::Normal },
            "record_message" => Action::RecordMessage,
            "repeat" => Action::Repeat,
            "hangup" => Action::Hangup,
            "play" => {
                let p = prompts.get(i).cloned().unwrap_or_default();
                if p.is_empty() {
                    return Err(format!("Option {n}: name the prompt to play."));
                }
                Action::Play { prompt: p }
            }
            "sub_menu" => {
                let menu = sub_menu_from(subs.get(i).map(String::as_str).unwrap_or("")).ok_or(format!("Option {n}: this sub-menu can only be kept as it is."))?;
                Action::SubMenu { menu: Box::new(menu) }
            }
            _ => return Err(format!("Option {n}: choose what the key does.")),
        };
        options.push(MenuOption { digit, action });
    }
    if options.is_empty() {
        return Err("The menu needs at least one option.".into());
    }
    cfg.menu.options = options;
    Ok(cfg)
}

/// The prompt an uploaded greeting plays under (the call side registers it so).
const ORG_GREETING: &str = "org_greeting";

pub async fn save_menu(State(state): State<AppState>, Manager(v): Manager, Form(pairs): Form<Vec<(String, String)>>) -> WebResult<Response> {
    let (cfg, _) = current(&state, v.org.id).await?;
    // The call side's own check (issue 18 item 7): never "Saved." for a menu callers would not get.
    let prompts = state.config.prompts.clone();
    let checked = parse(&pairs, &cfg).and_then(|new| {
        new.check(|n| n == ORG_GREETING || prompts.get(n).is_some()).map_err(|e| format!("Not saved: {}.", capitalize(&e.to_string())))?;
        Ok(new)
    });
    match checked {
        Ok(new) => {
            let json = oncall_ivr::menu_json::to_json(&new).map_err(|e| WebError::Internal(e.to_string()))?;
            state.store.set_ivr_menu(v.org.id, &json, Timestamp::now()).await?;
            Ok(see_other("/ivr?flash=saved").into_response())
        }
        Err(e) => page(&state, &v, &cfg, None, Some(e), StatusCode::BAD_REQUEST).await,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A prompt as the caller hears it (8 kHz mono WAV), for the phone-menu page's players.
pub async fn prompt_audio(State(state): State<AppState>, Manager(_v): Manager, Path(name): Path<String>) -> WebResult<Response> {
    let name = name.strip_suffix(".wav").unwrap_or(&name);
    let samples = state.config.prompts.get(name).ok_or(WebError::NotFound)?;
    let wav = tokio::task::spawn_blocking(move || wav_bytes(&samples)).await.map_err(|e| WebError::Internal(e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "audio/wav"), (header::CACHE_CONTROL, "max-age=3600")], wav).into_response())
}

/// 8 kHz mono 16-bit PCM as a WAV file.
fn wav_bytes(samples: &[i16]) -> WebResult<Vec<u8>> {
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).map_err(|e| WebError::Internal(e.to_string()))?;
        for s in samples {
            w.write_sample(*s).map_err(|e| WebError::Internal(e.to_string()))?;
        }
        w.finalize().map_err(|e| WebError::Internal(e.to_string()))?;
    }
    Ok(out.into_inner())
}

/// The longest greeting accepted, in seconds.
pub const MAX_GREETING_SECS: u32 = 120;

/// Decodes any common audio file to 8 kHz mono 16-bit WAV bytes. Decoding is bounded (issue #15,
/// decode bomb): it stops as soon as more than [`MAX_GREETING_SECS`] of audio came out, so a small
/// file of hours of silence costs milliseconds, not a minute of CPU and gigabytes.
pub fn convert_greeting(bytes: &[u8], file_name: &str) -> Result<Vec<u8>, String> {
    use oncall_recordings::prompt::DecodeError;
    let ext = std::path::Path::new(file_name).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let limits = oncall_recordings::DecodeLimits::upload(MAX_GREETING_SECS);
    let samples = oncall_recordings::decode_bytes_to_8k_mono_within(bytes, ext.as_deref(), limits).map_err(|e| match e {
        DecodeError::TooLong { .. } => "The greeting is longer than two minutes; callers would hang up.".to_string(),
        e => format!("This file could not be read as audio ({e}). Use WAV, MP3, FLAC or OGG."),
    })?;
    if samples.is_empty() {
        return Err("The file has no audio.".into());
    }
    // Resampling can add a sample or two beyond what the decode limit counted.
    if samples.len() > 8000 * MAX_GREETING_SECS as usize + 8000 {
        return Err("The greeting is longer than two minutes; callers would hang up.".into());
    }
    wav_bytes(&samples).map_err(|e| e.to_string())
}

/// A multipart error: 413 when the upload is over the route's limit (`[http] max_upload_bytes`), else 400.
fn upload_failed(e: axum::extract::multipart::MultipartError) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::TooLarge("The file is too large to upload.".into())
    } else {
        WebError::BadRequest(format!("The upload failed: {e}"))
    }
}

pub async fn upload_greeting(State(state): State<AppState>, Manager(v): Manager, mut mp: Multipart) -> WebResult<Response> {
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = mp.next_field().await.map_err(upload_failed)? {
        if field.name() == Some("greeting") {
            let name = field.file_name().unwrap_or("greeting").to_string();
            let bytes = field.bytes().await.map_err(upload_failed)?;
            file = Some((name, bytes.to_vec()));
        }
    }
    let (cfg, _) = current(&state, v.org.id).await?;
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return page(&state, &v, &cfg, None, Some("Choose an audio file to upload.".into()), StatusCode::BAD_REQUEST).await;
    };
    let wav = match tokio::task::spawn_blocking(move || convert_greeting(&bytes, &name)).await.map_err(|e| WebError::Internal(e.to_string()))? {
        Ok(w) => w,
        Err(e) => return page(&state, &v, &cfg, None, Some(e), StatusCode::BAD_REQUEST).await,
    };
    let key = greeting_key(&v.org.slug);
    let path: PathBuf = state.config.data_dir.join(&key);
    let tmp = path.with_extension("wav.tmp");
    let (target, write_tmp) = (path.clone(), tmp.clone());
    let write = move || -> std::io::Result<()> {
        use std::io::Write as _;
        // Closed to other local users, like recordings (issue #15).
        if let Some(dir) = target.parent() {
            oncall_recordings::private_files::create_dir_all(dir)?;
        }
        // Write then rename: a call never plays a half-written greeting.
        oncall_recordings::private_files::create(&write_tmp)?.write_all(&wav)?;
        std::fs::rename(&write_tmp, &target)
    };
    tokio::task::spawn_blocking(write)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(|e| WebError::Internal(format!("writing {}: {e}", path.display())))?;
    let default_json = oncall_ivr::menu_json::to_json(&cfg).map_err(|e| WebError::Internal(e.to_string()))?;
    state.store.set_ivr_greeting(v.org.id, Some(&key), &default_json, Timestamp::now()).await?;
    tracing::info!(org = %v.org.id, path = %path.display(), "greeting uploaded");
    Ok(see_other("/ivr?flash=greeting").into_response())
}

pub async fn greeting_audio(State(state): State<AppState>, Manager(v): Manager, headers: HeaderMap) -> WebResult<Response> {
    let (_, key) = current(&state, v.org.id).await?;
    let key = key.ok_or(WebError::NotFound)?;
    let src = crate::recording_source::LocalRecordings::new(state.config.data_dir.clone());
    let sub = AppState { recordings: std::sync::Arc::new(src), ..state.clone() };
    let mut resp = crate::pages::requests::serve_object(&sub, &key, &headers, None).await?;
    resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(resp)
}
