//! The Box stand-in over plain HTTP, the way the hub talks to Box: OAuth 2.0 with rotating
//! single-use refresh tokens, `/users/me`, folder listings with markers and `fields`, the
//! user's `changes` event stream, item reads, revocation and Box's error shapes.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hub_testkit::{
    BoxChange, BoxKind, FakeProviders, BOX_CLIENT_ID, BOX_CLIENT_SECRET, BOX_ROOT_ID,
    DEFAULT_BOX_EMAIL, DEFAULT_BOX_USER,
};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

const VERIFIER: &str = "a-verifier-of-forty-three-or-more-characters-0123456789";
const REDIRECT: &str = "http://hub.test/auth/box/callback";
const USER: &str = DEFAULT_BOX_USER;

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token_call(p: &FakeProviders, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let answer = client()
        .post(format!("{}/box/oauth2/token", p.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap())
}

/// Consents and exchanges the code; the token answer.
async fn log_in(p: &FakeProviders) -> Value {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let answer = client()
        .get(format!("{}/box/api/oauth2/authorize", p.base_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", BOX_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "root_readonly"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    let (status, tokens) = token_call(
        p,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", BOX_CLIENT_ID),
            ("client_secret", BOX_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn refresh(p: &FakeProviders, token: &str) -> (StatusCode, Value) {
    token_call(
        p,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", BOX_CLIENT_ID),
            ("client_secret", BOX_CLIENT_SECRET),
        ],
    )
    .await
}

async fn get(p: &FakeProviders, path: &str, token: &str) -> (StatusCode, Value) {
    let answer = client()
        .get(format!("{}/box/2.0{path}", p.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn text(value: &Value) -> String {
    value.as_str().unwrap().to_string()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_each_works_once_and_revoking_ends_the_pair() {
    let p = FakeProviders::start().await;
    let tokens = log_in(&p).await;
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["restricted_to"], serde_json::json!([]));
    assert!(
        tokens.get("scope").is_none(),
        "Box's answer has no scope: {tokens}"
    );
    let first = text(&tokens["refresh_token"]);

    let (status, renewed) = refresh(&p, &first).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let second = text(&renewed["refresh_token"]);
    assert_ne!(first, second, "a new refresh token at every refresh");
    let (status, error) = refresh(&p, &first).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the old one works once only"
    );

    let access = text(&renewed["access_token"]);
    let (status, me) = get(&p, "/users/me", &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["type"].as_str(), me["id"].as_str()),
        (Some("user"), Some(USER))
    );
    assert_eq!(me["login"], DEFAULT_BOX_EMAIL);
    let (_, selected) = get(&p, "/users/me?fields=login", &access).await;
    assert_eq!(
        selected,
        serde_json::json!({"type": "user", "id": USER, "login": DEFAULT_BOX_EMAIL}),
        "only what `fields` names, besides type and id"
    );

    let revoke = |form: Vec<(&'static str, String)>| {
        let url = format!("{}/box/oauth2/revoke", p.base_url());
        async move {
            client()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let without_client = vec![("token", second.clone())];
    assert_eq!(revoke(without_client).await, StatusCode::BAD_REQUEST);
    let form = vec![
        ("client_id", BOX_CLIENT_ID.to_string()),
        ("client_secret", BOX_CLIENT_SECRET.to_string()),
        ("token", second.clone()),
    ];
    assert_eq!(revoke(form).await, StatusCode::OK);
    let answer = client()
        .get(format!("{}/box/2.0/users/me", p.base_url()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(answer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(refresh(&p, &second).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn folders_list_by_marker_with_only_the_fields_asked_and_ids_collide() {
    let p = FakeProviders::start().await;
    let token = text(&log_in(&p).await["access_token"]);
    let folder = p.box_add_folder(USER, "Docs", BOX_ROOT_ID);
    let file = p.box_add_file(USER, "a.txt", BOX_ROOT_ID);
    let inner = p.box_add_file(USER, "b.txt", &folder);
    assert_eq!(folder, file, "files and folders are numbered apart");
    assert_ne!(inner, file);

    let fields = "name,parent,path_collection,size,sha1,modified_at,item_status";
    let (status, first) = get(
        &p,
        &format!("/folders/0/items?usemarker=true&limit=1&fields={fields}"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["entries"][0]["type"], "folder", "folders first");
    assert_eq!(first["entries"][0]["name"], "Docs");
    assert!(first["entries"][0].get("sha1").is_none());
    let marker = text(&first["next_marker"]);
    let (_, second) = get(
        &p,
        &format!("/folders/0/items?usemarker=true&limit=1&marker={marker}&fields={fields}"),
        &token,
    )
    .await;
    let entry = &second["entries"][0];
    assert_eq!(
        (entry["type"].as_str(), entry["id"].as_str()),
        (Some("file"), Some(file.as_str()))
    );
    assert_eq!(text(&entry["sha1"]).len(), 40);
    assert_eq!(entry["path_collection"]["entries"][0]["name"], "All Files");
    assert_eq!(
        second["next_marker"],
        Value::Null,
        "the last page has no marker"
    );

    let (_, bare) = get(&p, "/folders/0/items?usemarker=true&fields=name", &token).await;
    assert!(
        bare["entries"][0].get("size").is_none(),
        "only what `fields` names"
    );
    assert_eq!(
        get(&p, "/folders/0/items?limit=1001", &token).await.0,
        StatusCode::BAD_REQUEST
    );

    let (_, inside) = get(
        &p,
        &format!("/folders/{folder}/items?fields={fields}"),
        &token,
    )
    .await;
    let names: Vec<&str> = inside["entries"][0]["path_collection"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["All Files", "Docs"]);
}

#[tokio::test]
async fn events_start_now_repeat_and_trashed_items_cannot_be_opened() {
    let p = FakeProviders::start().await;
    let token = text(&log_in(&p).await["access_token"]);
    let folder = p.box_add_folder(USER, "Docs", BOX_ROOT_ID);
    let file = p.box_add_file(USER, "a.txt", &folder);

    let (status, now) = get(
        &p,
        "/events?stream_type=changes&stream_position=now",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(now["entries"], serde_json::json!([]));
    let position = now["next_stream_position"].as_u64().unwrap();

    p.box_change(
        USER,
        BoxKind::File,
        &file,
        BoxChange::Rename("b.txt".into()),
    );
    p.box_change(USER, BoxKind::Folder, &folder, BoxChange::Trash);
    let path = format!("/events?stream_type=changes&stream_position={position}&limit=500");
    let (_, page) = get(&p, &path, &token).await;
    let types: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ITEM_RENAME", "ITEM_TRASH"]);
    assert_eq!(page["chunk_size"], 2);
    assert_eq!(page["entries"][1]["source"]["item_status"], "trashed");
    let next = page["next_stream_position"].as_u64().unwrap();
    assert_eq!(next, position + 2);
    let (_, empty) = get(
        &p,
        &format!("/events?stream_type=changes&stream_position={next}"),
        &token,
    )
    .await;
    assert_eq!(
        (
            empty["chunk_size"].as_u64(),
            empty["next_stream_position"].as_u64()
        ),
        (Some(0), Some(next))
    );

    p.box_repeat_events(USER, true);
    let (_, repeated) = get(&p, &path, &token).await;
    let ids: Vec<&str> = repeated["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(
        (ids[0], ids[1]),
        (ids[3], ids[2]),
        "each event again, out of order"
    );

    let (status, trashed) = get(&p, &format!("/folders/{folder}"), &token).await;
    assert_eq!(
        (status, trashed["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("trashed"))
    );
    assert_eq!(trashed["type"], "error");
    let (status, under) = get(&p, &format!("/files/{file}?fields=name"), &token).await;
    assert_eq!(
        (status, under["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(
        get(&p, "/events?stream_type=bogus", &token).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&p, "/events?stream_position=12", &token).await.0,
        StatusCode::BAD_REQUEST,
        "a position Box never gave"
    );

    p.box_change(USER, BoxKind::Folder, &folder, BoxChange::Restore);
    let (status, restored) = get(
        &p,
        &format!("/files/{file}?fields=name,item_status"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (restored["name"].as_str(), restored["item_status"].as_str()),
        (Some("b.txt"), Some("active"))
    );
    assert_eq!(
        p.box_items(USER),
        vec![
            (BoxKind::Folder, folder.clone(), "/Docs".to_string()),
            (BoxKind::File, file.clone(), "/Docs/b.txt".to_string()),
        ]
    );
}

#[tokio::test]
async fn rate_limits_answer_in_box_shape_with_retry_after() {
    let p = FakeProviders::start().await;
    let token = text(&log_in(&p).await["access_token"]);
    p.fail_next("/box/2.0/events", 429, Some("7"), 1);
    let answer = client()
        .get(format!(
            "{}/box/2.0/events?stream_position=now",
            p.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.headers()["retry-after"], "7");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["status"].as_u64()),
        (Some("error"), Some(429))
    );
    assert_eq!(body["code"], "rate_limit_exceeded");
    assert_eq!(
        get(&p, "/events?stream_position=now", &token).await.0,
        StatusCode::OK
    );
}
