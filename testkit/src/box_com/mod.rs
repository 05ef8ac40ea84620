//! Box's API 2.0 as the hub calls it: `GET /users/me`, `GET /folders/{id}/items` with marker
//! paging and `fields`, `GET /files/{id}` and `GET /folders/{id}`, `GET /events` (the user's
//! `changes` stream from a `stream_position`), and `POST /oauth2/revoke`, with Box's error
//! shape `{"type": "error", "status", "code", "message", ...}`
//! (<https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/>) and its
//! 401 without a body, naming the problem in `WWW-Authenticate`.

pub(crate) mod changes;
pub(crate) mod content;
pub(crate) mod search;
pub(crate) mod tree;
pub(crate) mod writes;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::oauth::query_map;
use crate::state::{lock, Grant, Provider, Shared, State as Inner};
pub use tree::BoxKind;
use tree::{Status, Tree, STREAM_BASE};

/// `GET /folders/{id}/items` answers 100 entries by default and at most 1000
/// (<https://developer.box.com/reference/get-folders-id-items/>, `limit`).
const ITEMS_DEFAULT_LIMIT: usize = 100;
const ITEMS_MAX_LIMIT: usize = 1000;
/// `GET /events`: `limit` defaults to 100, at most 500
/// (<https://developer.box.com/reference/get-events/>).
const EVENTS_DEFAULT_LIMIT: usize = 100;
const EVENTS_MAX_LIMIT: usize = 500;
/// The stream types `GET /events` takes for a user's events.
const USER_STREAM_TYPES: [&str; 3] = ["all", "changes", "sync"];

/// Box's client error body (<https://developer.box.com/reference/resources/client-error/>).
pub(crate) fn box_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "type": "error",
        "status": status.as_u16(),
        "code": code,
        "help_url": "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/",
        "message": message,
        "request_id": uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
    });
    (status, Json(body)).into_response()
}

/// 429 as Box answers it; the caller sets `Retry-After`
/// (<https://developer.box.com/guides/api-calls/permissions-and-errors/rate-limits/>).
pub(crate) fn too_many_requests() -> Response {
    box_error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
        "Request rate limit exceeded, please try again later",
    )
}

fn bad_request(message: &str) -> Response {
    box_error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn not_found() -> Response {
    box_error(StatusCode::NOT_FOUND, "not_found", "Not Found")
}

/// Box's 401: no body, the reason in `WWW-Authenticate` (RFC 6750).
fn unauthorized() -> Response {
    let challenge = "Bearer realm=\"Service\", error=\"invalid_token\", \
                     error_description=\"The access token provided is invalid.\"";
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
    )
        .into_response()
}

/// The grant behind a live Box access token.
fn authenticate(state: &Inner, headers: &HeaderMap) -> Result<Grant, Box<Response>> {
    state
        .authenticate(Provider::Box, headers)
        .ok_or_else(|| Box::new(unauthorized()))
}

/// The query's `limit`, within 1..=`max` (Box refuses others with 400).
fn limit(
    query: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, Box<Response>> {
    match query.get("limit") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Box::new(bad_request(&format!(
                "Invalid value '{text}' for query parameter 'limit'"
            )))),
        },
    }
}

/// `GET /users/me`; `fields` selects what the answer holds besides `type` and `id`, as for
/// items.
pub(crate) async fn users_me(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_map(&uri);
    let state = lock(&shared);
    let grant = match authenticate(&state, &headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let login = state.email(Provider::Box, &grant.user);
    let name = login.split('@').next().unwrap_or("").to_string();
    let user = json!({
        "type": "user",
        "id": grant.user,
        "name": name,
        "login": login,
        "created_at": "2024-01-01T00:00:00-08:00",
        "modified_at": "2024-01-01T00:00:00-08:00",
        "language": "en",
        "timezone": "America/Los_Angeles",
        "space_amount": 10_737_418_240u64,
        "space_used": 0,
        "max_upload_size": 2_147_483_648u64,
        "status": "active",
        "job_title": "",
        "phone": "",
        "address": "",
        "avatar_url": format!("https://app.box.com/api/avatar/large/{}", grant.user),
    });
    let Some(fields) = query.get("fields") else {
        return Json(user).into_response();
    };
    let chosen: serde_json::Map<String, Value> = ["type", "id"]
        .into_iter()
        .chain(fields.split(',').map(str::trim))
        .filter_map(|name| Some((name.to_string(), user.get(name)?.clone())))
        .collect();
    Json(Value::Object(chosen)).into_response()
}

/// A marker: opaque to clients, the offset of the next entry here.
fn marker_of(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("box-marker:{offset}"))
}

fn offset_of(marker: &str) -> Option<usize> {
    let decoded = URL_SAFE_NO_PAD.decode(marker).ok()?;
    String::from_utf8(decoded)
        .ok()?
        .strip_prefix("box-marker:")?
        .parse()
        .ok()
}

/// Why an item cannot be opened: 404 `trashed` when it is itself in the trash, else 404
/// `not_found` (purged, never there, or under a trashed folder: "only that folder can be
/// inspected", <https://developer.box.com/reference/get-files-id-trash/>).
fn unreachable(tree: &Tree, kind: BoxKind, id: &str) -> Response {
    match tree.get(kind, id).map(|item| item.status) {
        Some(Status::Trashed) => box_error(StatusCode::NOT_FOUND, "trashed", "Item is trashed"),
        _ => not_found(),
    }
}

/// `GET /folders/{id}/items`: marker paging with `usemarker=true` (`marker`, `next_marker`),
/// offset paging without it (`offset`, `total_count`); `fields` selects what entries hold.
pub(crate) async fn folder_items(
    State(shared): State<Shared>,
    Path(folder): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let grant = match authenticate(&state, &headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let limit = match limit(&query, ITEMS_DEFAULT_LIMIT, ITEMS_MAX_LIMIT) {
        Ok(limit) => limit,
        Err(refusal) => return *refusal,
    };
    let limit = state
        .box_page_sizes
        .map_or(limit, |(items, _)| limit.min(items));
    let tree = state.box_tree(&grant.user);
    if !tree.reachable(BoxKind::Folder, &folder) {
        return unreachable(tree, BoxKind::Folder, &folder);
    }
    let children = tree.children(&folder);
    let fields = query.get("fields").map(String::as_str);
    let marker_paging = query.get("usemarker").map(String::as_str) == Some("true");
    let start = if marker_paging {
        match query.get("marker").filter(|m| !m.is_empty()) {
            None => 0,
            Some(marker) => match offset_of(marker) {
                Some(offset) => offset,
                None => return bad_request("Invalid value for query parameter 'marker'"),
            },
        }
    } else {
        match query.get("offset").map(|o| o.parse::<usize>()) {
            None => 0,
            Some(Ok(offset)) => offset,
            Some(Err(_)) => return bad_request("Invalid value for query parameter 'offset'"),
        }
    };
    let end = (start + limit).min(children.len());
    let entries: Vec<Value> = children
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|item| tree.selected(item, fields))
        .collect();
    let answer = if marker_paging {
        // The last page has no next marker
        // (<https://developer.box.com/guides/api-calls/pagination/marker-based/>).
        let next = (end < children.len()).then(|| marker_of(end));
        json!({"entries": entries, "limit": limit, "next_marker": next})
    } else {
        json!({"entries": entries, "limit": limit, "offset": start,
               "total_count": children.len(), "order": [{"by": "type", "direction": "ASC"}]})
    };
    Json(answer).into_response()
}

fn item(shared: &Shared, kind: BoxKind, id: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    let query = query_map(uri);
    let mut state = lock(shared);
    let grant = match authenticate(&state, headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let tree = state.box_tree(&grant.user);
    if !tree.reachable(kind, id) {
        return unreachable(tree, kind, id);
    }
    let item = tree.get(kind, id).expect("reachable items exist");
    Json(tree.selected(item, query.get("fields").map(String::as_str))).into_response()
}

/// `GET /files/{id}`.
pub(crate) async fn file(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    item(&shared, BoxKind::File, &id, &uri, &headers)
}

/// `GET /folders/{id}`.
pub(crate) async fn folder(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    item(&shared, BoxKind::Folder, &id, &uri, &headers)
}

/// `GET /events` for the user: `stream_position=now` answers no events and the current
/// position; a number answers the events after it, at most `limit`, and the position after
/// them (`next_stream_position`); `chunk_size` counts the entries.
pub(crate) async fn events(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let grant = match authenticate(&state, &headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let limit = match limit(&query, EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT) {
        Ok(limit) => limit,
        Err(refusal) => return *refusal,
    };
    let stream_type = query
        .get("stream_type")
        .map(String::as_str)
        .unwrap_or("all");
    if !USER_STREAM_TYPES.contains(&stream_type) {
        return bad_request(&format!(
            "Invalid value '{stream_type}' for query parameter 'stream_type'"
        ));
    }
    let limit = state
        .box_page_sizes
        .map_or(limit, |(_, events)| limit.min(events));
    let tree = state.box_tree(&grant.user);
    let position = match query.get("stream_position").map(String::as_str) {
        Some("now") => {
            return Json(json!({"chunk_size": 0, "next_stream_position": tree.now(),
                               "entries": []}))
            .into_response()
        }
        // "0" (or none) starts from the oldest event kept.
        None | Some("0") => STREAM_BASE,
        Some(text) => match text.parse::<u64>() {
            Ok(position) if (STREAM_BASE..=tree.now()).contains(&position) => position,
            _ => {
                return bad_request(&format!(
                    "Invalid value '{text}' for query parameter 'stream_position'"
                ))
            }
        },
    };
    let from = (position - STREAM_BASE) as usize;
    let to = (from + limit).min(tree.events.len());
    let mut page: Vec<Value> = tree.events[from..to]
        .iter()
        .map(|event| {
            json!({
                "type": "event",
                "event_id": event.event_id,
                "event_type": event.event_type,
                "created_at": event.created_at.to_rfc3339(),
                "recorded_at": event.created_at.to_rfc3339(),
                "created_by": {"type": "user", "id": grant.user},
                "session_id": null,
                "additional_details": null,
                "source": event.source,
            })
        })
        .collect();
    if tree.repeat_events {
        let repeated: Vec<Value> = page.iter().rev().cloned().collect();
        page.extend(repeated);
    }
    Json(json!({
        "chunk_size": page.len(),
        "next_stream_position": STREAM_BASE + to as u64,
        "entries": page,
    }))
    .into_response()
}

/// `POST /oauth2/revoke`: the form's `client_id`, `client_secret` and `token` (an access or a
/// refresh token); either ends the pair
/// (<https://developer.box.com/reference/post-oauth2-revoke/>).
pub(crate) async fn revoke(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request",
            "error_description": "The body must be form-encoded"})),
        )
            .into_response();
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (client_id, client_secret) = Provider::Box.client();
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if get("client_id") != client_id || get("client_secret") != client_secret {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client",
            "error_description": "The client credentials are invalid"})),
        )
            .into_response();
    }
    let token = get("token").to_string();
    let mut state = lock(&shared);
    let grant = match (
        state.access_tokens.get(&token),
        state.refresh_tokens.get(&token),
    ) {
        (Some(access), _) => Some(access.grant),
        (_, Some(refresh)) => Some(refresh.grant),
        _ => None,
    };
    if let Some(grant) = grant.filter(|g| state.grants[*g].provider == Provider::Box) {
        state.grants[grant].revoked = true;
        state.revoked.push(token);
    }
    // Box answers an empty 200 whether or not the token was live.
    StatusCode::OK.into_response()
}
