//! Google's userinfo and Drive v3: `changes/startPageToken`, `files.list` and `changes.list`,
//! with page tokens and the `fields` partial-response parameter; one file's resource, bytes
//! and exports in `content`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::SecondsFormat;
use serde_json::{json, Map, Value};

pub(crate) mod bytes;
pub(crate) mod content;
pub(crate) mod drives;
pub(crate) mod query;
pub(crate) mod writes;

use crate::oauth::query_map;
use crate::state::{lock, Drive, File, FileSpec, Provider, Shared, State as Inner};
use query::{Query, Searched};

/// What Drive answers when `fields` is absent: files carry only kind, id, name and mimeType.
const FILE_LIST_DEFAULT: &str = "kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)";
const CHANGE_LIST_DEFAULT: &str = "kind,nextPageToken,newStartPageToken,\
    changes(kind,changeType,time,removed,fileId,file(kind,id,name,mimeType))";

/// Google's error body, with the `errors` list Drive clients read the `reason` from:
/// <https://developers.google.com/drive/api/guides/handle-errors>.
pub(crate) struct GoogleError {
    status: StatusCode,
    message: String,
    domain: &'static str,
    reason: String,
    location: Option<(&'static str, &'static str)>,
}

impl GoogleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> GoogleError {
        let reason = match status.as_u16() {
            400 => "badRequest",
            401 => "authError",
            403 => "forbidden",
            404 => "notFound",
            429 => "rateLimitExceeded",
            500 | 503 => "backendError",
            _ => "unknown",
        };
        let location = (status == StatusCode::UNAUTHORIZED).then_some(("header", "Authorization"));
        GoogleError {
            status,
            message: message.into(),
            domain: "global",
            reason: reason.to_string(),
            location,
        }
    }

    /// Another reason; the rate-limit ones are in the `usageLimits` domain and carry Drive's
    /// own message.
    pub fn with_reason(mut self, reason: &str) -> GoogleError {
        let (domain, message) = match reason {
            "userRateLimitExceeded" => ("usageLimits", Some("User Rate Limit Exceeded")),
            "rateLimitExceeded" => ("usageLimits", Some("Rate Limit Exceeded")),
            "dailyLimitExceeded" => ("usageLimits", Some("Daily Limit Exceeded")),
            "insufficientFilePermissions" => (
                "global",
                Some("The user does not have sufficient permissions for this file."),
            ),
            _ => ("global", None),
        };
        self.domain = domain;
        self.reason = reason.to_string();
        if let Some(message) = message {
            self.message = message.to_string();
        }
        self
    }

    /// A refused query parameter: `locationType` `parameter`, `location` its name.
    pub(crate) fn on_parameter(mut self, name: &'static str) -> GoogleError {
        self.location = Some(("parameter", name));
        self
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let status = match self.status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            _ => "UNKNOWN",
        };
        let mut detail = json!({
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        });
        if let Some((kind, name)) = self.location {
            detail["locationType"] = json!(kind);
            detail["location"] = json!(name);
        }
        let body = json!({"error": {
            "code": self.status.as_u16(),
            "message": self.message,
            "errors": [detail],
            "status": status,
        }});
        (self.status, Json(body)).into_response()
    }
}

/// A refused request, answered with Google's error body; lets handlers use `?`.
pub(crate) type Refusal = GoogleError;

impl GoogleError {
    pub(crate) fn invalid_parameter(name: &'static str) -> GoogleError {
        GoogleError::new(StatusCode::BAD_REQUEST, "Invalid Value")
            .with_reason("invalid")
            .on_parameter(name)
    }
}

fn unauthorized() -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "Request had invalid authentication credentials.",
    )
}

/// The Drive user behind the bearer token; the grant must include a Drive scope, as at Google.
pub(crate) fn drive_user(state: &Inner, headers: &HeaderMap) -> Result<String, Refusal> {
    let grant = state
        .authenticate(Provider::Google, headers)
        .ok_or_else(unauthorized)?;
    if !grant.scope.split(' ').any(|s| s.contains("/auth/drive")) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Request had insufficient authentication scopes.",
        )
        .with_reason("insufficientPermissions"));
    }
    Ok(grant.user)
}

pub(crate) async fn userinfo(
    State(shared): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let state = lock(&shared);
    let grant = state
        .authenticate(Provider::Google, &headers)
        .ok_or_else(unauthorized)?;
    let email = state.email(Provider::Google, &grant.user);
    Ok(Json(json!({"sub": grant.user, "email": email, "email_verified": true})).into_response())
}

/// A parsed `fields` selection: each name with its nested selection (`None`: all of it).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Fields(BTreeMap<String, Option<Fields>>);

impl Fields {
    /// Parses Drive's syntax: `a,b(c,d(e))`, also `a/b` for `a(b)`. `None` if malformed.
    pub fn parse(input: &str) -> Option<Fields> {
        let mut chars = input.chars().peekable();
        let fields = Fields::parse_list(&mut chars)?;
        chars.next().is_none().then_some(fields)
    }

    fn parse_list(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<Fields> {
        let mut fields = Fields::default();
        loop {
            let mut name = String::new();
            while let Some(c) = chars.next_if(|c| !",()".contains(*c)) {
                name.push(c);
            }
            let mut nested = None;
            if chars.next_if_eq(&'(').is_some() {
                nested = Some(Fields::parse_list(chars)?);
                chars.next_if_eq(&')')?;
            }
            // `a/b(c)` is `a(b(c))`.
            let mut path = name.trim().rsplit('/');
            let last = path.next().filter(|n| !n.is_empty())?;
            let mut selection = (last.to_string(), nested);
            for parent in path {
                let child = Fields(BTreeMap::from([selection]));
                selection = (parent.to_string(), Some(child));
            }
            fields.merge(selection.0, selection.1);
            if chars.next_if_eq(&',').is_none() {
                return Some(fields);
            }
        }
    }

    fn merge(&mut self, name: String, nested: Option<Fields>) {
        match (self.0.get_mut(&name), nested) {
            (Some(Some(existing)), Some(more)) => {
                for (name, nested) in more.0 {
                    existing.merge(name, nested);
                }
            }
            // Asking for the whole of something wins over asking for parts of it.
            (Some(existing), _) => *existing = None,
            (None, nested) => {
                self.0.insert(name, nested);
            }
        }
    }

    /// The value cut down to the selection; lists are cut element by element.
    pub fn apply(&self, value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            Value::Object(_) if self.0.contains_key("*") => value.clone(),
            Value::Object(map) => {
                let kept = map.iter().filter_map(|(key, v)| match self.0.get(key)? {
                    None => Some((key.clone(), v.clone())),
                    Some(nested) => Some((key.clone(), nested.apply(v))),
                });
                Value::Object(kept.collect::<Map<_, _>>())
            }
            other => other.clone(),
        }
    }
}

/// The request's `fields`, or Drive's default for the method. Drive refuses unknown
/// top-level names with 400, and so do we; nested names are not checked.
pub(crate) fn selection(
    query: &std::collections::HashMap<String, String>,
    default: &str,
    known: &[&str],
) -> Result<Fields, Refusal> {
    let requested = query.get("fields").map(String::as_str).unwrap_or(default);
    let fields = Fields::parse(requested)
        .filter(|f| f.0.keys().all(|k| k == "*" || known.contains(&k.as_str())));
    let message = format!("Invalid field selection {requested}");
    fields.ok_or(Refusal::new(StatusCode::BAD_REQUEST, message))
}

fn page_size(
    query: &std::collections::HashMap<String, String>,
    cap: usize,
) -> Result<usize, Refusal> {
    match query.get("pageSize") {
        None => Ok(100.min(cap)),
        Some(value) => match value.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(cap)),
            _ => Err(Refusal::invalid_parameter("pageSize")),
        },
    }
}

/// A Drive file resource with every field this stand-in knows; `fields` cuts it down, so
/// `parents`, `md5Checksum`, `driveId` and the like are there only when asked for.
fn file_json(user: &str, file: &File) -> Value {
    let spec = &file.spec;
    let google_type = spec.mime_type.starts_with("application/vnd.google-apps.");
    // A shared drive's root folder has the drive's id.
    let root = spec.drive_id.clone().unwrap_or_else(|| my_drive_root(user));
    let mut json = json!({
        "kind": "drive#file",
        "id": spec.id,
        "name": spec.name,
        "mimeType": spec.mime_type,
        "modifiedTime": spec.modified_time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "webViewLink": format!("https://drive.google.com/file/d/{}/view", spec.id),
        "trashed": spec.trashed,
        "ownedByMe": !spec.shared_with_me && spec.drive_id.is_none(),
        "shared": spec.shared_with_me,
    });
    // A file shared with the user sits in someone else's folder, which the user cannot see:
    // Drive leaves `parents` out then.
    match (&spec.parent, spec.shared_with_me) {
        (Some(parent), _) => json["parents"] = json!([parent]),
        (None, false) => json["parents"] = json!([root]),
        (None, true) => {}
    }
    // int64 travels as a string; Google Docs, Sheets and folders have no size nor checksum.
    if !google_type {
        if let Some(size) = spec.size {
            json["size"] = json!(size.to_string());
        }
        let digest = spec.content_digest();
        json["md5Checksum"] = json!(hex(&digest[..16]));
    }
    if let Some(drive_id) = &spec.drive_id {
        json["driveId"] = json!(drive_id);
    }
    if let Some(target) = &spec.shortcut_target {
        json["shortcutDetails"] = json!({"targetId": target});
    }
    if spec.shared_with_me {
        let shared_at = file.changed_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        json["sharedWithMeTime"] = json!(shared_at);
    }
    json
}

fn my_drive_root(user: &str) -> String {
    format!("0A-root-{user}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The shared drives a request reaches besides My Drive (and files shared with the user).
#[derive(PartialEq)]
enum SharedDrives {
    None,
    All,
    /// `corpora=drive` / `driveId`: that shared drive only, not My Drive.
    Only(String),
}

impl SharedDrives {
    /// Whether a listing of this reach shows the file; a shared drive's files only while the
    /// user is a member of it.
    fn shows(&self, drive: &Drive, spec: &FileSpec) -> bool {
        if spec
            .drive_id
            .as_ref()
            .is_some_and(|id| !drive.is_member(id))
        {
            return false;
        }
        match (self, &spec.drive_id) {
            (SharedDrives::Only(_), None) => false,
            (_, None) => true,
            (SharedDrives::None, Some(_)) => false,
            (SharedDrives::All, Some(_)) => true,
            (SharedDrives::Only(wanted), Some(id)) => wanted == id,
        }
    }
}

fn flag(query: &std::collections::HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true")
}

/// Drive reaches shared-drive items only for apps that say they support them
/// (`supportsAllDrives=true`) and ask for them (`includeItemsFromAllDrives=true`), and
/// refuses the second without the first:
/// <https://developers.google.com/drive/api/guides/enable-shareddrives>. The deprecated
/// `supportsTeamDrives` / `includeTeamDriveItems` are taken as their synonyms.
fn asks_for_shared_drives(
    query: &std::collections::HashMap<String, String>,
) -> Result<bool, Refusal> {
    let supports = flag(query, "supportsAllDrives") || flag(query, "supportsTeamDrives");
    let include = flag(query, "includeItemsFromAllDrives") || flag(query, "includeTeamDriveItems");
    if include && !supports {
        let message = "The includeItemsFromAllDrives parameter can only be set to true when \
                       supportsAllDrives is also set to true.";
        let refusal = Refusal::new(StatusCode::BAD_REQUEST, message).with_reason("invalid");
        return Err(refusal.on_parameter("includeItemsFromAllDrives"));
    }
    Ok(include)
}

/// `files.list`'s corpora: `user` (the default; My Drive and what is shared with the user),
/// `drive` (one shared drive, with `driveId`) or `allDrives`; the last two need
/// `includeItemsFromAllDrives=true`:
/// <https://developers.google.com/drive/api/reference/rest/v3/files/list>.
fn listing_reach(
    query: &std::collections::HashMap<String, String>,
) -> Result<SharedDrives, Refusal> {
    let include = asks_for_shared_drives(query)?;
    let corpora = query.get("corpora").map_or("user", String::as_str);
    match (corpora, include) {
        ("user" | "domain", _) => Ok(SharedDrives::None),
        ("allDrives", true) => Ok(SharedDrives::All),
        ("drive", true) => match query.get("driveId") {
            Some(id) => Ok(SharedDrives::Only(id.clone())),
            None => Err(Refusal::invalid_parameter("driveId")),
        },
        ("allDrives" | "drive", false) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "includeItemsFromAllDrives must be true when corpora is drive or allDrives.",
        )
        .with_reason("invalid")
        .on_parameter("includeItemsFromAllDrives")),
        _ => Err(Refusal::invalid_parameter("corpora")),
    }
}

/// `changes.list` reports shared-drive changes when asked for as for `files.list`; with
/// `driveId` only that shared drive's.
fn changes_reach(
    query: &std::collections::HashMap<String, String>,
) -> Result<SharedDrives, Refusal> {
    let include = asks_for_shared_drives(query)?;
    match query.get("driveId") {
        Some(id) if flag(query, "supportsAllDrives") => Ok(SharedDrives::Only(id.clone())),
        Some(_) => Err(Refusal::invalid_parameter("driveId")),
        None if include => Ok(SharedDrives::All),
        None => Ok(SharedDrives::None),
    }
}

pub(crate) async fn start_page_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let mut state = lock(&shared);
    let user = drive_user(&state, &headers)?;
    let next = state.drive(Provider::Google, &user).next_seq;
    let answer = json!({"kind": "drive#startPageToken", "startPageToken": next.to_string()});
    Ok(Json(answer).into_response())
}

const FILES_PAGE_PREFIX: &str = "files-after:";

pub(crate) async fn list_files(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let user = drive_user(&state, &headers)?;
    let known = ["kind", "nextPageToken", "incompleteSearch", "files"];
    let fields = selection(&query, FILE_LIST_DEFAULT, &known)?;
    let size = page_size(&query, state.drive_max_page_size)?;
    let reach = listing_reach(&query)?;
    // The page token is the listing epoch and the last id of the previous page: paging by id
    // stays right while files are added or removed between pages, and the epoch lets a test
    // make outstanding tokens stale, which Drive refuses as an invalid pageToken.
    let epoch = state.listing_epoch;
    let after = match query.get("pageToken") {
        None => Bound::Unbounded,
        Some(token) => match URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| {
                let rest = s.strip_prefix(FILES_PAGE_PREFIX)?;
                let (issued, id) = rest.split_once(':')?;
                (issued.parse::<u64>().ok()? == epoch).then(|| id.to_string())
            }) {
            Some(id) => Bound::Excluded(id),
            None => return Err(Refusal::invalid_parameter("pageToken")),
        },
    };
    let q = match query.get("q").filter(|q| !q.trim().is_empty()) {
        None => None,
        Some(q) => Some(Query::parse(q).ok_or(Refusal::invalid_parameter("q"))?),
    };
    // The text of the files' bytes a test set, which `fullText` searches.
    let texts: HashMap<String, String> = match q {
        Some(_) => state
            .google_bytes
            .content
            .iter()
            .filter_map(|(id, body)| Some((id.clone(), body.text()?)))
            .collect(),
        None => HashMap::new(),
    };
    let drive = state.drive(Provider::Google, &user);
    if let SharedDrives::Only(id) = &reach {
        drives::drive_not_found(drive, id)?;
    }
    // `allDrives` searches several corpora at once, and Drive says its answer may then be
    // incomplete (`incompleteSearch`: "This can occur when searching multiple drives with the
    // 'allDrives' corpora, but all corpora couldn't be searched", and "Prefer 'user' or
    // 'drive' to 'allDrives'": <https://developers.google.com/drive/api/reference/rest/v3/files/list>).
    // The stand-in takes that worst case whenever the user is in a shared drive: it searches
    // only the `user` corpus and says so.
    let incomplete = reach == SharedDrives::All && drive.shared_drives.values().any(|d| d.member);
    let reach = if incomplete {
        SharedDrives::None
    } else {
        reach
    };
    let page: Vec<&File> = drive
        .files
        .range((after, Bound::Unbounded))
        .map(|(_, file)| file)
        .filter(|f| !f.deleted && reach.shows(drive, &f.spec))
        .filter(|f| {
            q.as_ref().is_none_or(|q| {
                q.matches(&Searched {
                    name: &f.spec.name,
                    content: texts.get(&f.spec.id).map(String::as_str),
                    trashed: f.spec.trashed,
                })
            })
        })
        .take(size + 1)
        .collect();
    let files: Vec<Value> = page
        .iter()
        .take(size)
        .map(|f| file_json(&user, f))
        .collect();
    let mut answer =
        json!({"kind": "drive#fileList", "incompleteSearch": incomplete, "files": files});
    if page.len() > size {
        let token = format!("{FILES_PAGE_PREFIX}{epoch}:{}", page[size - 1].spec.id);
        answer["nextPageToken"] = json!(URL_SAFE_NO_PAD.encode(token));
    }
    Ok(Json(fields.apply(&answer)).into_response())
}

pub(crate) async fn list_changes(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let user = drive_user(&state, &headers)?;
    let known = ["kind", "nextPageToken", "newStartPageToken", "changes"];
    let fields = selection(&query, CHANGE_LIST_DEFAULT, &known)?;
    let size = page_size(&query, state.drive_max_page_size)?;
    let include_removed = query.get("includeRemoved").map(String::as_str) != Some("false");
    let reach = changes_reach(&query)?;
    let drive = state.drive(Provider::Google, &user);
    // Page tokens are change sequence numbers: the start page token or a later one.
    let from = query.get("pageToken").and_then(|t| t.parse::<u64>().ok());
    let Some(from) = from.filter(|seq| (1..=drive.next_seq).contains(seq)) else {
        return Err(Refusal::invalid_parameter("pageToken"));
    };
    // Each file once, at its latest change, and each shared drive joined or left (for a
    // client that supports shared drives), in change order.
    let mut changed: Vec<(u64, Value)> = drive
        .files
        .values()
        .filter(|f| f.seq >= from && (include_removed || !f.deleted))
        .filter(|f| reach.shows(drive, &f.spec))
        .filter(|f| drives::seen_as_member(drive, f.spec.drive_id.as_deref(), f.seq))
        .map(|f| {
            let mut change = json!({
                "kind": "drive#change",
                "changeType": "file",
                "time": f.changed_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "removed": f.deleted,
                "fileId": f.spec.id,
            });
            if !f.deleted {
                change["file"] = file_json(&user, f);
            }
            if let Some(drive_id) = &f.spec.drive_id {
                change["driveId"] = json!(drive_id);
            }
            (f.seq, change)
        })
        .collect();
    if reach == SharedDrives::All {
        changed.extend(drives::drive_changes(drive, from));
    }
    changed.sort_by_key(|(seq, _)| *seq);
    let changes: Vec<Value> = changed
        .iter()
        .take(size)
        .map(|(_, change)| change.clone())
        .collect();
    let mut answer = json!({"kind": "drive#changeList", "changes": changes});
    match changed.get(size) {
        Some((seq, _)) => answer["nextPageToken"] = json!(seq.to_string()),
        None => answer["newStartPageToken"] = json!(drive.next_seq.to_string()),
    }
    Ok(Json(fields.apply(&answer)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_select_nested_keys() {
        let fields = Fields::parse("nextPageToken,changes(fileId,file(id,name)),files/size")
            .expect("valid selection");
        let value = json!({
            "kind": "x", "nextPageToken": "7",
            "changes": [{"fileId": "a", "removed": false, "file": {"id": "a", "name": "n", "size": "1"}}],
            "files": [{"id": "b", "size": "2"}],
        });
        let expected = json!({
            "nextPageToken": "7",
            "changes": [{"fileId": "a", "file": {"id": "a", "name": "n"}}],
            "files": [{"size": "2"}],
        });
        assert_eq!(fields.apply(&value), expected);
    }

    #[test]
    fn malformed_fields_are_refused() {
        for bad in ["files(id", "files)", "a,,b", "", "files()"] {
            assert_eq!(Fields::parse(bad), None, "{bad}");
        }
    }
}
