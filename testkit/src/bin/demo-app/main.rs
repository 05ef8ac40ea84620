//! A small app that embeds the hub, for the click-through demo (`scripts/dev` starts it when
//! no OAuth client is configured): it does what an app's backend does with connect sessions,
//! the change feed and events.
//!
//! - `GET /` asks the hub for a connect session for its one user (`POST /connect/sessions`
//!   with the management key, `return_to` its own `/connected`) and shows a button to the
//!   session's `connect_url`.
//! - `GET /connected` is where the hub sends the browser back: it shows the outcome
//!   (`status=connected&account_id=&provider=` or `status=error&error=`), starts the new
//!   account's first sync (`POST /sync` with its `user_id`), and lists the user's accounts
//!   (`GET /users?owner=`) with their synced files (`GET /users/{id}/files`), each account
//!   with a Disconnect button (`DELETE /users/{id}`) and buttons that change a file at the
//!   stand-in; accounts connected without a session (a direct login) are listed apart.
//! - `GET /feed?account=` shows the account's change feed, read on from the app's saved
//!   cursor, and the events the hub sent to `POST /events` (signatures checked).
//! - `GET /browse` and `GET /download`: a file picker and downloads (`browse.rs`).
//!
//! Before the hub listens (it builds its functions first) every page says so and reloads.
//!
//! Settings (environment): `DEMO_APP_PORT` (default 9200), `DEMO_APP_URL` (where browsers
//! reach it, default `http://localhost:PORT`), `HUB_URL` (the hub, default
//! `http://127.0.0.1:9000`), `HUB_API_KEY` (required), `DEMO_OWNER` (the app's user id,
//! default `demo-user`), `HUB_WEBHOOK_SECRET` (the hub's, to check events; without it the
//! app takes no events), `DEMO_STANDINS_CONTROL_URL` (the stand-ins' demo controls; without
//! it no change buttons). Plain HTML: no JavaScript, nothing fetched from elsewhere.

mod browse;
mod feed;
mod html;
mod hub;

use std::collections::HashMap;
use std::process::exit;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::Value;

use html::{account_label, escape, file_item, page, problem_page, provider_name, REFRESH_SECONDS};
use hub::HubProblem;

pub struct Demo {
    hub_url: String,
    api_key: String,
    owner: String,
    public_url: String,
    client: reqwest::Client,
    /// The stand-ins' demo controls (`hub_testkit::demo_control`), when given.
    control_url: Option<String>,
    /// The key of `HUB_WEBHOOK_SECRET` (the bytes after `whsec_`), when given.
    webhook_key: Option<Vec<u8>>,
    seen: Mutex<feed::Seen>,
}

type Shared = Arc<Demo>;

fn setting(name: &str, default: Option<String>) -> String {
    match optional(name).or(default) {
        Some(value) => value,
        None => {
            eprintln!("demo-app: {name} must be set");
            exit(2)
        }
    }
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
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
    let webhook_key = optional("HUB_WEBHOOK_SECRET").map(|secret| {
        let key = secret.strip_prefix("whsec_").and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        });
        key.unwrap_or_else(|| {
            eprintln!("demo-app: HUB_WEBHOOK_SECRET must be whsec_ and base64");
            exit(2)
        })
    });
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
        control_url: optional("DEMO_STANDINS_CONTROL_URL")
            .map(|url| url.trim_end_matches('/').to_string()),
        webhook_key,
        seen: Mutex::default(),
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
        .route("/disconnect", post(disconnect))
        .route("/feed", get(feed::feed))
        .route("/change", post(feed::change))
        .route("/events", post(feed::receive_event))
        .route("/download", get(browse::download))
        .route("/browse", get(browse::browse))
        .with_state(Arc::new(demo));
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("demo-app: {e}");
        exit(1)
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
        Err(problem) => problem_page(problem, "/"),
    }
}

/// The outcome the hub brought the browser back with, as a person reads it.
async fn outcome(demo: &Demo, field: impl Fn(&str) -> Option<String>) -> String {
    match field("status").as_deref() {
        Some("connected") => {
            let Some(account_id) = field("account_id") else {
                return String::new();
            };
            let label = match demo.account(&account_id).await {
                Ok(account) => account_label(&account),
                Err(_) => provider_name(&field("provider").unwrap_or_default()).to_string(),
            };
            let mut said = format!(
                "<p class=\"outcome ok\" role=\"status\">Your <strong>{}</strong> drive is \
                 connected.</p>\n",
                escape(&label)
            );
            // The hub syncs on its schedule; an app that wants the files at once asks.
            if let Err(HubProblem::Answered(problem)) = demo.start_sync(&account_id).await {
                said += &format!(
                    "<p class=\"outcome error\">Its first sync did not start: {}</p>\n",
                    escape(&problem)
                );
            }
            said
        }
        Some(_) => {
            let code = field("error").unwrap_or_else(|| "unknown_error".into());
            let what = match code.as_str() {
                "authorization_denied" => {
                    "You did not allow access (or cancelled), so nothing was connected."
                }
                "scope_not_granted" => {
                    "Some permissions were left out, so nothing was connected: allow them all."
                }
                _ => "The drive was not connected.",
            };
            format!(
                "<p class=\"outcome error\" role=\"alert\">{what} <a class=\"try-again\" \
                 href=\"/\">Try again</a> <span class=\"detail\">(error code <code \
                 class=\"error-code\">{}</code>)</span></p>\n",
                escape(&code)
            )
        }
        None => match field("disconnected") {
            Some(label) => format!(
                "<p class=\"outcome ok\" role=\"status\">{} is disconnected: the hub revoked \
                 its access and forgot its files.</p>\n",
                escape(&label)
            ),
            None => String::new(),
        },
    }
}

async fn connected(
    State(demo): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).cloned();
    let mut body = outcome(&demo, field).await;
    let accounts = match demo.accounts().await {
        Ok(accounts) => accounts,
        Err(problem) => return problem_page(problem, "/connected"),
    };
    body += &format!("<h1>Connected drives of {}</h1>\n", escape(&demo.owner));
    if accounts.is_empty() {
        body += "<p>No drive connected yet.</p>\n";
    }
    let mut syncing = false;
    for account in &accounts {
        let (section, waiting) = account_section(&demo, account, true).await;
        body += &section;
        syncing |= waiting;
    }
    body += "<p><a class=\"button\" href=\"/\">Connect another drive</a></p>\n";
    if let Ok(ownerless) = demo.ownerless_accounts().await {
        if !ownerless.is_empty() {
            body += "<h2>Connected without a connect session</h2>\n<p class=\"note\">These \
                     came from a direct <code>/auth/{provider}/login</code>: no app user owns \
                     them (<code>\"owner\": null</code>), so an app's users do not see them.</p>\n";
            for account in &ownerless {
                body += &account_section(&demo, account, false).await.0;
            }
        }
    }
    // Reloads (without the outcome, so the sync is not asked for again) until every account
    // has synced once.
    let refresh = syncing.then_some((REFRESH_SECONDS, "/connected"));
    page(StatusCode::OK, "Demo app: connected drives", refresh, &body)
}

/// One account's section: its label, links, Disconnect, and its files with the buttons
/// that change them at the stand-in (`changes`); whether it waits for its first sync.
async fn account_section(demo: &Demo, account: &Value, changes: bool) -> (String, bool) {
    let id = account["id"].as_str().unwrap_or("");
    let provider = account["provider"].as_str().unwrap_or("");
    let label = account_label(account);
    let query = |pairs: &[(&str, &str)]| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        query.finish()
    };
    let mut body = format!(
        "<section class=\"account\">\n<h2>{} <span class=\"email\">{}</span></h2>\n<p><a \
         class=\"browse\" href=\"/browse?{}\">Browse its folders and search</a> · <a \
         class=\"feed\" href=\"/feed?{}\">Its changes and events</a></p>\n\
         <form class=\"disconnect\" method=\"post\" action=\"/disconnect\"><input \
         type=\"hidden\" name=\"account\" value=\"{}\"><input type=\"hidden\" name=\"label\" \
         value=\"{}\"><button type=\"submit\">Disconnect</button></form>\n",
        escape(provider_name(provider)),
        escape(account["email"].as_str().unwrap_or("")),
        escape(&query(&[("account", id)])),
        escape(&query(&[("account", id)])),
        escape(id),
        escape(&label),
    );
    let form = |action: &str, file: &Value, label: &str| {
        format!(
            "<form class=\"inline {action}\" method=\"post\" action=\"/change\"><input \
             type=\"hidden\" name=\"account\" value=\"{}\"><input type=\"hidden\" \
             name=\"provider\" value=\"{}\"><input type=\"hidden\" name=\"action\" \
             value=\"{action}\"><input type=\"hidden\" name=\"file\" value=\"{}\"><input \
             type=\"hidden\" name=\"name\" value=\"{}\"><button type=\"submit\">{label}</button>\
             </form>",
            escape(id),
            escape(provider),
            escape(file["id"].as_str().unwrap_or("")),
            escape(file["name"].as_str().unwrap_or("")),
        )
    };
    let can_change = changes && demo.control_url.is_some();
    if can_change {
        body += &format!(
            "<div class=\"note\">Change a file as its owner would at {}, then watch the \
             change reach the hub's feed and the app's events: {}</div>\n",
            escape(provider_name(provider)),
            form("add", &Value::Null, "Add a file"),
        );
    }
    let synced = !account["last_synced_at"].is_null();
    match demo.files(id).await {
        Ok(files) if files.is_empty() && !synced => {
            body += "<p class=\"note\">Syncing: its files show here in a few seconds.</p>\n";
        }
        Ok(files) if files.is_empty() => body += "<p>No files in this drive.</p>\n",
        Ok(files) => {
            body += "<ul class=\"files\">\n";
            for file in &files {
                let actions = if can_change && file["kind"] == "file" {
                    form("rename", file, "Rename") + &form("delete", file, "Delete")
                } else {
                    String::new()
                };
                body += &file_item(id, file, &actions);
            }
            body += "</ul>\n";
        }
        Err(HubProblem::Answered(problem)) | Err(HubProblem::Unreachable(problem)) => {
            body += &format!("<p class=\"outcome error\">{}</p>\n", escape(&problem))
        }
    }
    body += "</section>\n";
    (body, !synced)
}

/// `POST /disconnect` (a form: `account`, `label`): `DELETE /users/{id}`, then the list.
async fn disconnect(State(demo): State<Shared>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(account_id) = form.get("account").filter(|id| !id.is_empty()) else {
        return problem_page(
            HubProblem::Answered("a disconnect names an account".into()),
            "/connected",
        );
    };
    match demo.disconnect(account_id).await {
        Ok(()) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(
                    "disconnected",
                    form.get("label").map_or("The drive", String::as_str),
                )
                .finish();
            Redirect::to(&format!("/connected?{query}")).into_response()
        }
        Err(problem) => problem_page(problem, "/connected"),
    }
}
