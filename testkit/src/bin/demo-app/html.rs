//! The demo app's pages: the frame, the problem and "hub starting" pages, and the pieces
//! every page shows (a file's line, sizes, provider names). Plain HTML: no script, nothing
//! fetched from elsewhere.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::hub::HubProblem;

/// How often a page that waits for something (a first sync, the hub, a change) reloads.
pub const REFRESH_SECONDS: u32 = 3;

/// The hub's provider names as people know them.
pub fn provider_name(provider: &str) -> &str {
    match provider {
        "google" => "Google Drive",
        "onedrive" => "Microsoft OneDrive",
        "dropbox" => "Dropbox",
        "box" => "Box",
        other => other,
    }
}

/// How a person knows an account: its provider and email (never its id).
pub fn account_label(account: &Value) -> String {
    let provider = provider_name(account["provider"].as_str().unwrap_or(""));
    match account["email"].as_str().filter(|email| !email.is_empty()) {
        Some(email) => format!("{provider} ({email})"),
        None => provider.to_string(),
    }
}

/// Google's native documents have no bytes of their own: the demo downloads them as PDF.
const EXPORTED_AS_PDF: [&str; 4] = [
    "application/vnd.google-apps.document",
    "application/vnd.google-apps.spreadsheet",
    "application/vnd.google-apps.presentation",
    "application/vnd.google-apps.drawing",
];

/// A file's line: its name, kind and size, when it last changed, a Download link and its
/// link at the provider. `actions` goes at its end (the change buttons).
pub fn file_item(account_id: &str, file: &Value, actions: &str) -> String {
    let name = file["path"]
        .as_str()
        .or(file["name"].as_str())
        .unwrap_or("");
    let kind = file["kind"].as_str().unwrap_or("file");
    let mut detail = match file["size"].as_u64() {
        Some(size) if kind == "file" => format!("{kind}, {}", human_size(size)),
        _ => kind.to_string(),
    };
    if let Some(modified) = file["modified_at"].as_str().and_then(readable_time) {
        detail += &format!(", modified {modified}");
    }
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
    let link = match file["web_url"].as_str() {
        Some(web_url) if web_url.starts_with("https://") || web_url.starts_with("http://") => {
            format!(
                " <a class=\"web\" href=\"{}\" rel=\"noreferrer\">Open at the provider</a>",
                escape(web_url)
            )
        }
        _ => String::new(),
    };
    format!(
        "<li><span class=\"file-name\">{}</span> <span class=\"detail\">({})</span>{download}{link}{actions}</li>\n",
        escape(name),
        escape(&detail)
    )
}

/// An RFC 3339 time as `2025-09-04 16:30 UTC`.
pub fn readable_time(rfc3339: &str) -> Option<String> {
    let time = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some(
        time.with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
    )
}

pub fn human_size(bytes: u64) -> String {
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

/// The page of a request the hub could not serve: while the hub is not listening yet (it
/// builds its functions first, which takes minutes on a first run), a page that says so and
/// reloads `path` until it is; otherwise what the hub answered.
pub fn problem_page(problem: HubProblem, path: &str) -> Response {
    match problem {
        HubProblem::Unreachable(hub_url) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Demo app: the hub is starting",
            Some((REFRESH_SECONDS, path)),
            &format!(
                "<h1>The hub is starting</h1>\n<p class=\"outcome note\" role=\"status\">The \
                 hub at <code>{}</code> is not answering yet: on a first run it builds its \
                 functions first, which takes a few minutes (<code>scripts/dev</code> prints \
                 the demo's URL once it is up). This page reloads by itself every \
                 {REFRESH_SECONDS} seconds.</p>\n<p><a href=\"{}\">Reload now</a></p>\n",
                escape(&hub_url),
                escape(path)
            ),
        ),
        HubProblem::Answered(problem) => page(
            StatusCode::BAD_GATEWAY,
            "Demo app: something went wrong",
            None,
            &format!(
                "<h1>Something went wrong</h1>\n<p class=\"outcome error\" role=\"alert\">{}</p>\n\
                 <p><a href=\"/\">Try again</a></p>\n",
                escape(&problem)
            ),
        ),
    }
}

/// A whole page: system fonts, no script, nothing fetched; `refresh` reloads the given path
/// after so many seconds.
pub fn page(status: StatusCode, title: &str, refresh: Option<(u32, &str)>, body: &str) -> Response {
    let refresh = refresh
        .map(|(seconds, path)| {
            format!(
                "  <meta http-equiv=\"refresh\" content=\"{seconds}; url={}\">\n",
                escape(path)
            )
        })
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
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    ];
    (status, headers, Html(html)).into_response()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;\
color:#1b1f24}main{max-width:46rem;margin:3rem auto;padding:2rem;background:#fff;\
border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.12)}p.banner{color:#5f6368;\
font-size:.9rem}a.button,button.primary{display:inline-block;padding:.8rem 1.4rem;\
background:#1b5fd1;color:#fff;border:0;border-radius:8px;font-weight:600;\
text-decoration:none;font-size:1rem}a:focus,button:focus{outline:3px solid #f0b400;\
outline-offset:2px}.outcome{padding:.8rem 1rem;border-radius:8px}.ok{background:#e6f4ea}\
.error{background:#fce8e6}section.account{border-top:1px solid #dadce0;margin-top:1.5rem}\
span.email,span.detail,.note{color:#5f6368;font-weight:400}ul.files{padding-left:1.2rem}\
ul.files li{margin:.3rem 0}form.inline{display:inline;margin-left:.4rem}\
code{background:#eef0f3;padding:.1rem .3rem;border-radius:4px}";

pub fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}
