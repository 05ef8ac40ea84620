//! `files/search_v2`: the files and folders of the namespace the call is rooted at whose
//! name, or content where the stand-in holds bytes, holds the query, case-insensitively
//! (<https://www.dropbox.com/developers/documentation/http/documentation#files-search>).
//! `options.max_results` is 1 to 1000 (default 100); `file_status` `active` (the default)
//! leaves deleted items out, `filename_only` leaves content out. The answer is a
//! `SearchV2Result`: `matches[].metadata` a `MetadataV2` whose `metadata` member is the
//! listing's `Metadata`, and `has_more`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{api_error, authenticate, bad_input, entry_json, is_gone, team, typed_argument};
use crate::downloads::Host;
use crate::state::{lock, Provider, Shared};

/// `SearchV2Arg.query`'s `max_length`, and `SearchOptions.max_results`' bounds.
const MAX_QUERY: usize = 1000;
const MAX_RESULTS: u64 = 1000;

#[derive(Deserialize)]
struct SearchV2Arg {
    query: String,
    #[serde(default)]
    options: Option<SearchOptions>,
}

#[derive(Deserialize)]
struct SearchOptions {
    path: Option<String>,
    max_results: Option<u64>,
    /// A void union member: `"active"` or `{".tag": "active"}`.
    file_status: Option<Value>,
    #[serde(default)]
    filename_only: bool,
}

fn tag(value: &Value) -> Option<&str> {
    value
        .as_str()
        .or_else(|| value.get(".tag").and_then(Value::as_str))
}

pub(crate) async fn search_v2(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "files/search_v2";
    let args: SearchV2Arg = match typed_argument(ENDPOINT, &headers, &body) {
        Ok(args) => args,
        Err(refusal) => return *refusal,
    };
    if args.query.chars().count() > MAX_QUERY {
        let problem = format!("request body: query: length {MAX_QUERY} exceeded");
        return bad_input(ENDPOINT, &problem);
    }
    let options = args.options.unwrap_or(SearchOptions {
        path: None,
        max_results: None,
        file_status: None,
        filename_only: false,
    });
    let max_results = options.max_results.unwrap_or(100);
    if !(1..=MAX_RESULTS).contains(&max_results) {
        let problem = format!(
            "request body: options.max_results: {max_results} is not within 1 and {MAX_RESULTS}"
        );
        return bad_input(ENDPOINT, &problem);
    }
    let deleted = match options.file_status.as_ref().map(tag) {
        None | Some(Some("active")) => false,
        Some(Some("deleted")) => true,
        Some(_) => return bad_input(ENDPOINT, "request body: options.file_status: unknown tag"),
    };
    if options.path.is_some_and(|path| !path.is_empty()) {
        // The hub searches the whole namespace; a narrower search is not served here.
        return api_error(StatusCode::CONFLICT, "path/not_found");
    }
    let mut state = lock(&shared);
    let grant = match authenticate(&state, ENDPOINT, &headers, Some("files.metadata.read")) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let namespace = match team::requested_namespace(&state, &grant.user, ENDPOINT, &headers) {
        Ok(requested) => requested.unwrap_or_else(|| team::home_namespace(&grant.user)),
        Err(refusal) => return *refusal,
    };
    let view = team::view_of(&state, &grant.user, &namespace)
        .expect("a namespace the header was allowed to name");
    let wanted = args.query.to_lowercase();
    let ids: Vec<String> = state
        .drive(Provider::Dropbox, &grant.user)
        .files
        .keys()
        .cloned()
        .collect();
    let contents: Vec<(String, String)> = ids
        .iter()
        .filter_map(|id| {
            let bytes = state.downloads.stored(Host::Dropbox, &grant.user, id)?;
            Some((id.clone(), String::from_utf8_lossy(bytes).to_lowercase()))
        })
        .collect();
    let drive = state.drive(Provider::Dropbox, &grant.user);
    let mut matches: Vec<Value> = drive
        .files
        .values()
        .filter(|f| is_gone(f) == deleted)
        .filter_map(|f| {
            let path = view.path(drive, &f.spec)?;
            let by_name = f.spec.name.to_lowercase().contains(&wanted);
            let by_content = !options.filename_only
                && contents
                    .iter()
                    .any(|(id, text)| *id == f.spec.id && text.contains(&wanted));
            let match_type = match (by_name, by_content) {
                (true, true) => "filename_and_content",
                (true, false) => "filename",
                (false, true) => "file_content",
                (false, false) => return None,
            };
            Some(json!({
                "match_type": {".tag": match_type},
                "metadata": {".tag": "metadata", "metadata": entry_json(path, f)},
            }))
        })
        .collect();
    let has_more = matches.len() as u64 > max_results;
    matches.truncate(max_results as usize);
    Json(json!({"matches": matches, "has_more": has_more})).into_response()
}
