//! Dropbox API v2 RPC endpoints: `users/get_current_account`, `files/list_folder` and
//! `files/list_folder/continue` with cursors (changes since a cursor, deletions by path, `reset`)
//! and `auth/token/revoke`, with Dropbox's error shapes: 400 in plain text for a malformed
//! call, 401 `expired_access_token` / `invalid_access_token` / `missing_scope`, 409 endpoint
//! errors as `.tag` unions with an `error_summary`; team spaces and the
//! `Dropbox-API-Path-Root` header in [`team`].
//! <https://www.dropbox.com/developers/documentation/http/documentation>

pub(crate) mod content;
pub(crate) mod search;
pub(crate) mod team;
pub(crate) mod writes;

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::state::{lock, Drive, File, FileSpec, Grant, Provider, Shared, State as Inner};
use team::View;

/// The content types an RPC endpoint accepts for its JSON argument; anything else is a 400
/// ("Bad HTTP "Content-Type" header").
const JSON_CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain; charset=dropbox-cors-hack",
];

/// A refused call's answer, boxed because a `Response` is large.
type Refusal = Box<Response>;

/// `list_folder`'s `limit` must be within 1..=2000 (files/list_folder, `limit`).
const MAX_LIMIT: u64 = 2000;

/// A union value from its tag path: `["path", "not_found"]` is
/// `{".tag": "path", "path": {".tag": "not_found"}}`, as Dropbox nests endpoint errors.
fn union_of(tags: &[&str]) -> Value {
    match tags {
        [] => Value::Null,
        [tag] => json!({".tag": tag}),
        [tag, rest @ ..] => json!({".tag": tag, *tag: union_of(rest)}),
    }
}

/// An endpoint error: `error_summary` is the tag path followed by `/...` (clients match its
/// prefix, e.g. `reset/`), `error` the union. `summary` may end in that `/...` tail itself
/// (or any run of dots): it is no tag, and the union has only the tags before it.
pub(crate) fn api_error(status: StatusCode, summary: &str) -> Response {
    (status, Json(error_body(summary))).into_response()
}

fn error_body(summary: &str) -> Value {
    let tags: Vec<&str> = summary
        .split('/')
        .filter(|t| !t.is_empty() && !t.chars().all(|c| c == '.'))
        .collect();
    json!({
        "error_summary": format!("{}/...", tags.join("/")),
        "error": union_of(&tags),
    })
}

/// 429 as Dropbox sends it: `too_many_requests` with `retry_after` in seconds (also in the
/// `Retry-After` header, which the caller sets).
pub(crate) fn too_many_requests(retry_after: u64) -> Response {
    let body = json!({
        "error_summary": "too_many_requests/...",
        "error": {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after},
    });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

/// A malformed call: Dropbox answers 400 with a plain-text explanation, not JSON.
pub(crate) fn bad_input(endpoint: &str, problem: &str) -> Response {
    let body = format!("Error in call to API function \"{endpoint}\": {problem}");
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (StatusCode::BAD_REQUEST, content_type, body).into_response()
}

/// The call's JSON argument. Endpoints without arguments take no body (and then no
/// `Content-Type`) or the literal `null`; the others a JSON object. Either way a body needs
/// one of [`JSON_CONTENT_TYPES`].
fn argument(
    endpoint: &str,
    headers: &HeaderMap,
    body: &[u8],
    void: bool,
) -> Result<Value, Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").trim().to_string());
    if void && body.is_empty() && content_type.is_none() {
        return Ok(Value::Null);
    }
    let Some(content_type) = content_type else {
        return Err(Box::new(bad_input(
            endpoint,
            "Bad HTTP \"Content-Type\" header: missing.  Expecting one of \"application/json\", \
             \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\".",
        )));
    };
    if !JSON_CONTENT_TYPES.contains(&content_type.to_ascii_lowercase().as_str()) {
        return Err(Box::new(bad_input(
            endpoint,
            &format!(
                "Bad HTTP \"Content-Type\" header: \"{content_type}\".  Expecting one of \
                 \"application/json\", \"application/json; charset=utf-8\", \
                 \"text/plain; charset=dropbox-cors-hack\"."
            ),
        )));
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(bad_input(
            endpoint,
            "request body: could not decode input as JSON",
        )));
    };
    match (void, &value) {
        (true, Value::Null) | (false, Value::Object(_)) => Ok(value),
        (true, _) => Err(Box::new(bad_input(
            endpoint,
            "request body: expected null, got value",
        ))),
        (false, _) => Err(Box::new(bad_input(
            endpoint,
            "request body: expected object",
        ))),
    }
}

/// The call's JSON object argument ([`argument`]) read as `T`; one that does not fit `T` is
/// a 400 too, with serde's reason.
fn typed_argument<T: DeserializeOwned>(
    endpoint: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Refusal> {
    serde_json::from_value(argument(endpoint, headers, body, false)?)
        .map_err(|e| Box::new(bad_input(endpoint, &format!("request body: {e}"))))
}

fn unauthorized(tag: &str) -> Response {
    let mut response = api_error(StatusCode::UNAUTHORIZED, tag);
    let challenge = "Bearer realm=\"Dropbox-API\""
        .parse()
        .expect("a valid header value");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// The grant behind the bearer token, which must carry `scope`. A missing header is a 400;
/// an unknown or revoked token 401 `invalid_access_token`, an expired one 401
/// `expired_access_token`, one without the scope 401 `missing_scope` naming it
/// (<https://www.dropbox.com/developers/documentation/http/documentation#error-handling>).
fn authenticate(
    state: &Inner,
    endpoint: &str,
    headers: &HeaderMap,
    scope: Option<&str>,
) -> Result<Grant, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Box::new(bad_input(
            endpoint,
            "Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".",
        )));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(access) = token.and_then(|t| state.access_tokens.get(t)) else {
        return Err(Box::new(unauthorized("invalid_access_token")));
    };
    let grant = &state.grants[access.grant];
    if grant.revoked || grant.provider != Provider::Dropbox {
        return Err(Box::new(unauthorized("invalid_access_token")));
    }
    if access.expired || access.expires_at <= std::time::Instant::now() {
        return Err(Box::new(unauthorized("expired_access_token")));
    }
    if let Some(scope) = scope {
        if !grant.scope.split_whitespace().any(|s| s == scope) {
            let body = json!({
                "error_summary": "missing_scope/...",
                "error": {".tag": "missing_scope", "required_scope": scope},
            });
            return Err(Box::new(
                (StatusCode::UNAUTHORIZED, Json(body)).into_response(),
            ));
        }
    }
    Ok(grant.clone())
}

pub(crate) async fn get_current_account(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "users/get_current_account";
    if let Err(refusal) = argument(ENDPOINT, &headers, &body, true) {
        return *refusal;
    }
    let state = lock(&shared);
    let grant = match authenticate(&state, ENDPOINT, &headers, Some("account_info.read")) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let email = state.email(Provider::Dropbox, &grant.user);
    let given = given_name(&email);
    let team = team::team_json(&state, &grant.user);
    // A team member's account is a business one with a team member id.
    let (account_type, team_member_id) = match team.is_null() {
        true => ("basic", Value::Null),
        false => (
            "business",
            json!(format!("dbmid:{}", grant.user.trim_start_matches("dbid:"))),
        ),
    };
    Json(json!({
        "account_id": grant.user,
        "name": {
            "given_name": given,
            "surname": "Example",
            "familiar_name": given,
            "display_name": format!("{given} Example"),
            "abbreviated_name": format!("{}E", given.get(..1).unwrap_or("")),
        },
        "email": email,
        "email_verified": true,
        "disabled": false,
        "locale": "en",
        "referral_link": "https://db.tt/stand-in",
        "is_paired": false,
        "account_type": {".tag": account_type},
        "root_info": team::root_info(&state, &grant.user),
        "team": team,
        "team_member_id": team_member_id,
        "country": "US",
    }))
    .into_response()
}

/// The given name the stand-in makes from an email's local part: `dbx@...` is "Dbx".
pub(crate) fn given_name(email: &str) -> String {
    let mut given = email.split('@').next().unwrap_or("").to_string();
    if let Some(first) = given.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    given
}

/// Disables the access token of the call and, with it, its refresh token and every other
/// access token of that refresh token (auth/token/revoke).
pub(crate) async fn revoke(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "auth/token/revoke";
    if let Err(refusal) = argument(ENDPOINT, &headers, &body, true) {
        return *refusal;
    }
    let mut state = lock(&shared);
    if let Err(refusal) = authenticate(&state, ENDPOINT, &headers, None) {
        return *refusal;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, token)| token.trim().to_string())
        .unwrap_or_default();
    if let Some(grant) = state.access_tokens.get(&token).map(|t| t.grant) {
        state.grants[grant].revoked = true;
        state.revoked.push(token);
    }
    Json(Value::Null).into_response()
}

/// What a cursor stands for: the listing's scope and the last change it has delivered.
#[derive(Clone, Serialize, Deserialize)]
struct Cursor {
    user: String,
    /// The listed folder's `path_lower`; `""` is the root.
    folder: String,
    recursive: bool,
    include_deleted: bool,
    /// The sequence number of the last change delivered; 0 before the first page.
    after: u64,
    /// Deletions older than this (those before the first listing began) are left out unless
    /// `include_deleted`; later ones are changes the client must hear about.
    snapshot: u64,
    /// Entries per page the client asked for (a hint, capped by the stand-in's page size).
    limit: Option<usize>,
    epoch: u64,
    /// The namespace the listing is rooted at (`Dropbox-API-Path-Root`, else the home).
    namespace: String,
}

impl Cursor {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(cursor: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Paths come from the parent chain: Dropbox has no parent ids, only paths.
/// Dropbox's `path_lower`. Dropbox documents no case-folding rule ("the lowercased full
/// path"), so the stand-in folds with one of its own that differs from Rust's
/// `str::to_lowercase` on some characters: each character's first lower-case form (Unicode's
/// simple mapping for 'İ' is 'i', where `to_lowercase` gives "i̇"). A client that folds
/// `path_display` itself instead of keeping Dropbox's `path_lower` then misses deletions.
fn lower(path: &str) -> String {
    path.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

pub(crate) fn path_display(drive: &Drive, spec: &FileSpec) -> String {
    let mut names = vec![spec.name.clone()];
    let mut seen = HashSet::new();
    let mut next = spec.parent.clone();
    while let Some(id) = next {
        let Some(folder) = drive.files.get(&id).filter(|_| seen.insert(id.clone())) else {
            break;
        };
        names.push(folder.spec.name.clone());
        next = folder.spec.parent.clone();
    }
    names.reverse();
    format!("/{}", names.join("/"))
}

/// Dropbox shows no trash through this API: a trashed item is a deleted one.
fn is_gone(file: &File) -> bool {
    file.deleted || file.spec.trashed
}

/// Whether a folder above the item is gone too and its `deleted` entry is reported: then
/// only that folder's `deleted` entry stands for what was in it. A gone folder whose path is
/// `held` by another item now is not reported (see [`page`]), so what was in it is reported
/// item by item.
fn under_gone_folder(view: &View, drive: &Drive, spec: &FileSpec, held: &HashSet<String>) -> bool {
    let mut seen = HashSet::new();
    let mut next = spec.parent.clone();
    while let Some(id) = next {
        let Some(folder) = drive.files.get(&id).filter(|_| seen.insert(id.clone())) else {
            return false;
        };
        let shown = view.path(drive, &folder.spec);
        if is_gone(folder) && shown.is_some_and(|path| !held.contains(&lower(&path))) {
            return true;
        }
        next = folder.spec.parent.clone();
    }
    false
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One `Metadata` entry (files/list_folder, `entries`): `file`, `folder` or `deleted`; a
/// `deleted` entry has no id, only the name and paths it had. `path` is its path in the
/// namespace the listing is rooted at.
fn entry_json(path: String, file: &File) -> Value {
    let spec = &file.spec;
    let lower = lower(&path);
    if is_gone(file) {
        return json!({".tag": "deleted", "name": spec.name, "path_lower": lower, "path_display": path});
    }
    if spec.is_folder() {
        return json!({".tag": "folder", "name": spec.name, "id": spec.id, "path_lower": lower, "path_display": path});
    }
    let content_hash: String = spec
        .content_digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut entry = json!({
        ".tag": "file",
        "name": spec.name,
        "id": spec.id,
        "client_modified": timestamp(spec.modified_time),
        "server_modified": timestamp(file.changed_at.max(spec.modified_time)),
        // Revisions are hex strings of at least 9 characters.
        "rev": format!("{:015x}", file.seq),
        "size": spec.size.unwrap_or(0),
        "path_lower": lower,
        "path_display": path,
        "is_downloadable": true,
        "content_hash": content_hash,
    });
    // A Paper doc has no bytes of its own: it is exported (`content.rs`).
    if content::is_paper(&spec.name) {
        entry["is_downloadable"] = json!(false);
        entry["export_info"] = content::export_info();
    }
    entry
}

#[derive(Deserialize)]
struct ListFolderArgs {
    path: String,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    include_deleted: bool,
    limit: Option<u64>,
}

pub(crate) async fn list_folder(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "files/list_folder";
    let args: ListFolderArgs = match typed_argument(ENDPOINT, &headers, &body) {
        Ok(args) => args,
        Err(refusal) => return *refusal,
    };
    // The root is "", not "/" (files/list_folder, `path` pattern).
    if args.path == "/"
        || (!args.path.is_empty() && !args.path.starts_with('/') && !args.path.starts_with("id:"))
    {
        return bad_input(
            ENDPOINT,
            &format!("request body: path: '{}' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)'", args.path),
        );
    }
    if let Some(limit) = args.limit {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return bad_input(
                ENDPOINT,
                &format!("request body: limit: {limit} is not within 1 and {MAX_LIMIT}"),
            );
        }
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
    let epoch = state.cursor_epoch;
    let drive = state.drive(Provider::Dropbox, &grant.user);
    let folder = match args.path.as_str() {
        "" => String::new(),
        path => {
            let wanted = lower(path);
            let found = drive.files.values().find_map(|f| {
                let shown = view.path(drive, &f.spec).filter(|_| !is_gone(f))?;
                (f.spec.id == path || lower(&shown) == wanted).then_some((f, shown))
            });
            match found {
                None => return api_error(StatusCode::CONFLICT, "path/not_found"),
                Some((f, _)) if !f.spec.is_folder() => {
                    return api_error(StatusCode::CONFLICT, "path/not_folder")
                }
                Some((_, shown)) => lower(&shown),
            }
        }
    };
    let cursor = Cursor {
        user: grant.user,
        folder,
        recursive: args.recursive,
        include_deleted: args.include_deleted,
        after: 0,
        snapshot: drive.next_seq,
        limit: args.limit.map(|l| l as usize),
        epoch,
        namespace,
    };
    page(&mut state, cursor, &view)
}

#[derive(Deserialize)]
struct ContinueArgs {
    cursor: String,
}

pub(crate) async fn list_folder_continue(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "files/list_folder/continue";
    let args: ContinueArgs = match typed_argument(ENDPOINT, &headers, &body) {
        Ok(args) => args,
        Err(refusal) => return *refusal,
    };
    let mut state = lock(&shared);
    let grant = match authenticate(&state, ENDPOINT, &headers, Some("files.metadata.read")) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let Some(cursor) = Cursor::decode(&args.cursor).filter(|c| c.user == grant.user) else {
        return bad_input(ENDPOINT, "Invalid \"cursor\" parameter.");
    };
    // A reset cursor cannot be continued: the client must list the folder afresh
    // (ListFolderContinueError `reset`).
    if cursor.epoch != state.cursor_epoch {
        return api_error(StatusCode::CONFLICT, "reset");
    }
    // The cursor carries its root; a header, when sent, is checked as on any call (a stale
    // `root` is 422 `invalid_root`), see `team`.
    if let Err(refusal) = team::requested_namespace(&state, &grant.user, ENDPOINT, &headers) {
        return *refusal;
    }
    let Some(view) = team::view_of(&state, &grant.user, &cursor.namespace) else {
        return api_error(StatusCode::CONFLICT, "reset");
    };
    page(&mut state, cursor, &view)
}

/// The entries after the cursor, in the order they changed (so a folder comes before what
/// was put in it), at most a page of them.
fn page(state: &mut Inner, cursor: Cursor, view: &View) -> Response {
    let page_size = cursor
        .limit
        .map_or(state.dropbox_page_size, |l| l.min(state.dropbox_page_size))
        .max(1);
    let drive = state.drive(Provider::Dropbox, &cursor.user);
    let in_scope = |path_lower: &str| -> bool {
        let Some(rest) = path_lower.strip_prefix(&format!("{}/", cursor.folder)) else {
            return false;
        };
        cursor.recursive || !rest.contains('/')
    };
    // Dropbox reports the state of each changed path, not each event: a path that another
    // item holds now is reported as that item alone, with no `deleted` entry for what was
    // there before (clients apply the replacement rule of files/list_folder).
    let nothing_held = HashSet::new();
    let held: HashSet<String> = drive
        .files
        .values()
        .filter(|f| !is_gone(f) && !under_gone_folder(view, drive, &f.spec, &nothing_held))
        .filter_map(|f| view.path(drive, &f.spec))
        .map(|path| lower(&path))
        .collect();
    // The version the client last saw: the latest one delivered before this cursor.
    let seen_version = |file: &File| -> Option<FileSpec> {
        file.versions
            .iter()
            .rev()
            .find(|(seq, _)| *seq <= cursor.after)
            .map(|(_, seen)| seen.clone())
    };
    // An item that left the namespace (moved out of the member folder) is a deletion at the
    // path the client saw; one it never saw there is nothing to this listing.
    let shown_path = |file: &File| -> Option<String> {
        view.path(drive, &file.spec)
            .or_else(|| seen_version(file).and_then(|seen| view.path(drive, &seen)))
    };
    let mut changed: Vec<&File> = drive
        .files
        .values()
        .filter(|f| f.seq > cursor.after)
        .filter(|f| !is_gone(f) || cursor.include_deleted || f.seq >= cursor.snapshot)
        .filter(|f| !under_gone_folder(view, drive, &f.spec, &held))
        .filter(|f| shown_path(f).is_some_and(|path| in_scope(&lower(&path))))
        .collect();
    changed.sort_by_key(|f| f.seq);
    let has_more = changed.len() > page_size;
    changed.truncate(page_size);
    let mut entries = Vec::new();
    for file in &changed {
        let Some(now) = view.path(drive, &file.spec) else {
            let old = shown_path(file).unwrap_or_default();
            if !held.contains(&lower(&old)) {
                let name = old.rsplit('/').next().unwrap_or_default().to_string();
                entries.push(json!({
                    ".tag": "deleted",
                    "name": name,
                    "path_lower": lower(&old),
                    "path_display": old,
                }));
            }
            continue;
        };
        // A move or rename is a `deleted` entry at the old path, then the entry at the new
        // one; clients apply entries in order (files/list_folder, description).
        let moved_from = seen_version(file)
            .filter(|_| !is_gone(file))
            .and_then(|seen| view.path(drive, &seen))
            .filter(|old| lower(old) != lower(&now))
            .filter(|old| !held.contains(&lower(old)));
        if is_gone(file) && held.contains(&lower(&now)) {
            continue;
        }
        if let Some(old) = moved_from {
            let name = old.rsplit('/').next().unwrap_or_default().to_string();
            entries.push(json!({
                ".tag": "deleted",
                "name": name,
                "path_lower": lower(&old),
                "path_display": old,
            }));
        }
        entries.push(entry_json(now, file));
    }
    let next = match has_more {
        true => Cursor {
            after: changed.last().map_or(cursor.after, |f| f.seq),
            ..cursor
        },
        // Everything up to now is delivered; what changes next comes in `continue`.
        false => Cursor {
            after: drive.next_seq - 1,
            ..cursor
        },
    };
    Json(json!({"entries": entries, "cursor": next.encode(), "has_more": has_more})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_summary_tail_is_no_tag() {
        let expected = json!({
            "error_summary": "path/not_found/...",
            "error": {".tag": "path", "path": {".tag": "not_found"}},
        });
        for summary in ["path/not_found", "path/not_found/...", "path/not_found/.."] {
            assert_eq!(error_body(summary), expected, "{summary}");
        }
    }
}
