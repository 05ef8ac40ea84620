//! Drive's file content: `files.get` of one file (with `capabilities` and `exportLinks`),
//! its bytes with `alt=media` (one `Range`), `files.export` with its size limit, the
//! `exportLinks` that have none, and `about.get`'s `exportFormats`.
//! <https://developers.google.com/drive/api/guides/manage-downloads>

use axum::body::Body as AxumBody;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::bytes::Body;
use super::{drive_user, file_json, selection, GoogleError as Refusal};
use crate::oauth::query_map;
use crate::state::{lock, File, Provider, Shared, State as Inner, FOLDER_MIME_TYPE};

/// The scopes that let an app read files' bytes; `drive.metadata.readonly` lists them only
/// (<https://developers.google.com/drive/api/guides/api-specific-auth>).
const CONTENT_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.readonly",
];

/// `files.export` refuses an export larger than 10 MB with 403 `exportSizeLimitExceeded`
/// (<https://developers.google.com/drive/api/reference/rest/v3/files/export>); the file's
/// `exportLinks` have no such limit.
pub const EXPORT_LIMIT: u64 = 10 * 1024 * 1024;

/// What `about.get` lists as `exportFormats`: each native type and the media types it
/// exports to (<https://developers.google.com/drive/api/guides/ref-export-formats>). Forms
/// export only as a zip of their responses' sheet and Apps Script only as its JSON; Sites
/// and Maps export to nothing.
pub const EXPORT_FORMATS: &[(&str, &[&str])] = &[
    (
        "application/vnd.google-apps.document",
        &[
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.oasis.opendocument.text",
            "application/rtf",
            "application/pdf",
            "text/plain",
            "application/zip",
            "text/html",
            "application/epub+zip",
            "text/markdown",
        ],
    ),
    (
        "application/vnd.google-apps.spreadsheet",
        &[
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/x-vnd.oasis.opendocument.spreadsheet",
            "application/vnd.oasis.opendocument.spreadsheet",
            "application/pdf",
            "application/zip",
            "text/csv",
            "text/tab-separated-values",
        ],
    ),
    (
        "application/vnd.google-apps.presentation",
        &[
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.oasis.opendocument.presentation",
            "application/pdf",
            "text/plain",
            "image/jpeg",
            "image/png",
            "image/svg+xml",
        ],
    ),
    (
        "application/vnd.google-apps.drawing",
        &[
            "application/pdf",
            "image/jpeg",
            "image/png",
            "image/svg+xml",
        ],
    ),
    ("application/vnd.google-apps.form", &["application/zip"]),
    (
        "application/vnd.google-apps.script",
        &["application/vnd.google-apps.script+json"],
    ),
];

/// The media types a native file of `mime_type` exports to (none for any other file).
fn export_formats(mime_type: &str) -> &'static [&'static str] {
    EXPORT_FORMATS
        .iter()
        .find(|(native, _)| *native == mime_type)
        .map_or(&[], |(_, targets)| targets)
}

/// What `files.get` answers when `fields` is absent.
const FILE_GET_DEFAULT: &str = "kind,id,name,mimeType";
/// The File resource's names this stand-in knows; Drive refuses others in `fields`.
const FILE_FIELDS: &[&str] = &[
    "kind",
    "id",
    "name",
    "mimeType",
    "modifiedTime",
    "webViewLink",
    "trashed",
    "ownedByMe",
    "shared",
    "parents",
    "size",
    "md5Checksum",
    "driveId",
    "shortcutDetails",
    "sharedWithMeTime",
    "capabilities",
    "exportLinks",
];

/// The user behind the token, if its grant lets the app read files' bytes: a grant with
/// only `drive.metadata.readonly` is refused as Drive refuses it.
fn content_user(state: &Inner, headers: &HeaderMap) -> Result<String, Refusal> {
    let user = drive_user(state, headers)?;
    let grant = state
        .authenticate(Provider::Google, headers)
        .expect("drive_user authenticated it");
    if grant.scope.split(' ').any(|s| CONTENT_SCOPES.contains(&s)) {
        Ok(user)
    } else {
        Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Request had insufficient authentication scopes.",
        )
        .with_reason("insufficientPermissions"))
    }
}

fn not_found(id: &str) -> Refusal {
    Refusal::new(StatusCode::NOT_FOUND, format!("File not found: {id}.")).on_parameter("fileId")
}

/// The user's live file `id`. A shared drive's file is found only by an app that supports
/// shared drives (`supportsAllDrives=true`) and while the user is a member
/// (<https://developers.google.com/drive/api/guides/enable-shareddrives>).
fn find<'a>(
    state: &'a mut Inner,
    user: &str,
    id: &str,
    all_drives: bool,
) -> Result<&'a File, Refusal> {
    let drive = state.drive(Provider::Google, user);
    let member = |drive_id: &str| drive.is_member(drive_id);
    match drive.files.get(id) {
        Some(file)
            if !file.deleted
                && file
                    .spec
                    .drive_id
                    .as_deref()
                    .is_none_or(|drive_id| all_drives && member(drive_id)) =>
        {
            Ok(file)
        }
        _ => Err(not_found(id)),
    }
}

fn supports_all_drives(query: &std::collections::HashMap<String, String>) -> bool {
    ["supportsAllDrives", "supportsTeamDrives"]
        .iter()
        .any(|name| query.get(*name).is_some_and(|v| v == "true"))
}

fn is_native(mime_type: &str) -> bool {
    mime_type.starts_with("application/vnd.google-apps.")
}

/// `GET /drive/v3/files/{id}`: the file's resource, or its bytes with `alt=media`.
pub(crate) async fn get_file(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    match query.get("alt").map(String::as_str) {
        None | Some("json") => {}
        Some("media") => return download(&mut state, &id, &headers, &query),
        Some(_) => return Err(Refusal::invalid_parameter("alt")),
    }
    let user = drive_user(&state, &headers)?;
    let fields = selection(&query, FILE_GET_DEFAULT, FILE_FIELDS)?;
    let base_url = state.base_url.clone();
    let file = find(&mut state, &user, &id, supports_all_drives(&query))?.clone();
    let mut resource = file_json(&user, &file);
    let can_download = !state.google_bytes.download_disabled.contains(&id);
    resource["capabilities"] = json!({"canDownload": can_download});
    let targets = export_formats(&file.spec.mime_type);
    if !targets.is_empty() {
        let links: Map<String, Value> = targets
            .iter()
            .map(|target| {
                (
                    target.to_string(),
                    json!(export_link(&base_url, &id, target)),
                )
            })
            .collect();
        resource["exportLinks"] = Value::Object(links);
    }
    Ok(Json(fields.apply(&resource)).into_response())
}

/// Where the stand-in's `exportLinks` point (Google's are on `docs.google.com`).
fn export_link(base_url: &str, id: &str, mime_type: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id", id)
        .append_pair("mimeType", mime_type)
        .finish();
    format!("{base_url}/google/feeds/download/export?{query}")
}

/// `alt=media`: the bytes of a file that has its own (not a Google Doc, nor a folder), whole
/// or one `Range`.
fn download(
    state: &mut Inner,
    id: &str,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Result<Response, Refusal> {
    let user = content_user(state, headers)?;
    let file = find(state, &user, id, supports_all_drives(query))?.clone();
    let spec = &file.spec;
    if is_native(&spec.mime_type) || spec.mime_type == FOLDER_MIME_TYPE {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
        )
        .with_reason("fileNotDownloadable"));
    }
    let bytes = &state.google_bytes;
    if bytes.download_disabled.contains(id) {
        return Err(download_disabled());
    }
    // Only the owner may download a flagged file, and only saying so with
    // `acknowledgeAbuse=true` (files.get's `acknowledgeAbuse`).
    let owner = !spec.shared_with_me && spec.drive_id.is_none();
    let acknowledged = query.get("acknowledgeAbuse").is_some_and(|v| v == "true");
    if bytes.abusive.contains(id) && !(owner && acknowledged) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "This file has been identified as malware or spam and cannot be downloaded.",
        )
        .with_reason("cannotDownloadAbusiveFile"));
    }
    let body = bytes.content_of(id, spec.size);
    Ok(serve(body, &spec.mime_type, headers.get(header::RANGE)))
}

fn download_disabled() -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        "The user does not have sufficient permissions to download this file.",
    )
    .with_reason("cannotDownloadFile")
}

/// `GET /drive/v3/files/{id}/export?mimeType=`: a native file converted, up to
/// [`EXPORT_LIMIT`].
pub(crate) async fn export_file(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let (body, mime_type) = exported(&mut state, &id, &headers, &query)?;
    if body.len() > EXPORT_LIMIT {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "This file is too large to be exported.",
        )
        .with_reason("exportSizeLimitExceeded"));
    }
    Ok(serve(body, &mime_type, None))
}

/// A file's `exportLinks` URL: the same conversion as `files.export`, without its size limit,
/// for the same bearer token.
pub(crate) async fn export_link_download(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let id = query.get("id").cloned().unwrap_or_default();
    let mut state = lock(&shared);
    let (body, mime_type) = exported(&mut state, &id, &headers, &query)?;
    Ok(serve(body, &mime_type, None))
}

/// The export `files.export` and the export links answer: its bytes and media type.
fn exported(
    state: &mut Inner,
    id: &str,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Result<(Body, String), Refusal> {
    let user = content_user(state, headers)?;
    let Some(mime_type) = query.get("mimeType").cloned() else {
        return Err(
            Refusal::new(StatusCode::BAD_REQUEST, "Required parameter: mimeType")
                .with_reason("required")
                .on_parameter("mimeType"),
        );
    };
    // `files.export` takes no `supportsAllDrives`: an export reaches every drive's files.
    let file = find(state, &user, id, true)?.clone();
    if !is_native(&file.spec.mime_type) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Export only supports Docs Editors files.",
        )
        .with_reason("fileNotExportable"));
    }
    if !export_formats(&file.spec.mime_type).contains(&mime_type.as_str()) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "The requested conversion is not supported.",
        )
        .with_reason("badRequest")
        .on_parameter("mimeType"));
    }
    if state.google_bytes.download_disabled.contains(id) {
        return Err(download_disabled());
    }
    Ok((state.google_bytes.export_of(id, &mime_type), mime_type))
}

/// `GET /drive/v3/about`: only `kind` and `exportFormats`; `fields` is required
/// (<https://developers.google.com/drive/api/reference/rest/v3/about/get>).
pub(crate) async fn about(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let state = lock(&shared);
    drive_user(&state, &headers)?;
    if !query.contains_key("fields") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "The 'fields' parameter is required for this method.",
        )
        .with_reason("required")
        .on_parameter("fields"));
    }
    let fields = selection(&query, "", &["kind", "exportFormats"])?;
    let formats: Map<String, Value> = EXPORT_FORMATS
        .iter()
        .map(|(native, targets)| (native.to_string(), json!(targets)))
        .collect();
    let answer = json!({"kind": "drive#about", "exportFormats": formats});
    Ok(Json(fields.apply(&answer)).into_response())
}

/// One range of `bytes=first-last`, `bytes=first-` or `bytes=-suffix`, within `size`;
/// `Err(())` when none of it exists (416). `Ok(None)`: a header served whole (absent,
/// several ranges, another unit, malformed), as RFC 9110 lets a server do.
fn range_within(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let range = match (first.trim().is_empty(), number(first), number(last)) {
        (true, _, Some(0)) => return Err(()),
        (true, _, Some(suffix)) => (size.saturating_sub(suffix), size.saturating_sub(1)),
        (false, Some(first), None) if last.trim().is_empty() => (first, size.saturating_sub(1)),
        (false, Some(first), Some(last)) if last >= first => {
            (first, last.min(size.saturating_sub(1)))
        }
        _ => return Ok(None),
    };
    if size == 0 || range.0 >= size {
        return Err(());
    }
    Ok(Some(range))
}

/// The bytes, streamed as they are made: 200 whole, 206 with `Content-Range` for a range,
/// 416 with `Content-Range: bytes */size` for a range beyond the end.
fn serve(body: Body, mime_type: &str, range: Option<&axum::http::HeaderValue>) -> Response {
    let size = body.len();
    let range = range.and_then(|value| value.to_str().ok());
    let (status, first, last) = match range_within(range, size) {
        Err(()) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response()
        }
        Ok(Some((first, last))) => (StatusCode::PARTIAL_CONTENT, first, last),
        Ok(None) => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, mime_type)
        .header(header::CONTENT_LENGTH, length);
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {first}-{last}/{size}"),
        );
    }
    let stream = if size == 0 {
        AxumBody::empty()
    } else {
        AxumBody::from_stream(body.pieces(first, last))
    };
    response.body(stream).expect("valid headers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_drive_reads_them() {
        let size = 100;
        assert_eq!(range_within(Some("bytes=0-9"), size), Ok(Some((0, 9))));
        assert_eq!(range_within(Some("bytes=90-"), size), Ok(Some((90, 99))));
        assert_eq!(range_within(Some("bytes=-10"), size), Ok(Some((90, 99))));
        assert_eq!(range_within(Some("bytes=95-500"), size), Ok(Some((95, 99))));
        assert_eq!(range_within(Some("bytes=100-"), size), Err(()));
        assert_eq!(range_within(Some("bytes=-0"), size), Err(()));
        assert_eq!(range_within(Some("bytes=0-1,5-6"), size), Ok(None));
        assert_eq!(range_within(Some("items=0-1"), size), Ok(None));
        assert_eq!(range_within(None, size), Ok(None));
    }
}
