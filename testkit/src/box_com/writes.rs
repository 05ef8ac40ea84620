//! What the proxy's tests call through the hub, as Box documents it: `POST /folders` (a
//! folder in a folder, 201 with the folder; an `ITEM_CREATE` event for the next sync),
//! which needs the `root_readwrite` scope, and a file's thumbnail (`GET
//! /files/{id}/thumbnail.png`, 200 with the image's bytes), the binary answer the tests read
//! back byte for byte (<https://developer.box.com/reference/post-folders/>,
//! <https://developer.box.com/reference/get-files-id-thumbnail-id/>).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{authenticate, bad_request, box_error, unreachable, BoxKind};
use crate::oauth::query_map;
use crate::state::{lock, Shared};

#[derive(Deserialize)]
struct Parent {
    id: String,
}

#[derive(Deserialize)]
struct NewFolder {
    name: String,
    parent: Parent,
}

/// `POST /folders`.
pub(crate) async fn create_folder(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let grant = match authenticate(&state, &headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    if !grant
        .scope
        .split_whitespace()
        .any(|s| s == "root_readwrite")
    {
        return box_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The request requires higher privileges than provided by the access token.",
        );
    }
    let Ok(request) = serde_json::from_slice::<NewFolder>(&body) else {
        return bad_request("Invalid value for body: a name and a parent id are required");
    };
    // Box: 1 to 255 characters, no `/` or `\`, not `.` nor `..`.
    let name = request.name;
    let bad_name = name.is_empty()
        || name.chars().count() > 255
        || name.contains(['/', '\\'])
        || name == "."
        || name == "..";
    if bad_name {
        return bad_request("Invalid value for 'name'");
    }
    let tree = state.box_tree(&grant.user);
    if !tree.reachable(BoxKind::Folder, &request.parent.id) {
        return unreachable(tree, BoxKind::Folder, &request.parent.id);
    }
    let taken = tree
        .children(&request.parent.id)
        .iter()
        .any(|item| item.name.eq_ignore_ascii_case(&name));
    if taken {
        return box_error(
            StatusCode::CONFLICT,
            "item_name_in_use",
            "Item with the same name already exists",
        );
    }
    let id = state.box_add(&grant.user, BoxKind::Folder, &name, &request.parent.id);
    let tree = state.box_tree(&grant.user);
    let folder = tree.get(BoxKind::Folder, &id).expect("just added");
    let answer = tree.selected(folder, query.get("fields").map(String::as_str));
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// The stand-in's thumbnail of a file: the PNG signature, then bytes of every value (not
/// text in any encoding), the same for the same file.
pub fn thumbnail(file_id: &str) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut block = Sha256::digest(file_id.as_bytes());
    while bytes.len() < 4096 {
        bytes.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    bytes.extend(0..=255u8);
    bytes
}

/// `GET /files/{id}/thumbnail.png`: the image, with the headers Box sends beside it
/// (a visitor cookie, its request id), which a client that passes answers on must drop.
pub(crate) async fn file_thumbnail(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = lock(&shared);
    let grant = match authenticate(&state, &headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let tree = state.box_tree(&grant.user);
    if !tree.reachable(BoxKind::File, &id) {
        return unreachable(tree, BoxKind::File, &id);
    }
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/png".to_string()),
            (
                header::SET_COOKIE,
                format!("box_visitor_id={request_id}; path=/; secure"),
            ),
            (
                header::HeaderName::from_static("box-request-id"),
                request_id,
            ),
            (header::CACHE_CONTROL, "no-cache, no-store".to_string()),
        ],
        thumbnail(&id),
    )
        .into_response()
}
