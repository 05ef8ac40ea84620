//! `GET /files/{id}/content`: 302 Found with the download URL in `Location`
//! (<https://developer.box.com/reference/get-files-id-content/>), served by `downloads.rs`
//! (no token, `Range`, 15 minutes, <https://developer.box.com/guides/downloads/get-url>).
//! Reading a file's content needs the `root_readonly` scope ("Read all files and folders
//! stored in Box", <https://developer.box.com/guides/api-calls/permissions-and-errors/scopes/>);
//! without it Box answers 403 `insufficient_scope`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{authenticate, box_error, unreachable, BoxKind};
use crate::downloads::Host;
use crate::state::{lock, Shared};

pub(crate) async fn file_content(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = lock(&shared);
    let grant = match authenticate(&state, &headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let reads = grant
        .scope
        .split_whitespace()
        .any(|s| s == "root_readonly" || s == "root_readwrite");
    if !reads {
        return box_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The request requires higher privileges than provided by the access token.",
        );
    }
    let tree = state.box_tree(&grant.user);
    if !tree.reachable(BoxKind::File, &id) {
        return unreachable(tree, BoxKind::File, &id);
    }
    let item = tree.get(BoxKind::File, &id).expect("reachable items exist");
    let (version, size) = (format!("{id}|{}", item.version), item.size);
    let bytes = state
        .downloads
        .bytes_of(Host::Box, &grant.user, &id, &version, size);
    let base = state.base_url.clone();
    let location = state
        .downloads
        .issue(&base, Host::Box, bytes, "application/octet-stream");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}
