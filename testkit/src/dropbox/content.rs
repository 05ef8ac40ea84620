//! A file's bytes at Dropbox: `files/get_temporary_link` (an RPC call) answers the file's
//! metadata and a `link` that serves it without a token for 4 hours
//! (<https://www.dropbox.com/developers/documentation/http/documentation#files-get_temporary_link>),
//! served by `downloads.rs`; a Paper doc has no bytes of its own (`is_downloadable: false`,
//! `export_info`) and is refused there with `unsupported_file`. `files/export` (a content
//! call on the content host: its argument in the `Dropbox-API-Arg` header, its result in the
//! `Dropbox-API-Result` header, the body the bytes) exports it as one of its
//! `export_options` (<https://www.dropbox.com/developers/documentation/http/documentation#files-export>).
//! Both need the `files.content.read` scope (401 `missing_scope` without it) and honour
//! `Dropbox-API-Path-Root` as the listings do.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{api_error, authenticate, bad_input, entry_json, is_gone, lower, team, typed_argument};
use crate::downloads::{converted, Host};
use crate::state::{lock, File, Provider, Shared, State as Inner};

/// What reading bytes needs (the scope each of these routes lists).
const CONTENT_SCOPE: &str = "files.content.read";

/// Paper docs are the files whose name ends so: they export as HTML or Markdown.
pub(crate) fn is_paper(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".paper")
}

/// `FileMetadata.export_info` of a Paper doc (`export_as`, the default, and
/// `export_options`).
pub(crate) fn export_info() -> serde_json::Value {
    json!({"export_as": "html", "export_options": ["html", "markdown"]})
}

#[derive(Deserialize)]
struct PathArg {
    path: String,
}

#[derive(Deserialize)]
struct ExportArg {
    path: String,
    export_format: Option<String>,
}

/// The file at `path` (an `id:` or a path) as the call's namespace shows it, with its path;
/// or the 409 `path/...` refusal. `endpoint` names the call in a 400.
fn lookup(
    state: &mut Inner,
    user: &str,
    endpoint: &str,
    headers: &HeaderMap,
    path: &str,
) -> Result<(File, String), Box<Response>> {
    let namespace = match team::requested_namespace(state, user, endpoint, headers) {
        Ok(requested) => requested.unwrap_or_else(|| team::home_namespace(user)),
        Err(refusal) => return Err(refusal),
    };
    let view =
        team::view_of(state, user, &namespace).expect("a namespace the header was allowed to name");
    let drive = state.drive(Provider::Dropbox, user);
    let wanted = lower(path);
    let found = drive.files.values().find_map(|f| {
        let shown = view.path(drive, &f.spec).filter(|_| !is_gone(f))?;
        (f.spec.id == path || lower(&shown) == wanted).then(|| (f.clone(), shown))
    });
    match found {
        None => Err(Box::new(api_error(
            StatusCode::CONFLICT,
            "path/not_found/.",
        ))),
        Some((file, _)) if file.spec.is_folder() => {
            Err(Box::new(api_error(StatusCode::CONFLICT, "path/not_file/.")))
        }
        Some(found) => Ok(found),
    }
}

fn bytes_of(state: &Inner, user: &str, file: &File) -> Vec<u8> {
    let version = hex::encode(file.spec.content_digest());
    state.downloads.bytes_of(
        Host::Dropbox,
        user,
        &file.spec.id,
        &version,
        file.spec.size.unwrap_or(0),
    )
}

pub(crate) async fn get_temporary_link(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "files/get_temporary_link";
    let args: PathArg = match typed_argument(ENDPOINT, &headers, &body) {
        Ok(args) => args,
        Err(refusal) => return *refusal,
    };
    let mut state = lock(&shared);
    let grant = match authenticate(&state, ENDPOINT, &headers, Some(CONTENT_SCOPE)) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let (file, path) = match lookup(&mut state, &grant.user, ENDPOINT, &headers, &args.path) {
        Ok(found) => found,
        Err(refusal) => return *refusal,
    };
    // "unsupported_file: Cannot get temporary link to this file type; use export instead."
    if is_paper(&file.spec.name) {
        return api_error(StatusCode::CONFLICT, "unsupported_file/.");
    }
    let bytes = bytes_of(&state, &grant.user, &file);
    let base = state.base_url.clone();
    let link = state
        .downloads
        .issue(&base, Host::Dropbox, bytes, "application/octet-stream");
    Json(json!({"metadata": entry_json(path, &file), "link": link})).into_response()
}

/// `files/export` on the content host. A content call takes its argument in the
/// `Dropbox-API-Arg` header and no body.
pub(crate) async fn export(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "files/export";
    if !body.is_empty() {
        return bad_input(
            ENDPOINT,
            "this call takes its argument in Dropbox-API-Arg, no body",
        );
    }
    let Some(arg) = headers.get("dropbox-api-arg").and_then(|v| v.to_str().ok()) else {
        return bad_input(
            ENDPOINT,
            "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".",
        );
    };
    let args: ExportArg = match serde_json::from_str(arg) {
        Ok(args) => args,
        Err(e) => return bad_input(ENDPOINT, &format!("HTTP header \"Dropbox-API-Arg\": {e}")),
    };
    let mut state = lock(&shared);
    let grant = match authenticate(&state, ENDPOINT, &headers, Some(CONTENT_SCOPE)) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let (file, path) = match lookup(&mut state, &grant.user, ENDPOINT, &headers, &args.path) {
        Ok(found) => found,
        Err(refusal) => return *refusal,
    };
    if !is_paper(&file.spec.name) {
        return api_error(StatusCode::CONFLICT, "non_exportable/.");
    }
    // One of the file's `export_options`; none asked: its `export_as`.
    let (format, extension, media_type) = match args.export_format.as_deref() {
        None | Some("html") => ("html", "html", "text/html"),
        Some("markdown") => ("md", "md", "text/markdown"),
        Some(_) => return api_error(StatusCode::CONFLICT, "invalid_export_format/."),
    };
    let exported = converted(format, &bytes_of(&state, &grant.user, &file));
    let stem = file.spec.name.trim_end_matches(".paper");
    let result = json!({
        "export_metadata": {"name": format!("{stem}.{extension}"), "size": exported.len()},
        "file_metadata": entry_json(path, &file),
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, media_type.to_string()),
            (
                header::HeaderName::from_static("dropbox-api-result"),
                result.to_string(),
            ),
        ],
        exported,
    )
        .into_response()
}
