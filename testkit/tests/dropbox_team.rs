//! The Dropbox stand-in's team spaces over plain HTTP: `get_current_account`'s `root_info`,
//! listings rooted by `Dropbox-API-Path-Root` (or at the home namespace without it), the
//! header's refusals, and what a change of root does to calls and cursors
//! (<https://www.dropbox.com/developers/reference/path-root-header-modes>).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_DROPBOX_USER};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const USER: &str = DEFAULT_DROPBOX_USER;
const VERIFIER: &str = "a-verifier-of-forty-three-or-more-characters-0123456789";
const REDIRECT: &str = "http://hub.test/auth/callback";

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Consents and redeems the code; returns the access token.
async fn access_token(p: &FakeProviders) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let query = [
        ("response_type", "code"),
        ("client_id", hub_testkit::DROPBOX_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        (
            "scope",
            "account_info.read files.metadata.read files.content.read",
        ),
        ("state", "s"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("token_access_type", "offline"),
    ];
    let answer = client()
        .get(format!("{}/dropbox/oauth2/authorize", p.base_url()))
        .query(&query)
        .send()
        .await
        .unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    let redirect: HashMap<String, String> = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", redirect["code"].as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", hub_testkit::DROPBOX_CLIENT_ID),
        ("client_secret", hub_testkit::DROPBOX_CLIENT_SECRET),
    ];
    let answer = client()
        .post(format!("{}/dropbox/oauth2/token", p.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let tokens: Value = answer.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

/// An RPC call, with the path root header when given; the status and the body (JSON, else
/// the text as a string).
async fn rpc(
    p: &FakeProviders,
    endpoint: &str,
    token: &str,
    path_root: Option<&str>,
    argument: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client()
        .post(format!("{}/dropbox/2/{endpoint}", p.base_url()))
        .bearer_auth(token);
    if let Some(root) = path_root {
        request = request.header("Dropbox-API-Path-Root", root);
    }
    if let Some(argument) = argument {
        request = request.json(&argument);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn root_listing() -> Value {
    json!({"path": "", "recursive": true, "include_deleted": false})
}

fn rooted_at(root: &str) -> String {
    json!({".tag": "root", "root": root}).to_string()
}

/// The listing's entries as (tag, path_display), sorted, and its cursor.
async fn listing(
    p: &FakeProviders,
    token: &str,
    path_root: Option<&str>,
) -> (Vec<(String, String)>, String) {
    let (status, page) = rpc(
        p,
        "files/list_folder",
        token,
        path_root,
        Some(root_listing()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["has_more"], false);
    (pairs(&page), page["cursor"].as_str().unwrap().to_string())
}

fn pairs(page: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[".tag"].as_str().unwrap().into(),
                e["path_display"].as_str().unwrap().into(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn pair(tag: &str, path: &str) -> (String, String) {
    (tag.to_string(), path.to_string())
}

/// A team-space member with a file of their own and a team folder holding a file.
async fn team_member(p: &FakeProviders) -> (String, String) {
    p.add_file("dropbox", USER, FileSpec::new("id:mine", "Mine.txt"));
    let member = p.make_dropbox_team_member(USER, "Acme");
    p.add_file(
        "dropbox",
        USER,
        FileSpec::folder("id:marketing", "Marketing"),
    );
    let mut plan = FileSpec::new("id:plan", "Plan.txt");
    plan.parent = Some("id:marketing".into());
    p.add_file("dropbox", USER, plan);
    let token = access_token(p).await;
    (token, member)
}

#[tokio::test]
async fn a_team_space_member_s_account_names_both_namespaces_and_the_team() {
    let p = FakeProviders::start().await;
    let token = access_token(&p).await;
    let (_, plain) = rpc(&p, "users/get_current_account", &token, None, None).await;
    assert_eq!(plain["root_info"][".tag"], "user");
    assert_eq!(
        plain["root_info"]["root_namespace_id"],
        plain["root_info"]["home_namespace_id"]
    );
    assert!(plain["team"].is_null());

    p.make_dropbox_team_member(USER, "Acme");
    let (status, account) = rpc(&p, "users/get_current_account", &token, None, None).await;
    assert_eq!(status, StatusCode::OK);
    let root_info = &account["root_info"];
    assert_eq!(root_info[".tag"], "team");
    assert_ne!(
        root_info["root_namespace_id"],
        root_info["home_namespace_id"]
    );
    assert_eq!(
        root_info["home_namespace_id"], plain["root_info"]["home_namespace_id"],
        "the home namespace stays the member's"
    );
    assert_eq!(root_info["home_path"], "/Carol Example");
    assert_eq!(
        root_info["root_namespace_id"],
        p.dropbox_root_namespace(USER).as_str()
    );
    assert_eq!(account["team"]["name"], "Acme");
    assert_eq!(account["account_type"][".tag"], "business");
}

#[tokio::test]
async fn without_the_header_a_member_lists_the_member_folder_and_rooted_at_the_team_space_all() {
    let p = FakeProviders::start().await;
    let (token, _) = team_member(&p).await;
    let (home, _) = listing(&p, &token, None).await;
    assert_eq!(
        home,
        [pair("file", "/Mine.txt")],
        "the home namespace only, its own paths"
    );
    let (also_home, _) = listing(&p, &token, Some(r#"{".tag": "home"}"#)).await;
    assert_eq!(also_home, home);

    let root = p.dropbox_root_namespace(USER);
    let (team, _) = listing(&p, &token, Some(&rooted_at(&root))).await;
    assert_eq!(
        team,
        [
            pair("file", "/Carol Example/Mine.txt"),
            pair("file", "/Marketing/Plan.txt"),
            pair("folder", "/Carol Example"),
            pair("folder", "/Marketing"),
        ],
        "paths relative to the team space, the member folder at its top"
    );
    let by_namespace = json!({".tag": "namespace_id", "namespace_id": root}).to_string();
    let (same, _) = listing(&p, &token, Some(&by_namespace)).await;
    assert_eq!(same, team);
}

#[tokio::test]
async fn the_path_root_header_is_checked_as_dropbox_documents() {
    let p = FakeProviders::start().await;
    let (token, _) = team_member(&p).await;
    let root = p.dropbox_root_namespace(USER);
    for malformed in [
        "not json",
        r#"{"root": "1"}"#,
        r#"{".tag": "root"}"#,
        r#"{".tag": "root", "root": "a b"}"#,
        r#"{".tag": "root", "root": 12}"#,
        r#"{".tag": "team", "team": "1"}"#,
        r#""root""#,
    ] {
        let (status, body) = rpc(
            &p,
            "files/list_folder",
            &token,
            Some(malformed),
            Some(root_listing()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}: {body}");
        assert!(
            body.as_str().unwrap().contains("Dropbox-API-Path-Root"),
            "{body}"
        );
    }
    let (status, body) = rpc(
        &p,
        "files/list_folder",
        &token,
        Some(&rooted_at("12345")),
        Some(root_listing()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"][".tag"], "invalid_root");
    assert_eq!(
        body["error"]["invalid_root"]["root_namespace_id"],
        root.as_str()
    );
    assert!(body["error_summary"]
        .as_str()
        .unwrap()
        .starts_with("invalid_root/"));

    let other = json!({".tag": "namespace_id", "namespace_id": "12345"}).to_string();
    let (status, body) = rpc(
        &p,
        "files/list_folder",
        &token,
        Some(&other),
        Some(root_listing()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], json!({".tag": "no_permission"}));
}

#[tokio::test]
async fn a_cursor_keeps_its_root_and_a_changed_root_is_422_with_the_header_and_reset_without() {
    let p = FakeProviders::start().await;
    let (token, member) = team_member(&p).await;
    let old_root = p.dropbox_root_namespace(USER);
    let (_, team_cursor) = listing(&p, &token, Some(&rooted_at(&old_root))).await;
    let (_, home_cursor) = listing(&p, &token, None).await;
    let mut report = FileSpec::new("id:report", "Report.txt");
    report.parent = Some(member);
    p.add_file("dropbox", USER, report);

    // The cursor remembers its root: `continue` needs no header.
    let continued = |cursor: &str| Some(json!({"cursor": cursor}));
    let (status, page) = rpc(
        &p,
        "files/list_folder/continue",
        &token,
        None,
        continued(&team_cursor),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(pairs(&page), [pair("file", "/Carol Example/Report.txt")]);
    let (status, page) = rpc(
        &p,
        "files/list_folder/continue",
        &token,
        Some(&rooted_at(&old_root)),
        continued(&team_cursor),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");

    p.move_dropbox_team_root(USER);
    let new_root = p.dropbox_root_namespace(USER);
    assert_ne!(new_root, old_root);
    let (status, body) = rpc(
        &p,
        "files/list_folder/continue",
        &token,
        Some(&rooted_at(&old_root)),
        continued(&team_cursor),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["invalid_root"]["root_namespace_id"],
        new_root.as_str()
    );
    let (status, body) = rpc(
        &p,
        "files/list_folder/continue",
        &token,
        None,
        continued(&team_cursor),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a cursor of a root the user left: {body}"
    );
    assert_eq!(body["error"][".tag"], "reset");

    // The home namespace did not move: its cursor goes on, with the same paths.
    let (status, page) = rpc(
        &p,
        "files/list_folder/continue",
        &token,
        None,
        continued(&home_cursor),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(pairs(&page), [pair("file", "/Report.txt")]);

    // Leaving the team space: root and home are one again, the team folders gone.
    p.leave_dropbox_team(USER);
    let (_, account) = rpc(&p, "users/get_current_account", &token, None, None).await;
    assert_eq!(account["root_info"][".tag"], "user");
    let (status, body) = rpc(
        &p,
        "files/list_folder",
        &token,
        Some(&rooted_at(&new_root)),
        Some(root_listing()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["invalid_root"][".tag"], "user");
    let (all, _) = listing(&p, &token, None).await;
    assert_eq!(
        all,
        [pair("file", "/Mine.txt"), pair("file", "/Report.txt")]
    );
}
