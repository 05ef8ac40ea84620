//! The stand-ins' traffic, recorded for `.ci/provider-artifacts`, which checks it against the
//! providers' own machine-readable descriptions (Drive's discovery document, Dropbox's Stone
//! types, Graph's models). Only when `HUB_TESTKIT_TRAFFIC_DIR` names a folder (read once, when
//! the stand-ins start): each exchange is then one JSON line appended to
//! `traffic-<process id>.jsonl` there, holding the provider, method, path, query, the request's
//! JSON body, the status and the response's JSON body (for Dropbox's content calls, the JSON
//! of their `Dropbox-API-Arg` and `Dropbox-API-Result` headers). No other header is kept, and credentials are
//! blanked wherever they travel in a JSON body or a query (`<redacted>`), so a line can be read
//! by anyone; form bodies (the OAuth token requests) are not kept at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Map, Value};

/// The variable naming the folder the lines go to.
pub(crate) const TRAFFIC_DIR_VAR: &str = "HUB_TESTKIT_TRAFFIC_DIR";

/// What replaces a credential's value.
const REDACTED: &str = "<redacted>";

/// JSON members that carry a credential: OAuth tokens and secrets, Drive's channel `token` and
/// Graph's `clientState` (the secrets the hub checks notifications with).
const SECRET_MEMBERS: [&str; 7] = [
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "code_verifier",
    "token",
    "clientState",
];

/// Query parameters that carry one: the same, and the authorization `code`. (Graph's delta
/// links carry their position as `token`, which is blanked with the rest.)
const SECRET_PARAMETERS: [&str; 8] = [
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "code_verifier",
    "token",
    "code",
    "authorization",
];

/// One write at a time in this process, so that lines of concurrent exchanges never mix.
static WRITING: Mutex<()> = Mutex::new(());

/// Where this process's lines go, if recording is on.
pub(crate) fn file_from_env() -> Option<PathBuf> {
    let dir = std::env::var_os(TRAFFIC_DIR_VAR).filter(|d| !d.is_empty())?;
    Some(Path::new(&dir).join(format!("traffic-{}.jsonl", std::process::id())))
}

/// The layer: passes the exchange through untouched and, when recording, appends its line.
pub(crate) async fn record(
    State(file): State<Option<PathBuf>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(file) = file else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    // A body the stand-ins could not read either: what they answer is what gets recorded.
    let sent = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let method = parts.method.to_string();
    let uri = parts.uri.clone();
    let request_headers = parts.headers.clone();
    let response = next
        .run(Request::from_parts(parts, Body::from(sent.clone())))
        .await;
    let (parts, body) = response.into_parts();
    // A file's bytes (a download, an export) pass through unread: they may be gigabytes,
    // and the checkers look at JSON only.
    if is_file_bytes(&parts.headers) {
        let line = Exchange {
            method: &method,
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            request_headers: &request_headers,
            request_body: &sent,
            status: parts.status.as_u16(),
            response_headers: &parts.headers,
            response_body: &Bytes::new(),
        }
        .line_of_file_bytes();
        append(&file, &line);
        return Response::from_parts(parts, body);
    }
    let answered = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let line = Exchange {
        method: &method,
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        request_headers: &request_headers,
        request_body: &sent,
        status: parts.status.as_u16(),
        response_headers: &parts.headers,
        response_body: &answered,
    }
    .line();
    append(&file, &line);
    Response::from_parts(parts, Body::from(answered))
}

/// Whether an answer carries a file's bytes rather than an API's JSON, text or page: any
/// type but those.
fn is_file_bytes(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    !content_type.is_empty()
        && !content_type.contains("json")
        && !content_type.starts_with("text/")
        && !content_type.starts_with("application/x-www-form-urlencoded")
}

/// The recorder must not change what a test sees: a line that cannot be written is reported
/// on stderr (the checker then misses it), never turned into a failed exchange.
fn append(file: &Path, line: &Value) {
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("hub-testkit: recording traffic to {}: {e}", file.display());
    }
}

/// One request and its answer, as the layer saw them.
pub(crate) struct Exchange<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub request_headers: &'a HeaderMap,
    pub request_body: &'a Bytes,
    pub status: u16,
    pub response_headers: &'a HeaderMap,
    pub response_body: &'a Bytes,
}

impl Exchange<'_> {
    /// The line of an answer carrying a file's bytes, which were not read: its
    /// `response_kind` is `other`.
    fn line_of_file_bytes(&self) -> Value {
        let mut line = self.line();
        line["response_kind"] = json!("other");
        line
    }

    /// The JSON line: `provider` (`google`, `microsoft`, `dropbox`), `method`, `path`,
    /// `query` (name and value pairs in order), `request` and `response` (the JSON bodies, or
    /// null), `request_kind` and `response_kind` (`none`, `json`, `form`, `text`, `html`,
    /// `other`), `status`, and `test` (the thread, which names the test for `#[tokio::test]`).
    pub fn line(&self) -> Value {
        let provider = match self.path.split('/').nth(1) {
            Some("google") => "google",
            Some("microsoft" | "graph") => "microsoft",
            Some("dropbox") => "dropbox",
            Some("box") => "box",
            _ => "none",
        };
        let query: Vec<Value> = url::form_urlencoded::parse(self.query.as_bytes())
            .map(|(name, value)| {
                let secret = SECRET_PARAMETERS.contains(&name.as_ref());
                let value = if secret { REDACTED.into() } else { value };
                json!([name, value])
            })
            .collect();
        // Dropbox's content calls carry their JSON argument and result in headers, the body
        // being the bytes: those are what the artifacts describe.
        let (request_kind, request) = match header_json(self.request_headers, "dropbox-api-arg") {
            Some(argument) if self.request_body.is_empty() => ("json", redacted(argument)),
            _ => body_of(self.request_headers, self.request_body),
        };
        let (response_kind, response) =
            match header_json(self.response_headers, "dropbox-api-result") {
                Some(result) => ("json", redacted(result)),
                None => body_of(self.response_headers, self.response_body),
            };
        let test = std::thread::current().name().unwrap_or("").to_string();
        json!({
            "provider": provider,
            "method": self.method,
            "path": self.path,
            "query": query,
            "request_kind": request_kind,
            "request": request,
            "status": self.status,
            "response_kind": response_kind,
            "response": response,
            "test": test,
        })
    }
}

/// The JSON value of header `name`, if it holds one.
fn header_json(headers: &HeaderMap, name: &str) -> Option<Value> {
    let text = headers.get(name)?.to_str().ok()?;
    serde_json::from_str(text).ok()
}

/// What kind of body this is and, for JSON, the value with its credentials blanked. A JSON
/// body is one labelled so, or an unlabelled one that parses (Dropbox's RPC calls may say
/// `text/plain; charset=dropbox-cors-hack`).
fn body_of(headers: &HeaderMap, body: &Bytes) -> (&'static str, Value) {
    if body.is_empty() {
        return ("none", Value::Null);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return ("form", Value::Null);
    }
    if content_type.starts_with("text/html") {
        return ("html", Value::Null);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value)
            if content_type.contains("json") || content_type.contains("dropbox-cors-hack") =>
        {
            ("json", redacted(value))
        }
        Ok(value) if content_type.is_empty() => ("json", redacted(value)),
        _ if content_type.starts_with("text/") => ("text", Value::Null),
        _ => ("other", Value::Null),
    }
}

/// The value with every string member named in [`SECRET_MEMBERS`] blanked, at any depth.
fn redacted(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| match value {
                    Value::String(_) if SECRET_MEMBERS.contains(&key.as_str()) => {
                        (key, Value::String(REDACTED.into()))
                    }
                    other => (key, redacted(other)),
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redacted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    #[test]
    fn a_line_keeps_the_call_and_blanks_every_credential() {
        let sent = Bytes::from_static(
            br#"{"id":"ch-1","type":"web_hook","token":"channel-secret","nested":[{"clientState":"s3"}]}"#,
        );
        let answered = Bytes::from_static(
            br#"{"access_token":"at-1","refresh_token":"rt-1","expires_in":3599,"error":{"code":404}}"#,
        );
        let line = Exchange {
            method: "POST",
            path: "/google/drive/v3/changes/watch",
            query: "pageToken=7&token=delta-1&code=auth-code&fields=id%2Cname",
            request_headers: &headers("application/json"),
            request_body: &sent,
            status: 200,
            response_headers: &headers("application/json; charset=utf-8"),
            response_body: &answered,
        }
        .line();
        let text = line.to_string();
        for secret in [
            "channel-secret",
            "s3",
            "at-1",
            "rt-1",
            "delta-1",
            "auth-code",
        ] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
        assert_eq!(line["provider"], "google");
        assert_eq!(
            line["query"],
            json!([
                ["pageToken", "7"],
                ["token", REDACTED],
                ["code", REDACTED],
                ["fields", "id,name"]
            ])
        );
        assert_eq!(line["request"]["type"], "web_hook");
        assert_eq!(line["request"]["nested"][0]["clientState"], REDACTED);
        assert_eq!(line["response"]["expires_in"], 3599);
        assert_eq!(
            line["response"]["error"]["code"], 404,
            "numbers are not credentials"
        );
    }

    #[test]
    fn form_and_text_bodies_are_not_kept() {
        let form = Bytes::from_static(b"grant_type=refresh_token&refresh_token=rt-1");
        let text = Bytes::from_static(b"Error in call to API function");
        let line = Exchange {
            method: "POST",
            path: "/dropbox/oauth2/token",
            query: "",
            request_headers: &headers("application/x-www-form-urlencoded"),
            request_body: &form,
            status: 400,
            response_headers: &headers("text/plain; charset=utf-8"),
            response_body: &text,
        }
        .line();
        assert_eq!(line["provider"], "dropbox");
        assert_eq!(
            (&line["request_kind"], &line["request"]),
            (&json!("form"), &Value::Null)
        );
        assert_eq!(
            (&line["response_kind"], &line["response"]),
            (&json!("text"), &Value::Null)
        );
        assert!(!line.to_string().contains("rt-1"));
    }
}
