//! The connectors against wiremock stand-ins that answer as Google's, Microsoft's and
//! Dropbox's public protocols do: form-encoded token requests with PKCE, Drive `fields`
//! partial responses and page tokens, Graph delta links, Dropbox RPC listings with cursors and
//! deletions by path, 401, 409, 410, 429 with `Retry-After`, `invalid_grant`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use hub::config::{Config, Env};
use hub::model::{ContentHash, DriveInfo, DriveKind, DriveReport, FileKind, PathRemoval, TokenSet};
use hub::providers::http::{ProviderHttp, RetryPolicy};
use hub::providers::{Connector, NextPage, Registry, RemovedPath};
use hub::ProviderError;
use oauth2::PkceCodeChallenge;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    }
}

fn registry(server: &MockServer) -> Registry {
    registry_with(server, &[])
}

/// The registry with `extra` variables on top of the usual ones.
fn registry_with(server: &MockServer, extra: &[(&str, &str)]) -> Registry {
    let base = server.uri();
    let mut vars = vec![
        ("HUB_PUBLIC_URL", "https://hub.example".to_string()),
        ("GOOGLE_CLIENT_ID", "g-id".into()),
        ("GOOGLE_CLIENT_SECRET", "g-secret".into()),
        ("GOOGLE_AUTH_URL", format!("{base}/o/oauth2/v2/auth")),
        ("GOOGLE_TOKEN_URL", format!("{base}/token")),
        ("GOOGLE_REVOKE_URL", format!("{base}/revoke")),
        ("GOOGLE_API_URL", base.clone()),
        ("ONEDRIVE_CLIENT_ID", "m-id".into()),
        ("ONEDRIVE_CLIENT_SECRET", "m-secret".into()),
        ("ONEDRIVE_TENANT", "consumers".into()),
        ("ONEDRIVE_AUTHORITY_URL", base.clone()),
        ("ONEDRIVE_GRAPH_URL", format!("{base}/v1.0")),
        ("DROPBOX_CLIENT_ID", "d-key".into()),
        ("DROPBOX_CLIENT_SECRET", "d-secret".into()),
        ("DROPBOX_AUTH_URL", format!("{base}/oauth2/authorize")),
        ("DROPBOX_TOKEN_URL", format!("{base}/oauth2/token")),
        ("DROPBOX_API_URL", format!("{base}/dbx")),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env = Env::from_map(vars);
    let config = Config::from_env(&env).unwrap();
    Registry::from_env(&env, &config, &ProviderHttp::new(fast_retries()).unwrap()).unwrap()
}

fn google(server: &MockServer) -> Arc<dyn Connector> {
    registry(server).get("google").unwrap()
}

fn onedrive(server: &MockServer) -> Arc<dyn Connector> {
    registry(server).get("onedrive").unwrap()
}

fn dropbox(server: &MockServer) -> Arc<dyn Connector> {
    registry(server).get("dropbox").unwrap()
}

fn token(value: &str) -> SecretString {
    SecretString::from(value.to_string())
}

fn tokens(access: &str, refresh: Option<&str>) -> TokenSet {
    TokenSet {
        access_token: token(access),
        refresh_token: refresh.map(token),
        expires_at: None,
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn form_of(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The parameters every consent URL carries (an authorization code request for the client,
/// the hub's callback, the state, the PKCE S256 challenge) checked; the whole query returned
/// for the provider's own parameters.
fn consent_query(
    url: &str,
    endpoint: &str,
    client_id: &str,
    provider: &str,
    state: &str,
    challenge: &PkceCodeChallenge,
) -> HashMap<String, String> {
    assert!(url.starts_with(&format!("{endpoint}?")), "{url}");
    let q = query_of(url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], client_id);
    assert_eq!(
        q["redirect_uri"],
        format!("https://hub.example/auth/{provider}/callback")
    );
    assert_eq!(q["state"], state);
    assert_eq!(q["code_challenge"], challenge.as_str());
    assert_eq!(q["code_challenge_method"], "S256");
    q
}

// ---------------------------------------------------------------- OAuth2

#[tokio::test]
async fn google_consent_url_carries_pkce_offline_and_consent() {
    let server = MockServer::start().await;
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let url = google(&server)
        .oauth()
        .authorization_url("state-1", challenge.clone());
    let q = consent_query(
        &url,
        &format!("{}/o/oauth2/v2/auth", server.uri()),
        "g-id",
        "google",
        "state-1",
        &challenge,
    );
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(scopes.contains(&"openid") && scopes.contains(&"email"));
    assert!(scopes.contains(&"https://www.googleapis.com/auth/drive.readonly"));
    assert!(
        !scopes
            .iter()
            .any(|s| s.ends_with("drive.metadata.readonly")),
        "drive.readonly replaces the metadata scope"
    );
}

#[tokio::test]
async fn microsoft_consent_url_names_the_tenant_and_offline_access() {
    let server = MockServer::start().await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let url = onedrive(&server)
        .oauth()
        .authorization_url("s", challenge.clone());
    let q = consent_query(
        &url,
        &format!("{}/consumers/oauth2/v2.0/authorize", server.uri()),
        "m-id",
        "onedrive",
        "s",
        &challenge,
    );
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert_eq!(
        scopes,
        [
            "offline_access",
            "Files.Read.All",
            "User.Read",
            "Sites.Read.All"
        ],
        "by default the libraries of followed sites are synced too"
    );
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let url = registry_with(&server, &[("ONEDRIVE_SITES", "none")])
        .get("onedrive")
        .unwrap()
        .oauth()
        .authorization_url("s", challenge.clone());
    let q = consent_query(
        &url,
        &format!("{}/consumers/oauth2/v2.0/authorize", server.uri()),
        "m-id",
        "onedrive",
        "s",
        &challenge,
    );
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert_eq!(scopes, ["offline_access", "Files.Read.All", "User.Read"]);
}

#[tokio::test]
async fn code_exchange_is_a_form_post_with_the_pkce_verifier() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.access", "expires_in": 3599, "refresh_token": "1//refresh",
            "scope": "openid email", "token_type": "Bearer", "id_token": "x.y.z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let connector = google(&server);
    let url = connector.oauth().authorization_url("st", challenge);
    let got = connector
        .oauth()
        .exchange_code("4/code with space", verifier.secret())
        .await
        .unwrap()
        .tokens;
    assert_eq!(got.access_token.expose_secret(), "ya29.access");
    assert_eq!(got.refresh_token.unwrap().expose_secret(), "1//refresh");
    assert!(got.expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(59));

    let request = &server.received_requests().await.unwrap()[0];
    let form = form_of(&request.body);
    assert_eq!(form["code"], "4/code with space");
    assert_eq!(
        form["redirect_uri"],
        "https://hub.example/auth/google/callback"
    );
    assert_eq!(form["client_id"], "g-id");
    assert_eq!(form["client_secret"], "g-secret");
    // What the provider checks: BASE64URL(SHA256(verifier)) is the challenge sent earlier.
    let derived = B64URL.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    assert_eq!(derived, query_of(&url)["code_challenge"]);
}

#[tokio::test]
async fn refused_code_is_a_provider_error_and_refused_refresh_is_invalid_grant() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant", "error_description": "Bad Request"
        })))
        .mount(&server)
        .await;
    let connector = google(&server);
    assert_eq!(
        connector
            .oauth()
            .exchange_code("used", "v")
            .await
            .unwrap_err(),
        ProviderError::InvalidGrant
    );
    assert_eq!(
        connector
            .oauth()
            .refresh(&tokens("a", Some("r")))
            .await
            .unwrap_err(),
        ProviderError::InvalidGrant
    );
    // No refresh token at all: nothing to try, the user must log in again.
    assert_eq!(
        connector
            .oauth()
            .refresh(&tokens("a", None))
            .await
            .unwrap_err(),
        ProviderError::InvalidGrant
    );
}

#[tokio::test]
async fn google_refresh_keeps_the_refresh_token_it_does_not_resend() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=1%2F%2Fkeep"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.new", "expires_in": 3599, "token_type": "Bearer"
        })))
        .mount(&server)
        .await;
    let refreshed = google(&server)
        .oauth()
        .refresh(&tokens("old", Some("1//keep")))
        .await
        .unwrap();
    assert_eq!(refreshed.access_token.expose_secret(), "ya29.new");
    assert_eq!(refreshed.refresh_token.unwrap().expose_secret(), "1//keep");
}

#[tokio::test]
async fn microsoft_refresh_rotates_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/consumers/oauth2/v2.0/token"))
        .and(body_string_contains("refresh_token=M.old"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "scope": "Files.Read User.Read", "expires_in": 3600,
            "ext_expires_in": 3600, "access_token": "EwB.new", "refresh_token": "M.rotated"
        })))
        .mount(&server)
        .await;
    let refreshed = onedrive(&server)
        .oauth()
        .refresh(&tokens("EwB.old", Some("M.old")))
        .await
        .unwrap();
    assert_eq!(
        refreshed.refresh_token.unwrap().expose_secret(),
        "M.rotated"
    );
}

#[tokio::test]
async fn microsoft_interaction_and_consent_required_mean_reauthorise() {
    for code in ["interaction_required", "consent_required"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/consumers/oauth2/v2.0/token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": code,
                "error_description": "AADSTS50076: Due to a configuration change made by your \
                    administrator, you must use multi-factor authentication.",
                "error_codes": [50076]
            })))
            .mount(&server)
            .await;
        assert_eq!(
            onedrive(&server)
                .oauth()
                .refresh(&tokens("EwB.old", Some("M.old")))
                .await
                .unwrap_err(),
            ProviderError::InvalidGrant,
            "{code}"
        );
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "{code} is not retried"
        );
    }
}

#[tokio::test]
async fn interaction_required_is_microsoft_s_rule_not_google_s() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error": "interaction_required"})),
        )
        .mount(&server)
        .await;
    assert_eq!(
        google(&server)
            .oauth()
            .refresh(&tokens("a", Some("r")))
            .await
            .unwrap_err(),
        ProviderError::Rejected("token endpoint refused: interaction_required".into())
    );
}

#[tokio::test]
async fn token_endpoint_429_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.after-wait", "expires_in": 3599, "token_type": "Bearer"
        })))
        .mount(&server)
        .await;
    let refreshed = google(&server)
        .oauth()
        .refresh(&tokens("a", Some("r")))
        .await
        .unwrap();
    assert_eq!(refreshed.access_token.expose_secret(), "ya29.after-wait");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn google_revocation_posts_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(body_string_contains("token=1%2F%2Frefresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    assert!(google(&server)
        .oauth()
        .revoke(&tokens("a", Some("1//refresh")))
        .await
        .unwrap());
    // Microsoft has no revocation endpoint: nothing is sent.
    assert!(!onedrive(&server)
        .oauth()
        .revoke(&tokens("a", Some("M.r")))
        .await
        .unwrap());
}

// ---------------------------------------------------------------- identity

#[tokio::test]
async fn identities_come_from_userinfo_and_graph_me() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/oauth2/v3/userinfo"))
        .and(header("authorization", "Bearer ya29.a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sub": "1098", "email": "alice@gmail.com", "email_verified": true
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "48d31887", "displayName": "Bob", "mail": null, "userPrincipalName": "bob@outlook.com"
        })))
        .mount(&server)
        .await;
    let alice = google(&server).identity(&token("ya29.a")).await.unwrap();
    assert_eq!(
        (alice.provider_user_id.as_str(), alice.email.as_str()),
        ("1098", "alice@gmail.com")
    );
    let bob = onedrive(&server).identity(&token("EwB")).await.unwrap();
    assert_eq!(
        (bob.provider_user_id.as_str(), bob.email.as_str()),
        ("48d31887", "bob@outlook.com")
    );
}

#[tokio::test]
async fn a_refused_access_token_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": { "code": 401, "status": "UNAUTHENTICATED" }
        })))
        .mount(&server)
        .await;
    assert_eq!(
        google(&server)
            .identity(&token("expired"))
            .await
            .unwrap_err(),
        ProviderError::Unauthorized
    );
    assert_eq!(
        google(&server)
            .list_page(&token("expired"), None)
            .await
            .unwrap_err(),
        ProviderError::Unauthorized
    );
    assert_eq!(
        onedrive(&server)
            .list_page(&token("expired"), None)
            .await
            .unwrap_err(),
        ProviderError::Unauthorized
    );
}

// ---------------------------------------------------------------- Google Drive listing

#[tokio::test]
async fn google_first_sync_saves_the_start_token_then_pages_through_files() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/changes/startPageToken"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"kind": "drive#startPageToken", "startPageToken": "100"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_no_shared_drives(&server).await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .and(query_param("pageToken", "page-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "files": [{"id": "doc1", "name": "Plan", "mimeType": "application/vnd.google-apps.document",
                       "modifiedTime": "2024-05-01T10:00:00.000Z", "webViewLink": "https://docs.google.com/d/doc1"}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "nextPageToken": "page-2",
            "files": [{"id": "f1", "name": "a.txt", "mimeType": "text/plain", "size": "1234",
                       "modifiedTime": "2024-05-01T10:00:00.000Z", "webViewLink": "https://drive.google.com/f1", "trashed": false}]
        })))
        .mount(&server)
        .await;
    let drive = google(&server);
    let first = drive.list_page(&token("t"), None).await.unwrap();
    assert_eq!(
        first.drives,
        Some(DriveReport::All(vec![DriveInfo {
            id: "my-drive".into(),
            name: "My Drive".into(),
            kind: DriveKind::MyDrive,
        }])),
        "the first page names every drive"
    );
    assert_eq!(
        first.files[0].size,
        Some(1234),
        "Drive's int64 strings are read"
    );
    let NextPage::More(cursor) = first.next else {
        panic!("more pages expected")
    };
    let second = drive.list_page(&token("t"), Some(&cursor)).await.unwrap();
    assert_eq!(second.files[0].id, "doc1");
    assert_eq!(
        second.files[0].size, None,
        "Google Docs have no size and are kept"
    );
    let NextPage::Done(done) = second.next else {
        panic!("last page expected")
    };
    assert!(
        done.contains("\"100\""),
        "the next sync starts from the token taken before listing: {done}"
    );

    let requests = server.received_requests().await.unwrap();
    let files_query = requests
        .iter()
        .find(|r| r.url.path() == "/drive/v3/files")
        .unwrap()
        .url
        .query_pairs()
        .into_owned()
        .collect::<HashMap<_, _>>();
    // Drive answers only id, name and mimeType unless asked for more.
    for field in [
        "size",
        "modifiedTime",
        "webViewLink",
        "trashed",
        "nextPageToken",
        "parents",
        "md5Checksum",
        "driveId",
    ] {
        assert!(
            files_query["fields"].contains(field),
            "fields asks for {field}"
        );
    }
    assert_eq!(files_query["pageSize"], "1000");
    assert_eq!(files_query["q"], "trashed = false");
    // What is shared with the user from shared drives is listed only when asked for; My
    // Drive is the `user` corpus (never `allDrives`, whose answers may be incomplete).
    assert_eq!(files_query["supportsAllDrives"], "true");
    assert_eq!(files_query["includeItemsFromAllDrives"], "true");
    assert_eq!(files_query["corpora"], "user");
    assert!(files_query["fields"].contains("incompleteSearch"));
    let start_query = requests
        .iter()
        .find(|r| r.url.path() == "/drive/v3/changes/startPageToken")
        .unwrap()
        .url
        .query_pairs()
        .into_owned()
        .collect::<HashMap<_, _>>();
    assert_eq!(start_query["supportsAllDrives"], "true");
}

/// `drives.list` answering that the user is in no shared drive.
async fn mount_no_shared_drives(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/drive/v3/drives"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"drives": []})))
        .mount(server)
        .await;
}

fn drive_400_invalid(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {
        "code": 400,
        "message": "Invalid Value",
        "errors": [{"domain": "global", "reason": "invalid", "message": "Invalid Value",
                    "locationType": "parameter", "location": location}]
    }}))
}

#[tokio::test]
async fn a_stale_files_list_page_token_means_start_over_but_a_refused_change_token_does_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(drive_400_invalid("pageToken"))
        .mount(&server)
        .await;
    let drive = google(&server);
    let listing = r#"{"phase":"listing","changes_from":"100","catch_up":false,"drive":null,"page_token":"stale","pending":[]}"#;
    assert_eq!(
        drive
            .list_page(&token("t"), Some(listing))
            .await
            .unwrap_err(),
        ProviderError::CursorExpired,
        "a listing continued with a stale page token starts over"
    );
    // Starting over would read a change token the same way and fail again at every sync.
    let changes = r#"{"phase":"changes","page_token":"100"}"#;
    let refused = drive
        .list_page(&token("t"), Some(changes))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ProviderError::Rejected(text) if text.starts_with("HTTP 400")),
        "{refused:?}"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "neither is retried"
    );
}

#[tokio::test]
async fn another_invalid_parameter_of_a_continued_listing_is_a_rejection() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(drive_400_invalid("corpora"))
        .mount(&server)
        .await;
    let listing = r#"{"phase":"listing","changes_from":"100","catch_up":false,"drive":null,"page_token":"p2","pending":[]}"#;
    let refused = google(&server)
        .list_page(&token("t"), Some(listing))
        .await
        .unwrap_err();
    assert!(matches!(refused, ProviderError::Rejected(_)), "{refused:?}");
}

#[tokio::test]
async fn drive_files_carry_kind_parents_drive_and_md5() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/changes/startPageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"startPageToken": "1"})))
        .mount(&server)
        .await;
    mount_no_shared_drives(&server).await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": [
            {"id": "d", "name": "Team", "mimeType": "application/vnd.google-apps.folder",
             "parents": ["0Adrive"], "driveId": "0Adrive"},
            {"id": "f", "name": "a.bin", "mimeType": "application/octet-stream",
             "parents": ["d"], "driveId": "0Adrive", "md5Checksum": "0cc175b9c0f1b6a831c399e269772661"},
            {"id": "s", "name": "shared.txt", "mimeType": "text/plain"}
        ]})))
        .mount(&server)
        .await;
    let page = google(&server).list_page(&token("t"), None).await.unwrap();
    let [folder, file, shared] = &page.files[..] else {
        panic!("{:?}", page.files)
    };
    assert_eq!(folder.kind, Some(FileKind::Folder));
    assert_eq!(folder.content_hash, None);
    assert_eq!(file.kind, Some(FileKind::File));
    assert_eq!(file.parent_ids, Some(vec!["d".to_string()]));
    assert_eq!(file.drive_id.as_deref(), Some("0Adrive"));
    assert_eq!(
        file.content_hash,
        Some(ContentHash::new("md5", "0cc175b9c0f1b6a831c399e269772661"))
    );
    assert_eq!(shared.parent_ids, Some(vec![]), "no parents: []");
    assert_eq!(shared.drive_id, None);
    assert_eq!(shared.path, None);
}

#[tokio::test]
async fn google_later_syncs_read_changes_including_removals() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/changes"))
        .and(query_param("pageToken", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "nextPageToken": "101",
            "changes": [
                {"changeType": "file", "removed": false, "fileId": "f1",
                 "file": {"id": "f1", "name": "renamed.txt", "mimeType": "text/plain", "size": "5", "trashed": false}},
                {"changeType": "file", "removed": true, "fileId": "gone"}
            ]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/changes"))
        .and(query_param("pageToken", "101"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "newStartPageToken": "102",
            "changes": [{"changeType": "file", "removed": false, "fileId": "t1",
                         "file": {"id": "t1", "name": "bin.txt", "mimeType": "text/plain", "trashed": true}}]
        })))
        .mount(&server)
        .await;
    let drive = google(&server);
    let cursor = r#"{"phase":"changes","page_token":"100"}"#;
    let page = drive.list_page(&token("t"), Some(cursor)).await.unwrap();
    assert_eq!(page.files.len(), 2);
    assert_eq!(page.files[0].name, "renamed.txt");
    assert!(!page.files[0].deleted);
    assert!(page.files[1].deleted && page.files[1].id == "gone");
    let NextPage::More(next) = page.next else {
        panic!()
    };
    let last = drive.list_page(&token("t"), Some(&next)).await.unwrap();
    assert!(last.files[0].deleted, "trashed files count as deleted");
    assert_eq!(
        last.next,
        NextPage::Done(r#"{"phase":"changes","page_token":"102"}"#.into())
    );

    let request = server.received_requests().await.unwrap().remove(0);
    let fields = request
        .url
        .query_pairs()
        .find(|(k, _)| k == "fields")
        .unwrap()
        .1
        .into_owned();
    assert!(
        fields.contains("newStartPageToken")
            && fields.contains("removed")
            && fields.contains("file(")
    );
}

#[tokio::test]
async fn throttling_is_retried_with_retry_after_in_both_forms_then_given_up() {
    let server = MockServer::start().await;
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(1));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", soon.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/oauth2/v3/userinfo"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"sub": "1", "email": "a@b.c"})),
        )
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    google(&server).identity(&token("t")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was honoured"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    // A storm that outlasts the bounded retries ends as a retryable error.
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let error = google(&server).identity(&token("t")).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Retryable {
            status: Some(500),
            attempts: 4,
            retry_after: None,
        }
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

fn google_403(reason: &str) -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({"error": {
        "errors": [{"domain": "usageLimits", "reason": reason, "message": reason}],
        "code": 403,
        "message": reason
    }}))
}

#[tokio::test]
async fn google_403_rate_limits_are_retried_like_429() {
    for reason in ["rateLimitExceeded", "userRateLimitExceeded"] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(google_403(reason))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/oauth2/v3/userinfo"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"sub": "1", "email": "a@b.c"})),
            )
            .mount(&server)
            .await;
        let identity = google(&server).identity(&token("t")).await.unwrap();
        assert_eq!(identity.provider_user_id, "1", "{reason}");
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            3,
            "{reason}"
        );
    }
}

#[tokio::test]
async fn google_403_for_another_reason_is_a_rejection_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(google_403("insufficientFilePermissions"))
        .mount(&server)
        .await;
    let error = google(&server).identity(&token("t")).await.unwrap_err();
    assert!(
        matches!(&error, ProviderError::Rejected(text) if text.starts_with("HTTP 403")),
        "{error:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn google_403_insufficient_permissions_is_access_lost_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(google_403("insufficientPermissions"))
        .mount(&server)
        .await;
    let error = google(&server).identity(&token("t")).await.unwrap_err();
    assert!(matches!(&error, ProviderError::AccessLost(_)), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_403_rate_limit_is_google_s_rule_not_microsoft_s() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(google_403("rateLimitExceeded"))
        .mount(&server)
        .await;
    let error = onedrive(&server).identity(&token("t")).await.unwrap_err();
    assert!(matches!(error, ProviderError::Rejected(_)), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_after_too_long_for_one_invocation_is_left_to_the_queue() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    let error = onedrive(&server)
        .list_page(&token("t"), None)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ProviderError::Retryable {
            status: Some(429),
            attempts: 1,
            retry_after: Some(Duration::from_secs(3600)),
        }
    );
}

// ---------------------------------------------------------------- Graph delta

/// `GET /me/drive`, which a whole enumeration reads first, and, the drive being a business
/// one, `GET /me/followedSites` answering that the user follows no site.
async fn mount_my_drive(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"id": "b!drive", "name": "OneDrive", "driveType": "business"}),
            ),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/followedSites"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .mount(server)
        .await;
}

/// The OneDrive's Graph link in a Microsoft cursor (the first drive of its JSON).
fn onedrive_link(cursor: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(cursor).expect("a JSON cursor");
    json["drives"][0]["link"]
        .as_str()
        .expect("a link")
        .to_string()
}

#[tokio::test]
async fn graph_delta_follows_next_links_to_the_delta_link() {
    let server = MockServer::start().await;
    let base = server.uri();
    mount_my_drive(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(query_param("token", "page2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "@odata.context": "x",
            "@odata.deltaLink": format!("{base}/v1.0/me/drive/root/delta?token=delta1"),
            "value": [{"id": "gone1", "name": "old.txt", "deleted": {"state": "deleted"}}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "@odata.nextLink": format!("{base}/v1.0/me/drive/root/delta?token=page2"),
            "value": [
                {"id": "root1", "name": "root", "root": {}, "folder": {"childCount": 2}},
                {"id": "f1", "name": "a.txt", "size": 10, "lastModifiedDateTime": "2024-01-02T03:04:05Z",
                 "webUrl": "https://onedrive.live.com/f1", "file": {"mimeType": "text/plain"}},
                {"id": "d1", "name": "Photos", "size": 0, "folder": {"childCount": 0}}
            ]
        })))
        .mount(&server)
        .await;
    let drive = onedrive(&server);
    let first = drive.list_page(&token("t"), None).await.unwrap();
    assert_eq!(
        first
            .files
            .iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>(),
        ["f1", "d1"],
        "the root is not a file"
    );
    assert_eq!(first.files[0].kind, Some(FileKind::File));
    assert_eq!(first.files[1].kind, Some(FileKind::Folder));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0].url.path(),
        "/v1.0/me/drive",
        "the drive is read first"
    );
    assert_eq!(
        first.drives,
        Some(DriveReport::All(vec![DriveInfo {
            id: "b!drive".into(),
            name: "OneDrive".into(),
            kind: DriveKind::Onedrive,
        }]))
    );
    let delta = requests
        .iter()
        .find(|r| r.url.path() == "/v1.0/me/drive/root/delta")
        .expect("the delta was asked");
    let select = delta
        .url
        .query_pairs()
        .find(|(k, _)| k == "$select")
        .unwrap()
        .1
        .into_owned();
    assert!(select.contains("parentReference"), "{select}");
    assert_eq!(first.files[0].mime_type.as_deref(), Some("text/plain"));
    let NextPage::More(next) = first.next else {
        panic!()
    };
    let second = drive.list_page(&token("t"), Some(&next)).await.unwrap();
    assert!(second.files[0].deleted);
    let NextPage::Done(done) = &second.next else {
        panic!("{:?}", second.next)
    };
    assert_eq!(
        onedrive_link(done),
        format!("{base}/v1.0/me/drive/root/delta?token=delta1")
    );
}

#[tokio::test]
async fn graph_items_carry_parents_drive_and_the_guaranteed_hash() {
    let server = MockServer::start().await;
    let base = server.uri();
    let parent = json!({"id": "dir", "driveId": "b!drive", "driveType": "business"});
    mount_my_drive(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "@odata.deltaLink": format!("{base}/v1.0/me/drive/root/delta?token=d"),
            "value": [
                {"id": "biz", "name": "a", "parentReference": parent,
                 "file": {"mimeType": "text/plain", "hashes": {"quickXorHash": "qx==", "sha256Hash": "AB12"}}},
                {"id": "personal", "name": "b", "parentReference": parent,
                 "file": {"mimeType": "text/plain", "hashes": {"quickXorHash": "qx==", "sha1Hash": "CD34"}}},
                {"id": "sha1-only", "name": "c", "parentReference": parent,
                 "file": {"mimeType": "text/plain", "hashes": {"sha1Hash": "EF56", "sha256Hash": "AB12"}}},
                {"id": "gone", "deleted": {"state": "deleted"}, "parentReference": parent}
            ]
        })))
        .mount(&server)
        .await;
    let page = onedrive(&server)
        .list_page(&token("t"), None)
        .await
        .unwrap();
    let [biz, personal, sha1_only, gone] = &page.files[..] else {
        panic!("{:?}", page.files)
    };
    assert_eq!(
        biz.content_hash,
        Some(ContentHash::new("quickXorHash", "qx==")),
        "quickXorHash, never the unsupported sha256Hash"
    );
    assert_eq!(
        personal.content_hash,
        Some(ContentHash::new("quickXorHash", "qx=="))
    );
    assert_eq!(
        sha1_only.content_hash,
        Some(ContentHash::new("sha1", "EF56"))
    );
    assert_eq!(biz.parent_ids, Some(vec!["dir".to_string()]));
    assert_eq!(biz.drive_id.as_deref(), Some("b!drive"));
    assert!(gone.deleted);
    assert_eq!(
        gone.kind, None,
        "a deleted item keeps the kind the index knows"
    );
}

#[tokio::test]
async fn graph_410_means_start_over_and_foreign_links_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(410).set_body_json(json!({"error": {"code": "resyncRequired"}})),
        )
        .mount(&server)
        .await;
    let drive = onedrive(&server);
    let expired = format!("{}/v1.0/me/drive/root/delta?token=old", server.uri());
    assert_eq!(
        drive
            .list_page(&token("t"), Some(&expired))
            .await
            .unwrap_err(),
        ProviderError::CursorExpired
    );
    let before = server.received_requests().await.unwrap().len();
    let foreign = "https://attacker.example/v1.0/me/drive/root/delta?token=x";
    assert_eq!(
        drive
            .list_page(&token("t"), Some(foreign))
            .await
            .unwrap_err(),
        ProviderError::CursorExpired
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        before,
        "the bearer token never left"
    );
}

// ---------------------------------------------------------------- Dropbox

#[tokio::test]
async fn dropbox_consent_url_asks_offline_access_and_the_two_scopes() {
    let server = MockServer::start().await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let url = dropbox(&server)
        .oauth()
        .authorization_url("s-1", challenge.clone());
    let q = consent_query(
        &url,
        &format!("{}/oauth2/authorize", server.uri()),
        "d-key",
        "dropbox",
        "s-1",
        &challenge,
    );
    assert_eq!(q["token_access_type"], "offline");
    assert_eq!(
        q["scope"],
        "account_info.read files.metadata.read files.content.read"
    );
}

#[tokio::test]
async fn dropbox_code_exchange_and_a_refresh_that_keeps_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code_verifier=verifier-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sl.first", "token_type": "bearer", "expires_in": 14400,
            "refresh_token": "dbx-refresh",
            "scope": "account_info.read files.metadata.read files.content.read",
            "account_id": "dbid:A", "uid": "12"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=dbx-refresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sl.second", "token_type": "bearer", "expires_in": 14400
        })))
        .mount(&server)
        .await;
    let oauth = dropbox(&server);
    let oauth = oauth.oauth();
    let grant = oauth.exchange_code("code-1", "verifier-1").await.unwrap();
    assert_eq!(grant.tokens.access_token.expose_secret(), "sl.first");
    assert!(oauth
        .missing_scopes(grant.granted_scopes.as_deref())
        .is_empty());
    let partial = vec!["account_info.read".to_string()];
    assert_eq!(
        oauth.missing_scopes(Some(&partial)),
        vec![
            "files.metadata.read".to_string(),
            "files.content.read".to_string()
        ]
    );
    let form = form_of(&server.received_requests().await.unwrap()[0].body);
    assert_eq!(form["client_id"], "d-key");
    assert_eq!(
        form["redirect_uri"],
        "https://hub.example/auth/dropbox/callback"
    );

    let refreshed = oauth.refresh(&grant.tokens).await.unwrap();
    assert_eq!(refreshed.access_token.expose_secret(), "sl.second");
    assert_eq!(
        refreshed.refresh_token.unwrap().expose_secret(),
        "dbx-refresh",
        "Dropbox's refresh answer carries no refresh token: the old one is kept"
    );
}

#[tokio::test]
async fn dropbox_identity_is_get_current_account_without_a_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/users/get_current_account"))
        .and(header("authorization", "Bearer sl.t"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "account_id": "dbid:AAH4f99", "email": "ada@example.com",
            "name": {"display_name": "Ada"}, "account_type": {".tag": "basic"}
        })))
        .mount(&server)
        .await;
    let identity = dropbox(&server).identity(&token("sl.t")).await.unwrap();
    assert_eq!(identity.provider_user_id, "dbid:AAH4f99");
    assert_eq!(identity.email, "ada@example.com");
    let request = &server.received_requests().await.unwrap()[0];
    assert!(
        request.body.is_empty(),
        "an endpoint without arguments takes no body"
    );
    assert!(request.headers.get("content-type").is_none());
}

/// `users/get_current_account` for a user whose namespaces are `root` and `home` (a team
/// space when they differ), in `team` when named.
async fn mount_dropbox_account(server: &MockServer, root: &str, home: &str, team: Option<&str>) {
    let tag = if root == home { "user" } else { "team" };
    let mut root_info = json!({".tag": tag, "root_namespace_id": root, "home_namespace_id": home});
    if root != home {
        root_info["home_path"] = json!("/Ada Example");
    }
    Mock::given(method("POST"))
        .and(path("/dbx/2/users/get_current_account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "account_id": "dbid:AAH4f99", "email": "ada@example.com",
            "root_info": root_info,
            "team": team.map(|name| json!({"id": "dbtid:1", "name": name})),
        })))
        .mount(server)
        .await;
}

/// The requests the server received at `path`.
async fn received_at(server: &MockServer, at: &str) -> Vec<wiremock::Request> {
    let received = server.received_requests().await.unwrap();
    received
        .into_iter()
        .filter(|r| r.url.path() == at)
        .collect()
}

#[tokio::test]
async fn dropbox_lists_recursively_from_the_root_then_continues_with_the_cursor() {
    let server = MockServer::start().await;
    mount_dropbox_account(&server, "11", "11", None).await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [
                {".tag": "folder", "id": "id:F", "name": "Docs", "path_lower": "/docs",
                 "path_display": "/Docs"},
                {".tag": "file", "id": "id:a", "name": "A.txt", "path_lower": "/docs/a.txt",
                 "path_display": "/Docs/A.txt", "size": 12, "rev": "015f1a2b3c4d5e6f",
                 "client_modified": "2026-11-01T09:00:00Z",
                 "server_modified": "2026-11-02T10:00:00Z", "content_hash": "4a1f6d0e4f1c2b7d9a8e3c5b6f7a8091a2b3c4d5e6f708192a3b4c5d6e7f8091"}
            ],
            "cursor": "c1", "has_more": true
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder/continue"))
        .and(body_string_contains("\"cursor\":\"c1\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [
                {".tag": "deleted", "name": "Old", "path_lower": "/old", "path_display": "/Old"},
                {".tag": "folder", "id": "id:O", "name": "Old", "path_lower": "/old",
                 "path_display": "/Old"}
            ],
            "cursor": "c2", "has_more": false
        })))
        .mount(&server)
        .await;
    let connector = dropbox(&server);
    let first = connector.list_page(&token("sl.t"), None).await.unwrap();
    let listing = &received_at(&server, "/dbx/2/files/list_folder").await[0];
    let argument: serde_json::Value = serde_json::from_slice(&listing.body).unwrap();
    assert!(
        listing.headers.get("dropbox-api-path-root").is_none(),
        "a user whose root is the home is listed as before"
    );
    assert_eq!(
        first.drives,
        Some(DriveReport::All(vec![DriveInfo {
            id: "dropbox".into(),
            name: "Dropbox".into(),
            kind: DriveKind::Dropbox
        }]))
    );
    assert_eq!(argument["path"], "");
    assert_eq!(argument["recursive"], true);
    assert_eq!(argument["include_deleted"], false);
    assert_eq!(
        first.next,
        NextPage::More("enumerating:c1".into()),
        "an enumeration's cursors are marked as such"
    );
    assert!(first.removed_paths.is_empty());
    assert_eq!(
        first.files[1].path_lower.as_deref(),
        Some("/docs/a.txt"),
        "Dropbox's own path_lower is kept"
    );
    let (folder, file) = (&first.files[0], &first.files[1]);
    assert_eq!(folder.kind, Some(FileKind::Folder));
    assert_eq!(folder.path.as_deref(), Some("/Docs"));
    assert_eq!(file.kind, Some(FileKind::File));
    assert_eq!(file.id, "id:a");
    assert_eq!(file.size, Some(12));
    assert_eq!(file.path.as_deref(), Some("/Docs/A.txt"));
    assert_eq!(file.parent_ids, Some(vec![]));
    assert_eq!(file.drive_id, None);
    assert_eq!(
        file.modified_at.unwrap().to_rfc3339(),
        "2026-11-02T10:00:00+00:00",
        "modified_at is server_modified"
    );
    assert_eq!(
        file.content_hash,
        Some(ContentHash::new(
            "dropbox",
            "4a1f6d0e4f1c2b7d9a8e3c5b6f7a8091a2b3c4d5e6f708192a3b4c5d6e7f8091"
        ))
    );

    let second = connector
        .list_page(&token("sl.t"), Some("enumerating:c1"))
        .await
        .unwrap();
    assert_eq!(second.next, NextPage::Done("c2".into()));
    assert_eq!(
        second.removed_paths,
        vec![RemovedPath {
            removal: PathRemoval::subtree("/old"),
            before: 0
        }],
        "the deletion comes before the folder re-created at its path; an enumeration's \
         entries replace nothing"
    );
    assert_eq!(second.files[0].id, "id:O");

    // Pages of changes: each entry replaces what another id holds at its path.
    let changes = connector
        .list_page(&token("sl.t"), Some("c1"))
        .await
        .unwrap();
    assert_eq!(
        changes.removed_paths,
        vec![
            RemovedPath {
                removal: PathRemoval::subtree("/old"),
                before: 0
            },
            RemovedPath {
                removal: PathRemoval {
                    path_lower: "/old".into(),
                    entry_only: true,
                    keep: Some("id:O".into())
                },
                before: 0
            }
        ],
        "a folder replaces another id's entry at its path, and leaves its children"
    );
}

fn dropbox_error(status: u16, summary: &str, tag: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error_summary": summary, "error": {".tag": tag}
    }))
}

#[tokio::test]
async fn dropbox_reset_expires_the_cursor_and_other_409s_are_rejections() {
    let server = MockServer::start().await;
    mount_dropbox_account(&server, "11", "11", None).await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder/continue"))
        .and(body_string_contains("dead"))
        .respond_with(dropbox_error(409, "reset/..", "reset"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder/continue"))
        .respond_with(dropbox_error(409, "path/not_found/...", "path"))
        .mount(&server)
        .await;
    let connector = dropbox(&server);
    assert_eq!(
        connector.list_page(&token("sl.t"), Some("dead")).await,
        Err(ProviderError::CursorExpired)
    );
    let error = connector
        .list_page(&token("sl.secret-token"), Some("c"))
        .await
        .unwrap_err();
    let ProviderError::Rejected(message) = error else {
        panic!("{error:?}")
    };
    assert!(message.contains("path/not_found"), "{message}");
    assert!(!message.contains("secret-token"));
    assert_eq!(
        received_at(&server, "/dbx/2/files/list_folder/continue")
            .await
            .len(),
        2,
        "409s are not retried"
    );
}

#[tokio::test]
async fn dropbox_expired_access_token_asks_for_a_refresh_but_a_missing_scope_does_not() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer sl.old"))
        .respond_with(dropbox_error(
            401,
            "expired_access_token/..",
            "expired_access_token",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error_summary": "missing_scope/..",
            "error": {".tag": "missing_scope", "required_scope": "files.metadata.read"}
        })))
        .mount(&server)
        .await;
    let connector = dropbox(&server);
    assert_eq!(
        connector.list_page(&token("sl.old"), None).await,
        Err(ProviderError::Unauthorized)
    );
    let error = connector
        .list_page(&token("sl.narrow"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ProviderError::AccessLost(m) if m.contains("missing_scope")),
        "{error:?}"
    );
}

#[tokio::test]
async fn dropbox_429_waits_retry_after() {
    let server = MockServer::start().await;
    mount_dropbox_account(&server, "11", "11", None).await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({
                    "error_summary": "too_many_requests/..",
                    "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 1}
                })),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [], "cursor": "c", "has_more": false
        })))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let page = dropbox(&server).list_page(&token("t"), None).await.unwrap();
    assert_eq!(page.next, NextPage::Done("c".into()));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        received_at(&server, "/dbx/2/files/list_folder").await.len(),
        2
    );
}

#[tokio::test]
async fn dropbox_team_members_are_listed_at_the_team_space_and_a_changed_root_starts_over() {
    let server = MockServer::start().await;
    mount_dropbox_account(&server, "7", "11", Some("Acme")).await;
    // Matched whole: wiremock's `header` would split the value at its comma.
    fn rooted_at_7(request: &wiremock::Request) -> bool {
        request
            .headers
            .get("dropbox-api-path-root")
            .is_some_and(|value| value.as_bytes() == br#"{".tag":"root","root":"7"}"#)
    }
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder"))
        .and(rooted_at_7)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [{".tag": "folder", "id": "id:M", "name": "Marketing",
                         "path_lower": "/marketing", "path_display": "/Marketing"}],
            "cursor": "c1", "has_more": true
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder/continue"))
        .and(rooted_at_7)
        .and(body_string_contains("\"cursor\":\"c1\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [], "cursor": "c2", "has_more": false
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder/continue"))
        .and(body_string_contains("stale"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "error_summary": "invalid_root/...",
            "error": {".tag": "invalid_root", "invalid_root": {
                ".tag": "user", "root_namespace_id": "11", "home_namespace_id": "11"}}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/files/list_folder/continue"))
        .and(body_string_contains("foreign"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "error_summary": "no_permission/...", "error": {".tag": "no_permission"}
        })))
        .mount(&server)
        .await;
    let connector = dropbox(&server);

    let first = connector.list_page(&token("sl.t"), None).await.unwrap();
    assert_eq!(
        first.drives,
        Some(DriveReport::All(vec![DriveInfo {
            id: "7".into(),
            name: "Acme".into(),
            kind: DriveKind::TeamSpace
        }])),
        "the team space is the drive, named after the team"
    );
    assert_eq!(first.files[0].drive_id.as_deref(), Some("7"));
    assert_eq!(
        first.next,
        NextPage::More("enumerating:team-space=7;c1".into())
    );
    let last = connector
        .list_page(&token("sl.t"), Some("enumerating:team-space=7;c1"))
        .await
        .unwrap();
    assert_eq!(last.next, NextPage::Done("team-space=7;c2".into()));
    let asked = received_at(&server, "/dbx/2/users/get_current_account").await;
    assert_eq!(asked.len(), 1, "the root is read once per enumeration");

    assert_eq!(
        connector
            .list_page(&token("sl.t"), Some("team-space=7;stale"))
            .await,
        Err(ProviderError::CursorExpired),
        "422 invalid_root: the root moved, start over"
    );
    assert!(matches!(
        connector
            .list_page(&token("sl.t"), Some("team-space=7;foreign"))
            .await,
        Err(ProviderError::Rejected(_))
    ));
    // A cursor of the home namespace, saved before the user had a team space: its listing
    // would go on, so the account's root is read, and it differs.
    assert_eq!(
        connector.list_page(&token("sl.t"), Some("c0")).await,
        Err(ProviderError::CursorExpired)
    );
    assert!(
        received_at(&server, "/dbx/2/files/list_folder/continue")
            .await
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("c0")),
        "not listed from"
    );
}

#[tokio::test]
async fn dropbox_revocation_is_a_bearer_call_refreshing_an_expired_token_first() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sl.fresh", "token_type": "bearer", "expires_in": 14400
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/auth/token/revoke"))
        .respond_with(ResponseTemplate::new(200).set_body_string("null"))
        .mount(&server)
        .await;
    let connector = dropbox(&server);
    let live = TokenSet {
        expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        ..tokens("sl.live", Some("r"))
    };
    assert!(connector.oauth().revoke(&live).await.unwrap());
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), "/dbx/2/auth/token/revoke");
    assert_eq!(requests[0].headers["authorization"], "Bearer sl.live");
    assert!(requests[0].body.is_empty());

    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sl.fresh", "token_type": "bearer", "expires_in": 14400
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dbx/2/auth/token/revoke"))
        .and(header("authorization", "Bearer sl.fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_string("null"))
        .mount(&server)
        .await;
    let expired = TokenSet {
        expires_at: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
        ..tokens("sl.expired", Some("r"))
    };
    assert!(connector.oauth().revoke(&expired).await.unwrap());
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(paths, ["/oauth2/token", "/dbx/2/auth/token/revoke"]);
}
