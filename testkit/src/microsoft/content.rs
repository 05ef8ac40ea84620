//! `GET /drives/{drive-id}/items/{item-id}/content`: 302 Found to a pre-authenticated
//! download URL of the item's bytes, which needs no `Authorization`
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-get-content>); with
//! `?format=pdf|html`, to the bytes converted, for the source extensions Graph lists
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-get-content-format>). The URL is
//! served by `downloads.rs` (expiry, `Range`).
//!
//! Who may read what, as the permissions reference says
//! (<https://learn.microsoft.com/en-us/graph/permissions-reference>): `Files.Read` "allows the
//! app to read the signed-in user's files", `Files.Read.All` "all files the signed-in user
//! can access" (a folder another user shared, a document library), as do `Sites.Read.All` for
//! a library's and the `ReadWrite` ones. Without the scope Graph answers 403 `accessDenied`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{files_user, graph_error};
use crate::downloads::{converted, Host};
use crate::oauth::query_map;
use crate::state::{lock, Provider, Shared};

/// The source extensions Graph converts, per format (driveitem-get-content-format).
const PDF_SOURCES: &[&str] = &[
    "csv", "doc", "docx", "odp", "ods", "odt", "pot", "potm", "potx", "pps", "ppsx", "ppsxm",
    "ppt", "pptm", "pptx", "rtf", "xls", "xlsx",
];
const HTML_SOURCES: &[&str] = &["loop", "fluid", "wbtx"];
/// "The maximum size limit for files to use format conversion is 2 MB" (the same page).
const MAX_CONVERTED_SIZE: usize = 2 * 1024 * 1024;

fn not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        "The resource could not be found.",
    )
}

fn access_denied() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "accessDenied",
        "Access denied. You do not have permission to perform this action or access this resource.",
    )
}

pub(crate) async fn item_content(
    State(shared): State<Shared>,
    Path((drive_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut state = lock(&shared);
    let user = match files_user(&state, &headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let scopes: Vec<String> = state
        .authenticate(Provider::Microsoft, &headers)
        .map(|grant| {
            grant
                .scope
                .split(' ')
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let all_files = scopes
        .iter()
        .any(|s| ["files.read.all", "files.readwrite.all"].contains(&s.as_str()));
    let sites = scopes.iter().any(|s| s.starts_with("sites."));
    let (key, library) = match drive_id.strip_prefix("drive-") {
        Some(owner)
            if state
                .drives
                .contains_key(&(Provider::Microsoft, owner.to_string())) =>
        {
            (owner.to_string(), false)
        }
        _ if state.library_site(&drive_id).is_some() => (drive_id.clone(), true),
        _ => return not_found(),
    };
    let allowed = match (key == user, library) {
        (true, _) => true,
        (false, true) => all_files || sites,
        (false, false) => {
            let shared_with_user =
                state
                    .drive(Provider::Microsoft, &user)
                    .files
                    .values()
                    .any(|f| {
                        !f.deleted
                            && f.spec
                                .remote_folder
                                .as_ref()
                                .is_some_and(|(owner, _)| *owner == key)
                    });
            all_files && shared_with_user
        }
    };
    if !allowed {
        return access_denied();
    }
    let drive = &state.drives[&(Provider::Microsoft, key.clone())];
    let Some(file) = drive
        .files
        .get(&item_id)
        .filter(|f| !f.deleted && !f.spec.trashed)
    else {
        return not_found();
    };
    let spec = file.spec.clone();
    // "Only driveItem objects with the file property can be downloaded": not a folder, a
    // shared folder or a package.
    if spec.is_folder() || spec.remote_folder.is_some() || spec.package.is_some() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "Only items with the file facet can be downloaded.",
        );
    }
    let version = hex::encode(spec.content_digest());
    let bytes = state.downloads.bytes_of(
        Host::Graph,
        &key,
        &spec.id,
        &version,
        spec.size.unwrap_or(0),
    );
    let extension = spec
        .name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let format = query_map(&uri).get("format").cloned();
    if format.is_some() && bytes.len() > MAX_CONVERTED_SIZE {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "The file is too large to be converted.",
        );
    }
    let (bytes, media_type) = match format.as_deref() {
        None => (bytes, spec.mime_type.clone()),
        Some("pdf") if PDF_SOURCES.contains(&extension.as_str()) => {
            (converted("pdf", &bytes), "application/pdf".to_string())
        }
        Some("html") if HTML_SOURCES.contains(&extension.as_str()) => {
            (converted("html", &bytes), "text/html".to_string())
        }
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                "The requested conversion is not supported for this item.",
            )
        }
    };
    let base = state.base_url.clone();
    let location = state
        .downloads
        .issue(&base, Host::Graph, bytes, &media_type);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}
