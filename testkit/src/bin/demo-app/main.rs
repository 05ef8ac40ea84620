//! A small app that embeds the hub, for the click-through demo (`scripts/dev` starts it when
//! no OAuth client is configured): it does what an app's backend does with connect sessions.
//!
//! - `GET /` asks the hub for a connect session for its one user (`POST /connect/sessions`
//!   with the management key, `return_to` its own `/connected`) and shows a button to the
//!   session's `connect_url`.
//! - `GET /connected` is where the hub sends the browser back: it shows the outcome
//!   (`status=connected&account_id=&provider=` or `status=error&error=`), starts the new
//!   account's first sync (`POST /sync` with its `user_id`), and lists the user's accounts
//!   (`GET /users?owner=`) with their synced files (`GET /users/{id}/files`).
//!
//! Settings (environment): `DEMO_APP_PORT` (default 9200), `DEMO_APP_URL` (where browsers
//! reach it, default `http://localhost:PORT`), `HUB_URL` (the hub, default
//! `http://127.0.0.1:9000`), `HUB_API_KEY` (required), `DEMO_OWNER` (the app's user id,
//! default `demo-user`). Plain HTML: no JavaScript, nothing fetched from elsewhere.

use std::collections::HashMap;
use std::process::exit;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

/// How often `/connected` reloads itself while an account has not finished its first sync.
const REFRESH_SECONDS: u32 = 3;
/// The most files listed per account.
const FILES_SHOWN: u32 = 100;

struct Demo {
    hub_url: String,
    api_key: String,
    owner: String,
    public_url: String,
    client: reqwest::Client,
}

type Shared = Arc<Demo>;

/// Why a page could not be made: the hub did not answer, or answered with an error.
struct HubProblem(String);

fn setting(name: &str, default: Option<String>) -> String {
    match std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .or(default)
    {
        Some(value) => value,
        None => {
            eprintln!("demo-app: {name} must be set");
            exit(2)
        }
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = match setting("DEMO_APP_PORT", Some("9200".into())).parse() {
        Ok(port) => port,
        Err(_) => {
            eprintln!("demo-app: DEMO_APP_PORT must be a port number");
            exit(2)
        }
    };
    let demo = Demo {
        hub_url: setting("HUB_URL", Some("http://127.0.0.1:9000".into()))
            .trim_end_matches('/')
            .to_string(),
        api_key: setting("HUB_API_KEY", None),
        owner: setting("DEMO_OWNER", Some("demo-user".into())),
        public_url: setting("DEMO_APP_URL", Some(format!("http://localhost:{port}")))
            .trim_end_matches('/')
            .to_string(),
        // The content route answers 302 to the bytes: the app reads where, and sends the
        // browser there, rather than downloading them itself.
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client"),
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("demo-app: cannot listen on 127.0.0.1:{port}: {e}");
            exit(1)
        }
    };
    eprintln!("demo-app: {} (hub {})", demo.public_url, demo.hub_url);
    let app = Router::new()
        .route("/", get(home))
        .route("/connected", get(connected))
        .route("/download", get(download))
        .route("/browse", get(browse))
        .with_state(Arc::new(demo));
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("demo-app: {e}");
        exit(1)
    }
}

impl Demo {
    /// One call to the hub's management API; the JSON answer, or what went wrong.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, HubProblem> {
        let response = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| HubProblem(format!("the hub at {} did not answer: {e}", self.hub_url)))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let code = body["error"].as_str().unwrap_or("no error code");
        let message = body["message"].as_str().unwrap_or("");
        Err(HubProblem(format!(
            "the hub answered {status}: {code}. {message}"
        )))
    }

    async fn new_session(&self) -> Result<String, HubProblem> {
        let body =
            json!({"owner": self.owner, "return_to": format!("{}/connected", self.public_url)});
        let request = self
            .client
            .post(format!("{}/connect/sessions", self.hub_url))
            .json(&body);
        let session = self.call(request).await?;
        match session["connect_url"].as_str() {
            Some(url) => Ok(url.to_string()),
            None => Err(HubProblem("the hub's session has no connect_url".into())),
        }
    }

    async fn start_sync(&self, account_id: &str) -> Result<Value, HubProblem> {
        let request = self
            .client
            .post(format!("{}/sync", self.hub_url))
            .json(&json!({"user_id": account_id}));
        self.call(request).await
    }

    async fn accounts(&self) -> Result<Vec<Value>, HubProblem> {
        let request = self
            .client
            .get(format!("{}/users", self.hub_url))
            .query(&[("owner", self.owner.as_str())]);
        let accounts = self.call(request).await?;
        Ok(accounts.as_array().cloned().unwrap_or_default())
    }

    async fn files(&self, account_id: &str) -> Result<Vec<Value>, HubProblem> {
        // The id as one path segment, percent-encoded: the app does not trust it to be a UUID.
        let mut url = reqwest::Url::parse(&format!("{}/users", self.hub_url))
            .map_err(|e| HubProblem(format!("HUB_URL is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| HubProblem("HUB_URL cannot have a path".into()))?
            .extend([account_id, "files"]);
        let request = self.client.get(url).query(&[("limit", FILES_SHOWN)]);
        let page = self.call(request).await?;
        Ok(page["files"].as_array().cloned().unwrap_or_default())
    }

    /// A query of the account's index (`GET /users/{id}/files` with filters) or of the
    /// provider's own search (`GET /users/{id}/search`): the entries it answers.
    async fn entries(
        &self,
        account_id: &str,
        route: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, HubProblem> {
        let mut url = reqwest::Url::parse(&format!("{}/users", self.hub_url))
            .map_err(|e| HubProblem(format!("HUB_URL is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| HubProblem("HUB_URL cannot have a path".into()))?
            .extend([account_id, route]);
        let page = self.call(self.client.get(url).query(query)).await?;
        Ok(page["files"].as_array().cloned().unwrap_or_default())
    }

    /// Where a file's bytes are: the `Location` of the hub's content route, asked with the
    /// app's key (which never reaches the browser), in `format` when given.
    async fn content_url(
        &self,
        account_id: &str,
        file_id: &str,
        format: Option<&str>,
    ) -> Result<String, HubProblem> {
        let mut url = reqwest::Url::parse(&format!("{}/users", self.hub_url))
            .map_err(|e| HubProblem(format!("HUB_URL is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| HubProblem("HUB_URL cannot have a path".into()))?
            .extend([account_id, "files", file_id, "content"]);
        let mut request = self.client.get(url);
        if let Some(format) = format {
            request = request.query(&[("format", format)]);
        }
        let response = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| HubProblem(format!("the hub at {} did not answer: {e}", self.hub_url)))?;
        if response.status() == StatusCode::FOUND {
            if let Some(location) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
            {
                return Ok(location.to_string());
            }
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(HubProblem(format!(
            "the hub answered {status}: {}. {}",
            body["error"].as_str().unwrap_or("no error code"),
            body["message"].as_str().unwrap_or("")
        )))
    }
}

/// `GET /browse?account=&trail=[&q=]`: one folder of an account, as a file picker shows it
/// (the hub's `parent_id` query: a folder's entries only, whatever the account's size), its
/// folders opening further down and a way back up; or, with `q`, the provider's own search.
/// `trail` is the comma-separated ids of the folders opened from the top, so "up" drops the
/// last one.
async fn browse(
    State(demo): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(account) = query.get("account").filter(|a| !a.is_empty()) else {
        return problem_page("a browse link names an account");
    };
    let trail: Vec<&str> = query
        .get("trail")
        .map(|trail| trail.split(',').filter(|id| !id.is_empty()).collect())
        .unwrap_or_default();
    let search = query.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    let link = |trail: &[&str]| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("account", account)
            .append_pair("trail", &trail.join(","));
        format!("/browse?{}", query.finish())
    };
    let entries = match search {
        Some(q) => demo.entries(account, "search", &[("q", q)]).await,
        None => {
            let folder = trail.last().copied().unwrap_or("root");
            let limit = FILES_SHOWN.to_string();
            demo.entries(
                account,
                "files",
                &[("parent_id", folder), ("limit", limit.as_str())],
            )
            .await
        }
    };
    let mut body = format!(
        "<h1>Browse</h1>\n<form class=\"search\" action=\"/browse\" method=\"get\">\
         <input type=\"hidden\" name=\"account\" value=\"{}\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"Search this drive\" \
         aria-label=\"Search this drive\" maxlength=\"200\"> <button type=\"submit\">Search</button>\
         </form>\n",
        escape(account),
        escape(search.unwrap_or("")),
    );
    body += &match (search, trail.len()) {
        (Some(q), _) => format!(
            "<p class=\"where\">Results for <strong>{}</strong> (the provider's own search). \
             <a class=\"up\" href=\"{}\">Back to the folders</a></p>\n",
            escape(q),
            escape(&link(&trail))
        ),
        (None, 0) => "<p class=\"where\">Top of each drive.</p>\n".to_string(),
        (None, depth) => format!(
            "<p class=\"where\"><a class=\"up\" href=\"{}\">Up</a> · <a class=\"top\" \
             href=\"{}\">Top</a></p>\n",
            escape(&link(&trail[..depth - 1])),
            escape(&link(&[]))
        ),
    };
    match entries {
        Ok(entries) if entries.is_empty() => body += "<p>Nothing here.</p>\n",
        Ok(entries) => {
            body += "<ul class=\"files\">\n";
            for entry in &entries {
                match (entry["kind"].as_str(), entry["id"].as_str()) {
                    (Some("folder"), Some(id)) => {
                        let mut deeper = trail.clone();
                        deeper.push(id);
                        body += &format!(
                            "<li><a class=\"folder\" href=\"{}\">{}</a> \
                             <span class=\"detail\">(folder)</span></li>\n",
                            escape(&link(&deeper)),
                            escape(entry["name"].as_str().unwrap_or(""))
                        );
                    }
                    _ => body += &file_item(account, entry),
                }
            }
            body += "</ul>\n";
        }
        Err(HubProblem(problem)) => {
            body += &format!("<p class=\"outcome error\">{}</p>\n", escape(&problem))
        }
    }
    body += "<p><a href=\"/connected\">All connected drives</a></p>\n";
    page(StatusCode::OK, "Demo app: browse", None, &body)
}

/// `GET /download?account=&file=[&format=]`: sends the browser to the file's bytes.
async fn download(
    State(demo): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (Some(account), Some(file)) = (query.get("account"), query.get("file")) else {
        return problem_page("a download link names an account and a file");
    };
    match demo
        .content_url(account, file, query.get("format").map(String::as_str))
        .await
    {
        Ok(location) => Redirect::to(&location).into_response(),
        Err(HubProblem(problem)) => problem_page(&problem),
    }
}

async fn home(State(demo): State<Shared>) -> Response {
    match demo.new_session().await {
        Ok(connect_url) => page(
            StatusCode::OK,
            "Demo app: connect a drive",
            None,
            &format!(
                "<h1>Connect a drive</h1>\n<p>You are <strong>{owner}</strong> in this demo app. \
                 The button asks the hub for a connect session and takes you to its page, where \
                 you pick a provider.</p>\n<p><a class=\"button\" href=\"{href}\">Connect a \
                 drive</a></p>\n<p><a href=\"/connected\">See your connected drives</a></p>\n",
                owner = escape(&demo.owner),
                href = escape(&connect_url),
            ),
        ),
        Err(HubProblem(problem)) => problem_page(&problem),
    }
}

async fn connected(
    State(demo): State<Shared>,
    Query(outcome): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| outcome.get(name).map(String::as_str);
    let mut body = String::new();
    match field("status") {
        Some("connected") => {
            let provider = field("provider").map_or("your", provider_name);
            body += &format!(
                "<p class=\"outcome ok\" role=\"status\">Your <strong>{}</strong> drive is \
                 connected (account <code class=\"account-id\">{}</code>).</p>\n",
                escape(provider),
                escape(field("account_id").unwrap_or("")),
            );
            // The hub syncs on its schedule; an app that wants the files at once asks.
            if let Some(account_id) = field("account_id") {
                if let Err(HubProblem(problem)) = demo.start_sync(account_id).await {
                    body += &format!(
                        "<p class=\"outcome error\">Its first sync did not start: {}</p>\n",
                        escape(&problem)
                    );
                }
            }
        }
        Some(_) => {
            body += &format!(
                "<p class=\"outcome error\" role=\"alert\">The drive was not connected: \
                 <code class=\"error-code\">{}</code></p>\n",
                escape(field("error").unwrap_or("unknown_error")),
            );
        }
        None => {}
    }
    let accounts = match demo.accounts().await {
        Ok(accounts) => accounts,
        Err(HubProblem(problem)) => return problem_page(&problem),
    };
    body += &format!("<h1>Connected drives of {}</h1>\n", escape(&demo.owner));
    if accounts.is_empty() {
        body += "<p>No drive connected yet.</p>\n";
    }
    let mut syncing = false;
    for account in &accounts {
        let id = account["id"].as_str().unwrap_or("");
        let synced = !account["last_synced_at"].is_null();
        syncing |= !synced;
        body += &format!(
            "<section class=\"account\">\n<h2>{} <span class=\"email\">{}</span></h2>\n",
            escape(provider_name(account["provider"].as_str().unwrap_or(""))),
            escape(account["email"].as_str().unwrap_or("")),
        );
        if !synced {
            body += "<p class=\"note\">Not synced yet.</p>\n";
        }
        // Built apart: the serializer may not be held across an await.
        let browse = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("account", id)
            .finish();
        body += &format!(
            "<p><a class=\"browse\" href=\"/browse?{}\">Browse its folders and search</a></p>\n",
            escape(&browse)
        );
        match demo.files(id).await {
            Ok(files) if files.is_empty() => body += "<p>No files found yet.</p>\n",
            Ok(files) => {
                body += "<ul class=\"files\">\n";
                for file in &files {
                    body += &file_item(id, file);
                }
                body += "</ul>\n";
            }
            Err(HubProblem(problem)) => {
                body += &format!("<p class=\"outcome error\">{}</p>\n", escape(&problem))
            }
        }
        body += "</section>\n";
    }
    body += "<p class=\"note\">Syncing may take a few seconds after a drive is connected. \
             <a href=\"/connected\">Refresh</a></p>\n<p><a class=\"button\" href=\"/\">Connect \
             another drive</a></p>\n";
    // Reloads (without the outcome, so the sync is not asked for again) until every account
    // has synced once.
    let refresh = syncing.then_some(REFRESH_SECONDS);
    page(StatusCode::OK, "Demo app: connected drives", refresh, &body)
}

/// The hub's provider names as people know them.
fn provider_name(provider: &str) -> &str {
    match provider {
        "google" => "Google Drive",
        "onedrive" => "Microsoft OneDrive",
        "dropbox" => "Dropbox",
        "box" => "Box",
        other => other,
    }
}

/// Google's native documents have no bytes of their own: the demo downloads them as PDF.
const EXPORTED_AS_PDF: [&str; 4] = [
    "application/vnd.google-apps.document",
    "application/vnd.google-apps.spreadsheet",
    "application/vnd.google-apps.presentation",
    "application/vnd.google-apps.drawing",
];

fn file_item(account_id: &str, file: &Value) -> String {
    let name = file["path"]
        .as_str()
        .or(file["name"].as_str())
        .unwrap_or("");
    let kind = file["kind"].as_str().unwrap_or("file");
    let detail = match file["size"].as_u64() {
        Some(size) if kind == "file" => format!("{kind}, {}", human_size(size)),
        _ => kind.to_string(),
    };
    let download = match (kind, file["id"].as_str()) {
        ("file", Some(file_id)) => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("account", account_id)
                .append_pair("file", file_id);
            if EXPORTED_AS_PDF.contains(&file["mime_type"].as_str().unwrap_or("")) {
                query.append_pair("format", "pdf");
            }
            format!(
                " <a class=\"download\" href=\"/download?{}\">Download</a>",
                escape(&query.finish())
            )
        }
        _ => String::new(),
    };
    format!(
        "<li><span class=\"file-name\">{}</span> <span class=\"detail\">({})</span>{download}</li>\n",
        escape(name),
        escape(&detail)
    )
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KB", "MB", "GB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

fn problem_page(problem: &str) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "Demo app: the hub is not answering",
        None,
        &format!(
            "<h1>Something went wrong</h1>\n<p class=\"outcome error\" role=\"alert\">{}</p>\n\
             <p><a href=\"/\">Try again</a></p>\n",
            escape(problem)
        ),
    )
}

/// A whole page: system fonts, no script, nothing fetched; `refresh` reloads `/connected`.
fn page(status: StatusCode, title: &str, refresh: Option<u32>, body: &str) -> Response {
    let refresh = refresh
        .map(|s| format!("  <meta http-equiv=\"refresh\" content=\"{s}; url=/connected\">\n"))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{refresh}  \
         <title>{}</title>\n  <style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <p class=\"banner\">Demo app (against the testkit's stand-ins of the providers)</p>\n\
         {body}</main>\n</body>\n</html>\n",
        escape(title)
    );
    let headers = [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    ];
    (status, headers, Html(html)).into_response()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;\
color:#1b1f24}main{max-width:40rem;margin:3rem auto;padding:2rem;background:#fff;\
border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.12)}p.banner{color:#5f6368;\
font-size:.9rem}a.button{display:inline-block;padding:.8rem 1.4rem;background:#1b5fd1;\
color:#fff;border-radius:8px;font-weight:600;text-decoration:none}a:focus{outline:3px solid \
#f0b400;outline-offset:2px}.outcome{padding:.8rem 1rem;border-radius:8px}.ok{background:#e6f4ea}\
.error{background:#fce8e6}section.account{border-top:1px solid #dadce0;margin-top:1.5rem}\
span.email,span.detail,.note{color:#5f6368;font-weight:400}ul.files{padding-left:1.2rem}\
code{background:#eef0f3;padding:.1rem .3rem;border-radius:4px}";

fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}
