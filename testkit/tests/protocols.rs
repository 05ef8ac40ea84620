//! The stand-ins over plain HTTP, the way the hub talks to the real services.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hub_testkit::{FakeProviders, FileSpec, Provider};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

const VERIFIER: &str = "a-verifier-of-forty-three-or-more-characters-0123456789";
const REDIRECT: &str = "http://hub.test/auth/callback";

fn client() -> Client {
    // The consent answer redirects to the hub, which is not there: never follow it.
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn query_of(url: &str) -> HashMap<String, String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs().into_owned().collect()
}

fn authorize_url(p: &FakeProviders, provider: Provider) -> String {
    match provider {
        Provider::Google => format!("{}/google/o/oauth2/v2/auth", p.base_url()),
        Provider::Microsoft => format!("{}/microsoft/common/oauth2/v2.0/authorize", p.base_url()),
        Provider::Dropbox => format!("{}/dropbox/oauth2/authorize", p.base_url()),
        Provider::Box => format!("{}/box/api/oauth2/authorize", p.base_url()),
    }
}

fn token_url(p: &FakeProviders, provider: Provider) -> String {
    match provider {
        Provider::Google => format!("{}/google/token", p.base_url()),
        Provider::Microsoft => format!("{}/microsoft/common/oauth2/v2.0/token", p.base_url()),
        Provider::Dropbox => format!("{}/dropbox/oauth2/token", p.base_url()),
        Provider::Box => format!("{}/box/oauth2/token", p.base_url()),
    }
}

fn client_of(provider: Provider) -> (&'static str, &'static str) {
    match provider {
        Provider::Google => (
            hub_testkit::GOOGLE_CLIENT_ID,
            hub_testkit::GOOGLE_CLIENT_SECRET,
        ),
        Provider::Microsoft => (
            hub_testkit::ONEDRIVE_CLIENT_ID,
            hub_testkit::ONEDRIVE_CLIENT_SECRET,
        ),
        Provider::Dropbox => (
            hub_testkit::DROPBOX_CLIENT_ID,
            hub_testkit::DROPBOX_CLIENT_SECRET,
        ),
        Provider::Box => (hub_testkit::BOX_CLIENT_ID, hub_testkit::BOX_CLIENT_SECRET),
    }
}

/// The authorization request the hub's login sends to `provider`.
fn authorize_request(provider: Provider, state: &str) -> Vec<(String, String)> {
    let scope = match provider {
        Provider::Google => "openid email https://www.googleapis.com/auth/drive.readonly",
        Provider::Microsoft => "offline_access Files.Read.All User.Read",
        Provider::Dropbox => "account_info.read files.metadata.read files.content.read",
        Provider::Box => "root_readonly",
    };
    let challenge = challenge(VERIFIER);
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client_of(provider).0),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    if provider == Provider::Google {
        query.extend([("access_type", "offline"), ("prompt", "consent")]);
    }
    if provider == Provider::Dropbox {
        query.push(("token_access_type", "offline"));
    }
    query
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Consents as the hub's login would; returns the redirect's query.
async fn consent(p: &FakeProviders, provider: Provider, state: &str) -> HashMap<String, String> {
    let answer = client()
        .get(authorize_url(p, provider))
        .query(&authorize_request(provider, state))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = answer.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    query_of(location)
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let answer = client().post(url).form(form).send().await.unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap())
}

async fn exchange(
    p: &FakeProviders,
    provider: Provider,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    let (id, secret) = client_of(provider);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", id),
        ("client_secret", secret),
    ];
    post_form(&token_url(p, provider), &form).await
}

async fn refresh(p: &FakeProviders, provider: Provider, token: &str) -> (StatusCode, Value) {
    let (id, secret) = client_of(provider);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", id),
        ("client_secret", secret),
    ];
    post_form(&token_url(p, provider), &form).await
}

/// A full login; returns the token answer.
async fn log_in(p: &FakeProviders, provider: Provider) -> Value {
    let code = consent(p, provider, "s").await["code"].clone();
    let (status, tokens) = exchange(p, provider, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

/// A full login asking `scope` instead of the hub's scopes; returns the token answer.
async fn log_in_asking(p: &FakeProviders, provider: Provider, scope: &str) -> Value {
    let mut request = authorize_request(provider, "s");
    for (name, value) in &mut request {
        if name == "scope" {
            *value = scope.to_string();
        }
    }
    let answer = client()
        .get(authorize_url(p, provider))
        .query(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    let code = query_of(answer.headers()["location"].to_str().unwrap())["code"].clone();
    let (status, tokens) = exchange(p, provider, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn get(url: &str, token: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let answer = client().get(url).bearer_auth(token).send().await.unwrap();
    let (status, headers) = (answer.status(), answer.headers().clone());
    (status, headers, answer.json().await.unwrap())
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap().to_string()
}

#[tokio::test]
async fn consent_redirects_with_code_and_state_and_checks_the_request() {
    let p = FakeProviders::start().await;
    let redirect = consent(&p, Provider::Google, "a b&c=d/é").await;
    assert_eq!(redirect["state"], "a b&c=d/é", "state comes back intact");
    assert!(redirect["code"].starts_with("4/"));
    let asked = p.last_authorize_query("google").unwrap();
    assert_eq!(asked["access_type"], "offline");
    assert_eq!(asked["redirect_uri"], REDIRECT);

    // Without PKCE the consent page refuses.
    let url = format!("{}?response_type=code&client_id=google-client-id&redirect_uri={REDIRECT}&scope=email&state=s", authorize_url(&p, Provider::Google));
    let answer = client().get(url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);

    // A refusal goes back to the client with the state.
    p.deny_next_consent();
    let answer = client()
        .get(authorize_url(&p, Provider::Microsoft))
        .query(&[
            ("response_type", "code"),
            ("client_id", "onedrive-client-id"),
            ("redirect_uri", "http://hub.test/cb?keep=1"),
            ("scope", "Files.Read"),
            ("state", "xyz"),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let denied = query_of(answer.headers()["location"].to_str().unwrap());
    assert_eq!(
        (
            denied["error"].as_str(),
            denied["state"].as_str(),
            denied["keep"].as_str()
        ),
        ("access_denied", "xyz", "1")
    );
}

/// The interactive consent page's form, as a browser would submit it: its `action` and the
/// hidden fields, unescaped.
fn consent_form(page: &str) -> (String, Vec<(String, String)>) {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let end = start + tag[start..].find('"').unwrap();
        html_escape::decode_html_entities(&tag[start..end]).into_owned()
    };
    let form = page.split("<form").nth(1).expect("a form");
    let action = attribute(form.split('>').next().unwrap(), "action");
    let hidden = form
        .split("<input")
        .skip(1)
        .map(|tag| tag.split('>').next().unwrap())
        .filter(|tag| tag.contains("type=\"hidden\""))
        .map(|tag| (attribute(tag, "name"), attribute(tag, "value")))
        .collect();
    (action, hidden)
}

#[tokio::test]
async fn the_interactive_consent_page_asks_and_allow_or_deny_decide() {
    let p = FakeProviders::start().await;
    p.interactive_consent(true);
    // A state with markup in it: the page must carry it back intact, never as markup.
    let state = "\"><script>alert(1)</script>&amp;é";
    let page = client()
        .get(authorize_url(&p, Provider::Dropbox))
        .query(&authorize_request(Provider::Dropbox, state))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let header = |name: &str| page.headers()[name].to_str().unwrap().to_string();
    assert!(header("content-type").starts_with("text/html"));
    assert_eq!(header("cache-control"), "no-store");
    let csp = header("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Cloud Drive Connector Hub wants to see your files"),
        "{html}"
    );
    assert!(html.contains("Dropbox"));
    assert!(
        html.contains(hub_testkit::DEFAULT_DROPBOX_EMAIL),
        "the signed-in user"
    );
    assert!(!html.contains("<script>"), "escaped: {html}");
    assert!(html.contains(">Allow</button>") && html.contains(">Deny</button>"));
    let (action, hidden) = consent_form(&html);
    assert_eq!(action, "/dropbox/oauth2/authorize");
    let mut expected = authorize_request(Provider::Dropbox, state);
    expected.sort();
    assert_eq!(hidden, expected, "the original request, in hidden fields");
    // Nothing is issued until the user answers.
    assert!(p.issued_tokens().is_empty());

    let submit = |decision: Option<&str>, fields: Vec<(String, String)>| {
        let mut form = fields;
        form.extend(decision.map(|d| ("decision".to_string(), d.to_string())));
        client()
            .post(format!("{}{action}", p.base_url()))
            .form(&form)
            .send()
    };
    // Allow: a code and the state, as the instant consent gives; the code works.
    let allowed = submit(Some("allow"), hidden.clone()).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::FOUND);
    let back = query_of(allowed.headers()["location"].to_str().unwrap());
    assert_eq!(back["state"], state);
    let (status, tokens) = exchange(&p, Provider::Dropbox, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["account_id"], hub_testkit::DEFAULT_DROPBOX_USER);

    // Deny: Dropbox's documented refusal, with the state.
    let denied = submit(Some("deny"), hidden.clone()).await.unwrap();
    assert_eq!(denied.status(), StatusCode::FOUND);
    let back = query_of(denied.headers()["location"].to_str().unwrap());
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], state);
    assert!(back["error_description"].contains("chose not to give your app access"));
    assert!(!back.contains_key("code"));

    // No decision, or a request changed on the way back: the provider's error page.
    let undecided = submit(None, hidden.clone()).await.unwrap();
    assert_eq!(undecided.status(), StatusCode::BAD_REQUEST);
    let forged: Vec<(String, String)> = hidden
        .iter()
        .map(|(name, value)| match name.as_str() {
            "client_id" => (name.clone(), "someone-else".to_string()),
            _ => (name.clone(), value.clone()),
        })
        .collect();
    let forged = submit(Some("allow"), forged).await.unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    // A bad request gets the error page, not the consent page, in this mode too.
    let mut no_pkce = authorize_request(Provider::Google, "s");
    no_pkce.retain(|(name, _)| name != "code_challenge");
    let refused = client()
        .get(authorize_url(&p, Provider::Google))
        .query(&no_pkce)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // Google's and Microsoft's pages name their provider and signed-in user.
    for (provider, name, email) in [
        (
            Provider::Google,
            "Google",
            hub_testkit::DEFAULT_GOOGLE_EMAIL,
        ),
        (
            Provider::Microsoft,
            "Microsoft",
            hub_testkit::DEFAULT_MICROSOFT_EMAIL,
        ),
    ] {
        let page = client()
            .get(authorize_url(&p, provider))
            .query(&authorize_request(provider, "s"))
            .send()
            .await
            .unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains(name) && html.contains(email), "{html}");
    }
}

#[tokio::test]
async fn pkce_mismatch_is_refused_and_codes_are_single_use() {
    let p = FakeProviders::start().await;
    let code = consent(&p, Provider::Google, "s").await["code"].clone();
    let (status, error) = exchange(&p, Provider::Google, &code, &format!("{VERIFIER}x")).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    let code = consent(&p, Provider::Microsoft, "s").await["code"].clone();
    let (status, tokens) = exchange(&p, Provider::Microsoft, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(str_of(&tokens["access_token"]).starts_with("mat-"));
    assert!(str_of(&tokens["refresh_token"]).starts_with("mrt-"));
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert!(tokens["ext_expires_in"].is_number());
    let (status, error) = exchange(&p, Provider::Microsoft, &code, VERIFIER).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(p.issued_tokens().contains(&code));
}

#[tokio::test]
async fn token_endpoint_authenticates_the_client_and_wants_a_form() {
    let p = FakeProviders::start().await;
    let code = consent(&p, Provider::Google, "s").await["code"].clone();
    let url = token_url(&p, Provider::Google);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let wrong = client()
        .post(&url)
        .basic_auth("google-client-id", Some("nope"))
        .form(&form);
    let answer = wrong.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let as_json = client()
        .post(&url)
        .json(&serde_json::json!({"grant_type": "refresh_token"}));
    let answer = as_json.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // HTTP Basic works as well as form fields.
    let basic = client()
        .post(&url)
        .basic_auth("google-client-id", Some("google-client-secret"));
    let answer = basic.form(&form).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn google_refresh_keeps_the_refresh_token_and_revocation_ends_the_grant() {
    let p = FakeProviders::start().await;
    let tokens = log_in(&p, Provider::Google).await;
    let refresh_token = str_of(&tokens["refresh_token"]);
    assert!(refresh_token.starts_with("grt-"));
    assert_eq!(tokens["id_token"], "fake.jwt.value");
    let userinfo = format!("{}/google/oauth2/v3/userinfo", p.base_url());

    p.expire_access_tokens();
    let (status, _, error) = get(&userinfo, &str_of(&tokens["access_token"])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");

    let (status, renewed) = refresh(&p, Provider::Google, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert!(
        renewed.get("refresh_token").is_none(),
        "Google keeps the refresh token"
    );
    let (status, _, me) = get(&userinfo, &str_of(&renewed["access_token"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["sub"].as_str(), me["email"].as_str()),
        (Some("google-user-1"), Some("alice@example.com"))
    );
    assert_eq!(
        refresh(&p, Provider::Google, &refresh_token).await.0,
        StatusCode::OK
    );

    let revoke = format!("{}/google/revoke", p.base_url());
    let (status, _) = post_form(&revoke, &[("token", &refresh_token)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = refresh(&p, Provider::Google, &refresh_token).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        get(&userinfo, &str_of(&renewed["access_token"])).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, error) = post_form(&revoke, &[("token", "unknown")]).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_token"))
    );
    assert_eq!(p.revoked_tokens(), vec![refresh_token]);
}

/// Google issues a refresh token on a user's first offline consent to the app, and on a later
/// one only when the login asked for the consent screen again (`prompt=consent`), which is
/// why the hub always asks it.
#[tokio::test]
async fn google_issues_a_refresh_token_again_only_with_prompt_consent() {
    let p = FakeProviders::start().await;
    let first = log_in(&p, Provider::Google).await;
    assert!(first.get("refresh_token").is_some(), "the first consent");
    let again = log_in(&p, Provider::Google).await;
    assert!(
        again.get("refresh_token").is_some(),
        "asked with prompt=consent"
    );

    let without_prompt: Vec<(String, String)> = authorize_request(Provider::Google, "s2")
        .into_iter()
        .filter(|(name, _)| name != "prompt")
        .collect();
    let answer = client()
        .get(authorize_url(&p, Provider::Google))
        .query(&without_prompt)
        .send()
        .await
        .unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    let code = query_of(&location)["code"].clone();
    let (status, tokens) = exchange(&p, Provider::Google, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(
        tokens.get("refresh_token").is_none(),
        "a re-consent without prompt=consent gets an access token only: {tokens}"
    );
}

#[tokio::test]
async fn microsoft_rotates_refresh_tokens() {
    let p = FakeProviders::start().await;
    let first = str_of(&log_in(&p, Provider::Microsoft).await["refresh_token"]);
    let (status, renewed) = refresh(&p, Provider::Microsoft, &first).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let second = str_of(&renewed["refresh_token"]);
    assert_ne!(first, second);
    let (status, error) = refresh(&p, Provider::Microsoft, &first).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(&p, Provider::Microsoft, &second).await.0,
        StatusCode::OK
    );

    p.revoke_refresh_tokens("onedrive");
    let third = str_of(&refresh(&p, Provider::Microsoft, &second).await.1["error"]);
    assert_eq!(third, "invalid_grant");
    let (status, _, me) = get(
        &format!("{}/graph/v1.0/me", p.base_url()),
        &str_of(&renewed["access_token"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "access tokens live on");
    assert_eq!(
        (me["mail"].clone(), me["userPrincipalName"].as_str()),
        (Value::Null, Some("bob@example.onmicrosoft.com"))
    );
}

#[tokio::test]
async fn drive_lists_pages_with_fields_and_reports_changes() {
    let p = FakeProviders::start().await;
    let ids = p.add_files("google", 3);
    let user = hub_testkit::DEFAULT_GOOGLE_USER;
    let mut doc = FileSpec::new("gdoc", "Plan");
    doc.mime_type = "application/vnd.google-apps.document".into();
    p.add_file("google", user, doc);
    let mut trashed = FileSpec::new("trashed", "old.txt");
    trashed.trashed = true;
    p.add_file("google", user, trashed);
    let token = str_of(&log_in(&p, Provider::Google).await["access_token"]);
    let api = format!("{}/google/drive/v3", p.base_url());

    let (_, _, start) = get(&format!("{api}/changes/startPageToken"), &token).await;
    let start_token = str_of(&start["startPageToken"]);

    // Paging with fields: only the asked-for keys, size as a string, none for Docs.
    let fields = "nextPageToken,files(id,name,mimeType,size,modifiedTime,webViewLink,trashed)";
    let mut listed = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut url =
            format!("{api}/files?pageSize=2&q=trashed%20%3D%20false&spaces=drive&fields={fields}");
        if let Some(page_token) = &page_token {
            url.push_str(&format!("&pageToken={page_token}"));
        }
        let (status, _, page) = get(&url, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.get("kind").is_none() && page.get("incompleteSearch").is_none());
        listed.extend(page["files"].as_array().unwrap().iter().cloned());
        match page.get("nextPageToken") {
            Some(next) => page_token = Some(str_of(next)),
            None => break,
        }
    }
    let listed_ids: Vec<String> = listed.iter().map(|f| str_of(&f["id"])).collect();
    let mut expected = ids.clone();
    expected.insert(0, "gdoc".into());
    assert_eq!(listed_ids, expected, "ordered by id, trashed left out");
    assert!(listed[0].get("size").is_none(), "a Google Doc has no size");
    assert_eq!(listed[1]["size"], "1001");
    assert_eq!(listed[1]["name"], "file-00001.txt");
    assert_eq!(
        listed[1]["webViewLink"],
        format!("https://drive.google.com/file/d/{}/view", ids[0])
    );
    assert_eq!(listed[1]["modifiedTime"], "2024-01-01T00:01:00.000Z");
    assert!(listed[1].get("kind").is_none());

    // Without fields Drive answers kind, id, name and mimeType only.
    let (_, _, page) = get(&format!("{api}/files"), &token).await;
    let keys: Vec<&String> = page["files"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "kind", "mimeType", "name"]);
    assert_eq!(
        page["files"].as_array().unwrap().len(),
        5,
        "no q: trashed ones too"
    );
    let (status, _, _) = get(&format!("{api}/files?pageToken=garbage"), &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Changes since the start token: one per file, removals without a file.
    p.modify_file("google", user, &ids[0], "renamed.txt");
    p.delete_file("google", &ids[1]);
    let fields = "nextPageToken,newStartPageToken,changes(fileId,removed,file(id,name))";
    let url = format!(
        "{api}/changes?pageToken={start_token}&pageSize=1&includeRemoved=true&fields={fields}"
    );
    let (_, _, first) = get(&url, &token).await;
    assert_eq!(first["changes"][0]["file"]["name"], "renamed.txt");
    assert_eq!(first["changes"][0]["removed"], false);
    let next = str_of(&first["nextPageToken"]);
    assert!(first.get("newStartPageToken").is_none());
    let (_, _, second) = get(
        &format!("{api}/changes?pageToken={next}&pageSize=1&fields={fields}"),
        &token,
    )
    .await;
    let removal = &second["changes"][0];
    assert_eq!(
        (removal["fileId"].as_str(), removal["removed"].as_bool()),
        (Some(ids[1].as_str()), Some(true))
    );
    assert!(removal.get("file").is_none());
    let new_start = str_of(&second["newStartPageToken"]);
    let (_, _, none) = get(&format!("{api}/changes?pageToken={new_start}"), &token).await;
    assert_eq!(none["changes"].as_array().unwrap().len(), 0);
    assert_eq!(none["kind"], "drive#changeList");
    let (status, _, _) = get(&format!("{api}/changes"), &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "pageToken is required");
}

#[tokio::test]
async fn graph_delta_pages_then_reports_changes_and_expires() {
    let p = FakeProviders::start().await;
    p.set_graph_page_size(2);
    let ids = p.add_files("onedrive", 3);
    let token = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    let select = "id,name,size,file,folder,root,deleted,lastModifiedDateTime,webUrl";
    let mut url = format!(
        "{}/graph/v1.0/me/drive/root/delta?$select={select}",
        p.base_url()
    );

    // Root and three files over two pages, the last with the deltaLink.
    let mut items = Vec::new();
    let delta_link = loop {
        let (status, _, page) = get(&url, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["@odata.context"].is_string());
        items.extend(page["value"].as_array().unwrap().iter().cloned());
        match (page.get("@odata.nextLink"), page.get("@odata.deltaLink")) {
            (Some(next), None) => url = str_of(next),
            (None, Some(delta)) => break str_of(delta),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["root"], serde_json::json!({}));
    assert_eq!(items[1]["id"], ids[0].as_str());
    assert_eq!(items[1]["size"], 1001);
    assert_eq!(items[1]["file"]["mimeType"], "text/plain");
    assert_eq!(items[1]["lastModifiedDateTime"], "2024-01-01T00:01:00Z");
    assert!(
        items[1].get("parentReference").is_none(),
        "$select is honoured"
    );
    assert!(delta_link.starts_with(&format!(
        "{}/graph/v1.0/me/drive/root/delta?token=",
        p.base_url()
    )));

    // The deltaLink later: only what changed.
    let user = hub_testkit::DEFAULT_MICROSOFT_USER;
    p.modify_file("onedrive", user, &ids[2], "new.txt");
    p.delete_file("onedrive", &ids[0]);
    let (_, _, changes) = get(&delta_link, &token).await;
    let value = changes["value"].as_array().unwrap();
    assert_eq!(value.len(), 2);
    assert_eq!(value[0]["deleted"]["state"], "deleted");
    assert_eq!(value[1]["name"], "new.txt");
    assert!(changes["@odata.deltaLink"].is_string());

    // Someone else's token cannot follow the link.
    p.set_next_identity("onedrive", "ms-user-2", "carol@example.com");
    let carol = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    assert_eq!(get(&delta_link, &carol).await.0, StatusCode::FORBIDDEN);
    p.add_files_for("onedrive", "ms-user-2", 1);
    let fresh = format!("{}/graph/v1.0/me/drive/root/delta", p.base_url());
    let (_, _, own) = get(&fresh, &carol).await;
    assert_eq!(
        own["value"].as_array().unwrap().len(),
        2,
        "root and her one file: {own}"
    );

    p.expire_delta_links();
    let (status, _, gone) = get(&delta_link, &token).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(gone["error"]["code"], "resyncRequired");
    assert_eq!(
        get(&delta_link, "not-a-token").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn injected_faults_carry_retry_after_and_requests_are_counted() {
    let p = FakeProviders::start().await;
    let token = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    let me = format!("{}/graph/v1.0/me", p.base_url());
    p.fail_next("/graph/v1.0/me", 429, Some("1"), 2);
    for _ in 0..2 {
        let (status, headers, body) = get(&me, &token).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["retry-after"], "1");
        assert!(body["error"]["code"].is_string());
    }
    assert_eq!(get(&me, &token).await.0, StatusCode::OK);
    assert_eq!(p.requests("/graph/v1.0/me"), 3);

    let date = "Wed, 21 Oct 2026 07:28:00 GMT";
    p.fail_next("/google/drive", 503, Some(date), 1);
    let (status, headers, body) =
        get(&format!("{}/google/drive/v3/files", p.base_url()), "x").await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (StatusCode::SERVICE_UNAVAILABLE, date)
    );
    assert_eq!(body["error"]["code"], 503);

    let (status, headers, body) = get(&format!("{}/nowhere", p.base_url()), "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    assert!(body["error"].is_object());
}

#[tokio::test]
async fn env_vars_point_at_the_server() {
    let p = FakeProviders::start().await;
    let env: HashMap<String, String> = p.env_vars().into_iter().collect();
    assert_eq!(env["GOOGLE_API_URL"], format!("{}/google", p.base_url()));
    assert_eq!(
        env["ONEDRIVE_GRAPH_URL"],
        format!("{}/graph/v1.0", p.base_url())
    );
    assert_eq!(env["ONEDRIVE_CLIENT_SECRET"], "onedrive-client-secret");
    assert_eq!(env.len(), 10);
}

// ------------------------------------------------------------ issue 12: the stricter stand-ins

/// The Drive error's first `errors[].reason`.
fn drive_reason(body: &Value) -> &str {
    body["error"]["errors"][0]["reason"].as_str().unwrap_or("")
}

fn ids_of(page: &Value, list: &str) -> Vec<String> {
    let items = page[list].as_array().unwrap();
    items.iter().map(|f| str_of(&f["id"])).collect()
}

#[tokio::test]
async fn drive_lists_shared_drive_items_only_for_clients_that_ask_for_all_drives() {
    let p = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_GOOGLE_USER;
    p.add_file("google", user, FileSpec::new("a-mine", "mine.txt"));
    let shared = FileSpec::new("b-shared", "from-carol.txt").shared_with_me();
    p.add_file("google", user, shared);
    let team = FileSpec::new("c-team", "plan.txt").in_shared_drive("0Ateam");
    p.add_file("google", user, team);
    let token = str_of(&log_in(&p, Provider::Google).await["access_token"]);
    let api = format!("{}/google/drive/v3", p.base_url());
    let (_, _, start) = get(&format!("{api}/changes/startPageToken"), &token).await;
    let start = str_of(&start["startPageToken"]);
    let fields = "files(id,driveId,ownedByMe,parents)";

    // A lenient client that sends nothing extra sees My Drive and what is shared with the
    // user, never the shared drive.
    let (status, _, page) = get(&format!("{api}/files?fields={fields}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids_of(&page, "files"), ["a-mine", "b-shared"]);
    assert_eq!(page["files"][1]["ownedByMe"], false);
    assert!(page["files"][0].get("driveId").is_none());
    assert!(page["files"][0]["parents"].is_array());
    assert!(
        page["files"][1].get("parents").is_none(),
        "the owner's folder is not visible"
    );

    // includeItemsFromAllDrives without supportsAllDrives is refused.
    let url = format!("{api}/files?includeItemsFromAllDrives=true&corpora=allDrives");
    let (status, _, error) = get(&url, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(
        error["error"]["errors"][0]["location"],
        "includeItemsFromAllDrives"
    );
    // corpora=allDrives needs includeItemsFromAllDrives.
    let url = format!("{api}/files?supportsAllDrives=true&corpora=allDrives");
    assert_eq!(get(&url, &token).await.0, StatusCode::BAD_REQUEST);
    // The default corpus `user` leaves shared drives out even when both flags are set.
    let both = "supportsAllDrives=true&includeItemsFromAllDrives=true";
    let url = format!("{api}/files?{both}&fields={fields}");
    assert_eq!(ids_of(&get(&url, &token).await.2, "files").len(), 2);

    // allDrives spans several corpora and says its answer may be incomplete: the stand-in
    // takes that worst case and leaves the shared drive's files out.
    let url = format!("{api}/files?{both}&corpora=allDrives&fields=incompleteSearch,{fields}");
    let (_, _, all) = get(&url, &token).await;
    assert_eq!(all["incompleteSearch"], true, "{all}");
    assert_eq!(ids_of(&all, "files"), ["a-mine", "b-shared"]);
    let with_drive = format!("{api}/files?{both}&corpora=drive&driveId=0Ateam");
    let url = format!("{with_drive}&fields=incompleteSearch,{fields}");
    let (_, _, team) = get(&url, &token).await;
    assert_eq!(team["incompleteSearch"], false);
    assert_eq!(ids_of(&team, "files"), ["c-team"]);
    assert_eq!(team["files"][0]["driveId"], "0Ateam");
    assert_eq!(
        team["files"][0]["parents"],
        serde_json::json!(["0Ateam"]),
        "a shared drive's root has the drive's id"
    );
    let (status, _, drives) = get(&format!("{api}/drives?pageSize=100"), &token).await;
    assert_eq!(status, StatusCode::OK, "{drives}");
    assert_eq!(ids_of(&drives, "drives"), ["0Ateam"]);
    let (status, _, _) = get(&format!("{api}/drives?pageSize=101"), &token).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "drives.list takes at most 100"
    );

    // changes.list: the same rule.
    p.modify_file("google", user, "c-team", "plan-v2.txt");
    p.modify_file("google", user, "a-mine", "mine-v2.txt");
    let fields = "newStartPageToken,changes(fileId,file(id,driveId))";
    let url = format!("{api}/changes?pageToken={start}&fields={fields}");
    let (_, _, lenient) = get(&url, &token).await;
    let changed: Vec<String> = lenient["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(&c["fileId"]))
        .collect();
    assert_eq!(changed, ["a-mine"], "{lenient}");
    let url = format!("{api}/changes?pageToken={start}&includeItemsFromAllDrives=true");
    assert_eq!(get(&url, &token).await.0, StatusCode::BAD_REQUEST);
    let url = format!("{api}/changes?pageToken={start}&{both}&fields={fields}");
    let (_, _, strict) = get(&url, &token).await;
    let changes = strict["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{strict}");
    assert_eq!(changes[0]["file"]["driveId"], "0Ateam");

    // Leaving the drive: a `drive` change, the drive's files out of every listing, and its
    // listing a 404.
    let next = str_of(&strict["newStartPageToken"]);
    p.leave_shared_drive(user, "0Ateam");
    let fields = "newStartPageToken,changes(changeType,driveId,removed,fileId)";
    let url = format!("{api}/changes?pageToken={next}&{both}&fields={fields}");
    let (_, _, left) = get(&url, &token).await;
    assert_eq!(
        left["changes"],
        serde_json::json!([{"changeType": "drive", "driveId": "0Ateam", "removed": true}])
    );
    let (status, _, error) = get(&with_drive, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (_, _, drives) = get(&format!("{api}/drives"), &token).await;
    assert_eq!(ids_of(&drives, "drives"), Vec::<String>::new());
}

#[tokio::test]
async fn drive_answers_403_rate_limits_with_their_reason_then_normally() {
    let p = FakeProviders::start().await;
    p.add_files("google", 1);
    let token = str_of(&log_in(&p, Provider::Google).await["access_token"]);
    let files = format!("{}/google/drive/v3/files", p.base_url());
    p.fail_next_drive(403, "userRateLimitExceeded", 2);
    for _ in 0..2 {
        let (status, _, body) = get(&files, &token).await;
        // A client that only retries 429 and 5xx takes this for a permission problem.
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], 403);
        assert_eq!(drive_reason(&body), "userRateLimitExceeded");
        assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
        assert_eq!(body["error"]["message"], "User Rate Limit Exceeded");
    }
    assert_eq!(get(&files, &token).await.0, StatusCode::OK);

    p.fail_next_drive(403, "rateLimitExceeded", 1);
    let (_, _, body) = get(&files, &token).await;
    assert_eq!(
        (
            drive_reason(&body),
            body["error"]["errors"][0]["domain"].as_str()
        ),
        ("rateLimitExceeded", Some("usageLimits"))
    );
    // A 403 that is not a rate limit: retrying does not help.
    p.fail_next_drive(403, "insufficientFilePermissions", 1);
    let (status, _, body) = get(&files, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(drive_reason(&body), "insufficientFilePermissions");
    assert_eq!(body["error"]["errors"][0]["domain"], "global");
    assert_eq!(get(&files, &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn drive_listing_tokens_go_stale_but_change_tokens_do_not() {
    let p = FakeProviders::start().await;
    p.add_files("google", 3);
    let token = str_of(&log_in(&p, Provider::Google).await["access_token"]);
    let api = format!("{}/google/drive/v3", p.base_url());
    let (_, _, start) = get(&format!("{api}/changes/startPageToken"), &token).await;
    let start = str_of(&start["startPageToken"]);
    let (_, _, first) = get(&format!("{api}/files?pageSize=1"), &token).await;
    let next = str_of(&first["nextPageToken"]);
    assert_eq!(
        get(&format!("{api}/files?pageSize=1&pageToken={next}"), &token)
            .await
            .0,
        StatusCode::OK
    );

    p.expire_listing_tokens();
    let (status, _, error) = get(&format!("{api}/files?pageSize=1&pageToken={next}"), &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["message"], "Invalid Value");
    let detail = &error["error"]["errors"][0];
    assert_eq!(
        (detail["reason"].as_str(), detail["location"].as_str()),
        (Some("invalid"), Some("pageToken"))
    );
    // A listing started afresh works, and the changes token still does.
    assert_eq!(get(&format!("{api}/files"), &token).await.0, StatusCode::OK);
    let (status, _, changes) = get(&format!("{api}/changes?pageToken={start}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
}

#[tokio::test]
async fn granular_consent_grants_only_the_ticked_scopes_and_says_so() {
    let p = FakeProviders::start().await;
    p.grant_only_on_next_consent("google", "openid email");
    let tokens = log_in(&p, Provider::Google).await;
    assert_eq!(
        tokens["scope"], "openid email",
        "the Drive box was unticked"
    );
    let files = format!("{}/google/drive/v3/files", p.base_url());
    let (status, _, error) = get(&files, &str_of(&tokens["access_token"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(drive_reason(&error), "insufficientPermissions");
    // The choice is per consent: the next one grants everything asked for again.
    let tokens = log_in(&p, Provider::Google).await;
    assert!(str_of(&tokens["scope"]).contains("/auth/drive.readonly"));
    assert_eq!(
        get(&files, &str_of(&tokens["access_token"])).await.0,
        StatusCode::OK
    );

    p.grant_only_on_next_consent("onedrive", "offline_access User.Read");
    let tokens = log_in(&p, Provider::Microsoft).await;
    assert_eq!(tokens["scope"], "offline_access User.Read");
    let delta = format!("{}/graph/v1.0/me/drive/root/delta", p.base_url());
    let (status, _, _) = get(&delta, &str_of(&tokens["access_token"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn microsoft_refresh_can_require_interaction_or_consent() {
    let p = FakeProviders::start().await;
    let refresh_token = str_of(&log_in(&p, Provider::Microsoft).await["refresh_token"]);
    p.require_reauthorization(hub_testkit::Reauthorization::InteractionRequired);
    let (status, error) = refresh(&p, Provider::Microsoft, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Not invalid_grant: a client that only knows that one misreads it.
    assert_eq!(error["error"], "interaction_required");
    assert!(str_of(&error["error_description"]).starts_with("AADSTS50076: "));
    assert_eq!(error["error_codes"], serde_json::json!([50076]));
    assert!(error["trace_id"].is_string() && error["correlation_id"].is_string());
    // It lasts until the user signs in again.
    assert_eq!(
        refresh(&p, Provider::Microsoft, &refresh_token).await.1["error"],
        "interaction_required"
    );
    let fresh = str_of(&log_in(&p, Provider::Microsoft).await["refresh_token"]);
    assert_eq!(
        refresh(&p, Provider::Microsoft, &fresh).await.0,
        StatusCode::OK
    );

    let current = str_of(&log_in(&p, Provider::Microsoft).await["refresh_token"]);
    p.require_reauthorization(hub_testkit::Reauthorization::ConsentRequired);
    let (status, error) = refresh(&p, Provider::Microsoft, &current).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("consent_required"))
    );
    assert_eq!(error["error_codes"], serde_json::json!([65001]));
}

/// Walks a Graph delta round from `url`; returns its items and the deltaLink.
async fn delta_round(url: &str, token: &str) -> (Vec<Value>, String) {
    let mut url = url.to_string();
    let mut items = Vec::new();
    loop {
        let (status, _, page) = get(&url, token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        items.extend(page["value"].as_array().unwrap().iter().cloned());
        match (page.get("@odata.nextLink"), page.get("@odata.deltaLink")) {
            (Some(next), None) => url = str_of(next),
            (None, Some(delta)) => return (items, str_of(delta)),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn graph_delta_can_repeat_an_item_and_the_last_occurrence_wins() {
    let p = FakeProviders::start().await;
    let ids = p.add_files("onedrive", 2);
    let user = hub_testkit::DEFAULT_MICROSOFT_USER;
    let token = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    let fresh = format!("{}/graph/v1.0/me/drive/root/delta", p.base_url());
    let (_, delta_link) = delta_round(&fresh, &token).await;

    p.modify_file("onedrive", user, &ids[1], "final.txt");
    p.repeat_in_next_delta_page(user, &ids[1]);
    let (items, next_link) = delta_round(&delta_link, &token).await;
    let names: Vec<String> = items
        .iter()
        .filter(|i| i["id"] == ids[1].as_str())
        .map(|i| str_of(&i["name"]))
        .collect();
    // A client keeping the first occurrence would keep the stale name.
    assert_eq!(names, ["file-00002.txt", "final.txt"]);
    // Once only.
    p.modify_file("onedrive", user, &ids[1], "later.txt");
    let (items, _) = delta_round(&next_link, &token).await;
    assert_eq!(items.len(), 1, "{items:?}");
}

#[tokio::test]
async fn graph_410_points_at_a_fresh_enumeration_without_the_deletes() {
    let p = FakeProviders::start().await;
    let ids = p.add_files("onedrive", 3);
    let token = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    let fresh = format!("{}/graph/v1.0/me/drive/root/delta", p.base_url());
    let (_, delta_link) = delta_round(&fresh, &token).await;

    p.expire_delta_links();
    p.delete_file("onedrive", &ids[0]);
    let (status, headers, gone) = get(&delta_link, &token).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(gone["error"]["code"], "resyncRequired");
    assert_eq!(
        gone["error"]["innerError"]["code"],
        "resyncChangesApplyDifferences"
    );
    let location = headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&fresh), "{location}");
    let (items, _) = delta_round(&location, &token).await;
    // The deleted file is simply absent: a client that waits for a `deleted` item for it
    // keeps it for ever.
    let listed: Vec<String> = items.iter().map(|i| str_of(&i["id"])).collect();
    assert_eq!(listed[1..], ids[1..], "{items:?}");
    assert!(items.iter().all(|i| i.get("deleted").is_none()));
}

#[tokio::test]
async fn drive_returns_folders_parents_and_checksums_only_when_asked() {
    let p = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_GOOGLE_USER;
    p.add_file("google", user, FileSpec::folder("f-docs", "Docs"));
    p.add_file(
        "google",
        user,
        FileSpec::new("g-note", "note.txt").in_folder("f-docs"),
    );
    let token = str_of(&log_in(&p, Provider::Google).await["access_token"]);
    let files = format!("{}/google/drive/v3/files", p.base_url());

    let (_, _, plain) = get(&files, &token).await;
    let note = &plain["files"][1];
    for field in ["parents", "md5Checksum", "driveId", "size"] {
        assert!(
            note.get(field).is_none(),
            "{field} was not asked for: {note}"
        );
    }
    let fields = "files(id,mimeType,parents,md5Checksum,size)";
    let (_, _, page) = get(&format!("{files}?fields={fields}"), &token).await;
    let (folder, note) = (&page["files"][0], &page["files"][1]);
    assert_eq!(folder["mimeType"], hub_testkit::FOLDER_MIME_TYPE);
    assert!(folder.get("md5Checksum").is_none() && folder.get("size").is_none());
    assert_eq!(note["parents"], serde_json::json!(["f-docs"]));
    let md5 = str_of(&note["md5Checksum"]);
    assert!(md5.len() == 32 && md5.chars().all(|c| c.is_ascii_hexdigit()));
    let root = str_of(&folder["parents"][0]);
    assert!(!root.is_empty() && root != "f-docs");

    // A new version has a new checksum.
    p.modify_file("google", user, "g-note", "note-v2.txt");
    let (_, _, page) = get(&format!("{files}?fields={fields}"), &token).await;
    assert_ne!(str_of(&page["files"][1]["md5Checksum"]), md5);
}

#[tokio::test]
async fn graph_returns_folders_parents_and_hashes_and_business_parents_of_changes() {
    let p = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_MICROSOFT_USER;
    p.add_file("onedrive", user, FileSpec::folder("F1", "Projects"));
    p.add_file(
        "onedrive",
        user,
        FileSpec::folder("F2", "Plans").in_folder("F1"),
    );
    p.add_file(
        "onedrive",
        user,
        FileSpec::new("X1", "a.txt").in_folder("F2"),
    );
    p.add_file("onedrive", user, FileSpec::new("Y1", "b.txt"));
    let token = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    let fresh = format!("{}/graph/v1.0/me/drive/root/delta", p.base_url());

    let (items, delta_link) = delta_round(&fresh, &token).await;
    let by_id = |items: &[Value], id: &str| -> Value {
        let item = items.iter().find(|i| i["id"] == id);
        item.cloned()
            .unwrap_or_else(|| panic!("no {id} in {items:?}"))
    };
    let projects = by_id(&items, "F1");
    assert_eq!(projects["folder"]["childCount"], 1);
    assert!(projects.get("file").is_none());
    let file = by_id(&items, "X1");
    assert_eq!(file["parentReference"]["id"], "F2");
    assert_eq!(file["parentReference"]["driveType"], "personal");
    assert!(file["parentReference"]["driveId"].is_string());
    let hashes = &file["file"]["hashes"];
    assert!(hashes["quickXorHash"].is_string() && hashes["sha1Hash"].is_string());
    assert!(
        hashes.get("sha256Hash").is_none(),
        "personal: no sha256Hash"
    );
    assert_eq!(
        by_id(&items, "Y1")["parentReference"]["id"],
        format!("root-{user}")
    );

    // Personal: a round returns only what changed.
    p.modify_file("onedrive", user, "X1", "a-v2.txt");
    let (items, delta_link) = delta_round(&delta_link, &token).await;
    let ids: Vec<String> = items.iter().map(|i| str_of(&i["id"])).collect();
    assert_eq!(ids, ["X1"]);

    // Business: sha256Hash, and the changed item's parent folders come along.
    p.set_graph_business(true);
    p.modify_file("onedrive", user, "X1", "a-v3.txt");
    let (items, _) = delta_round(&delta_link, &token).await;
    let mut ids: Vec<String> = items.iter().map(|i| str_of(&i["id"])).collect();
    ids.sort();
    assert_eq!(ids, ["F1", "F2", "X1"], "{items:?}");
    let file = by_id(&items, "X1");
    assert!(file["file"]["hashes"]["sha256Hash"].is_string());
    assert!(file["file"]["hashes"].get("sha1Hash").is_none());
    assert_eq!(file["parentReference"]["driveType"], "business");
    assert!(by_id(&items, "F2")["folder"].is_object());
}

// ------------------------------------------------------------ Dropbox

/// A Dropbox RPC call with a JSON argument; returns the status, headers and body (JSON when it
/// parses, else the text as a string).
async fn dropbox_rpc(
    p: &FakeProviders,
    endpoint: &str,
    token: &str,
    argument: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = client()
        .post(format!("{}/dropbox/2/{endpoint}", p.base_url()))
        .bearer_auth(token);
    if let Some(argument) = argument {
        request = request.json(&argument);
    }
    let answer = request.send().await.unwrap();
    let (status, headers) = (answer.status(), answer.headers().clone());
    let text = answer.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// `list_folder` and every `continue` page while `has_more`; returns the entries and the
/// final cursor.
async fn dropbox_listing(p: &FakeProviders, token: &str, first: Value) -> (Vec<Value>, String) {
    let (status, _, mut page) = dropbox_rpc(p, "files/list_folder", token, Some(first)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut entries = Vec::new();
    loop {
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        let cursor = str_of(&page["cursor"]);
        if page["has_more"] == false {
            return (entries, cursor);
        }
        let argument = serde_json::json!({"cursor": cursor});
        let (status, _, next) =
            dropbox_rpc(p, "files/list_folder/continue", token, Some(argument)).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        page = next;
    }
}

async fn dropbox_changes(p: &FakeProviders, token: &str, cursor: &str) -> (StatusCode, Value) {
    let argument = serde_json::json!({"cursor": cursor});
    let (status, _, page) =
        dropbox_rpc(p, "files/list_folder/continue", token, Some(argument)).await;
    (status, page)
}

fn root_listing() -> Value {
    serde_json::json!({"path": "", "recursive": true, "include_deleted": false})
}

fn tags_and_paths(entries: &[Value]) -> Vec<(String, String)> {
    let pair = |e: &Value| (str_of(&e[".tag"]), str_of(&e["path_display"]));
    entries.iter().map(pair).collect()
}

#[tokio::test]
async fn dropbox_consent_and_tokens_follow_dropbox_oauth() {
    let p = FakeProviders::start().await;
    let tokens = log_in(&p, Provider::Dropbox).await;
    let asked = p.last_authorize_query("dropbox").unwrap();
    assert_eq!(asked["token_access_type"], "offline");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["account_id"], hub_testkit::DEFAULT_DROPBOX_USER);
    assert!(tokens["uid"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(
        tokens["scope"],
        "account_info.read files.metadata.read files.content.read"
    );
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    let refresh_token = str_of(&tokens["refresh_token"]);

    // HTTP Basic client authentication works as well as the form's, and a refresh answer
    // has no refresh token.
    let answer = client()
        .post(token_url(&p, Provider::Dropbox))
        .basic_auth(
            hub_testkit::DROPBOX_CLIENT_ID,
            Some(hub_testkit::DROPBOX_CLIENT_SECRET),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let refreshed: Value = answer.json().await.unwrap();
    assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
    assert_eq!(refreshed["token_type"], "bearer");
    assert!(str_of(&refreshed["access_token"]).starts_with("sl."));

    // Without token_access_type=offline there is no refresh token.
    let answer = client()
        .get(authorize_url(&p, Provider::Dropbox))
        .query(&[
            ("response_type", "code"),
            ("client_id", hub_testkit::DROPBOX_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "account_info.read"),
            ("state", "s"),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let code = query_of(answer.headers()["location"].to_str().unwrap())["code"].clone();
    let (status, online) = exchange(&p, Provider::Dropbox, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK);
    assert!(online.get("refresh_token").is_none(), "{online}");

    // The PKCE verifier is checked.
    let code = consent(&p, Provider::Dropbox, "s").await["code"].clone();
    let (status, error) = exchange(&p, Provider::Dropbox, &code, &format!("{VERIFIER}x")).await;
    assert_eq!(
        (status, &error["error"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_grant"))
    );
}

#[tokio::test]
async fn dropbox_identity_checks_the_call_shape_and_the_token() {
    let p = FakeProviders::start().await;
    p.set_next_identity(
        "dropbox",
        "dbid:AAD-second-user-0000000000000000000",
        "dora@example.com",
    );
    let token = str_of(&log_in(&p, Provider::Dropbox).await["access_token"]);
    let url = format!("{}/dropbox/2/users/get_current_account", p.base_url());

    // No body and no Content-Type, or the literal null as JSON: both fine.
    let answer = client()
        .post(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let account: Value = answer.json().await.unwrap();
    assert_eq!(
        account["account_id"],
        "dbid:AAD-second-user-0000000000000000000"
    );
    assert_eq!(account["email"], "dora@example.com");
    assert!(account["name"]["display_name"].is_string());
    let (status, _, _) =
        dropbox_rpc(&p, "users/get_current_account", &token, Some(Value::Null)).await;
    assert_eq!(status, StatusCode::OK);

    // `{}` is not null, and a form content type is refused: 400 in plain text.
    let (status, _, body) = dropbox_rpc(
        &p,
        "users/get_current_account",
        &token,
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        str_of(&body).contains("users/get_current_account"),
        "{body}"
    );
    let answer = client()
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(answer.text().await.unwrap().contains("Content-Type"));

    // An expired token and an unknown one are told apart.
    let (status, _, body) = dropbox_rpc(&p, "users/get_current_account", "sl.nonsense", None).await;
    assert_eq!(
        (status, &body["error"][".tag"]),
        (
            StatusCode::UNAUTHORIZED,
            &Value::from("invalid_access_token")
        )
    );
    p.expire_access_tokens();
    let (status, _, body) = dropbox_rpc(&p, "users/get_current_account", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        str_of(&body["error_summary"]).starts_with("expired_access_token/"),
        "{body}"
    );
    assert_eq!(body["error"][".tag"], "expired_access_token");
}

#[tokio::test]
async fn dropbox_scopes_are_enforced_and_revocation_ends_the_grant() {
    let p = FakeProviders::start().await;
    p.grant_only_on_next_consent("dropbox", "account_info.read");
    let tokens = log_in(&p, Provider::Dropbox).await;
    let token = str_of(&tokens["access_token"]);
    let (status, _, body) =
        dropbox_rpc(&p, "files/list_folder", &token, Some(root_listing())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"][".tag"], "missing_scope");
    assert_eq!(body["error"]["required_scope"], "files.metadata.read");

    let (status, _, body) = dropbox_rpc(&p, "auth/token/revoke", &token, None).await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    assert_eq!(p.revoked_tokens(), vec![token.clone()]);
    let (status, _, body) = dropbox_rpc(&p, "users/get_current_account", &token, None).await;
    assert_eq!(
        (status, &body["error"][".tag"]),
        (
            StatusCode::UNAUTHORIZED,
            &Value::from("invalid_access_token")
        )
    );
    let (status, error) = refresh(&p, Provider::Dropbox, &str_of(&tokens["refresh_token"])).await;
    assert_eq!(
        (status, &error["error"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_grant"))
    );
}

#[tokio::test]
async fn dropbox_lists_pages_then_reports_changes_and_deleted_folders_once() {
    let p = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_DROPBOX_USER;
    p.add_file("dropbox", user, FileSpec::folder("id:docs", "Docs"));
    p.add_file(
        "dropbox",
        user,
        FileSpec::new("id:a", "A.txt").in_folder("id:docs"),
    );
    p.add_file(
        "dropbox",
        user,
        FileSpec::new("id:b", "b.txt").in_folder("id:docs"),
    );
    p.add_file("dropbox", user, FileSpec::new("id:top", "Top.txt"));
    p.set_dropbox_page_size(2);
    let token = str_of(&log_in(&p, Provider::Dropbox).await["access_token"]);

    let (entries, cursor) = dropbox_listing(&p, &token, root_listing()).await;
    assert_eq!(
        tags_and_paths(&entries),
        [
            ("folder", "/Docs"),
            ("file", "/Docs/A.txt"),
            ("file", "/Docs/b.txt"),
            ("file", "/Top.txt"),
        ]
        .map(|(t, path)| (t.to_string(), path.to_string()))
    );
    let file = &entries[1];
    assert_eq!(
        (file["id"].as_str(), file["path_lower"].as_str()),
        (Some("id:a"), Some("/docs/a.txt"))
    );
    for field in [
        "server_modified",
        "client_modified",
        "rev",
        "size",
        "content_hash",
    ] {
        assert!(!file[field].is_null(), "{field} missing in {file}");
    }
    assert_eq!(file["content_hash"].as_str().unwrap().len(), 64);
    assert!(entries[0].get("size").is_none(), "folders have no size");
    assert_eq!(p.requests("/dropbox/2/files/list_folder/continue"), 1);

    // Nothing changed: an empty page. Then a rename and a folder deleted with its children:
    // one `deleted` entry for the folder, none for what was in it, and no id on it.
    let (status, page) = dropbox_changes(&p, &token, &cursor).await;
    assert_eq!(
        (status, page["entries"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    let cursor = str_of(&page["cursor"]);
    p.modify_file("dropbox", user, "id:top", "Renamed.txt");
    p.delete_folder_tree("dropbox", user, "id:docs");
    let (status, page) = dropbox_changes(&p, &token, &cursor).await;
    assert_eq!(status, StatusCode::OK);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(
        tags_and_paths(entries),
        [
            ("deleted", "/Top.txt"),
            ("file", "/Renamed.txt"),
            ("deleted", "/Docs")
        ]
        .map(|(t, path)| (t.to_string(), path.to_string()))
    );
    assert!(entries[2].get("id").is_none(), "{}", entries[2]);

    // A fresh listing leaves the deleted ones out.
    let (entries, _) = dropbox_listing(&p, &token, root_listing()).await;
    assert_eq!(
        tags_and_paths(&entries),
        [("file".to_string(), "/Renamed.txt".to_string())]
    );
}

#[tokio::test]
async fn dropbox_reports_moves_at_the_old_path_and_a_renamed_folders_contents_again() {
    let p = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_DROPBOX_USER;
    p.add_file("dropbox", user, FileSpec::folder("id:f", "Old"));
    p.add_file(
        "dropbox",
        user,
        FileSpec::new("id:x", "x.txt").in_folder("id:f"),
    );
    p.add_file("dropbox", user, FileSpec::new("id:a", "a.txt"));
    let token = str_of(&log_in(&p, Provider::Dropbox).await["access_token"]);
    let (_, cursor) = dropbox_listing(&p, &token, root_listing()).await;

    // a.txt becomes b.txt and a new a.txt appears: Dropbox reports each changed path's
    // state, so /a.txt comes as the new file alone (no `deleted`: a client applies
    // list_folder's replacement rule) and /b.txt as the moved one.
    p.modify_file("dropbox", user, "id:a", "b.txt");
    p.add_file("dropbox", user, FileSpec::new("id:new-a", "a.txt"));
    p.modify_file("dropbox", user, "id:f", "New");
    let (status, page) = dropbox_changes(&p, &token, &cursor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        tags_and_paths(page["entries"].as_array().unwrap()),
        [
            ("file", "/b.txt"),
            ("file", "/a.txt"),
            ("deleted", "/Old"),
            ("folder", "/New"),
            ("file", "/New/x.txt"),
        ]
        .map(|(t, path)| (t.to_string(), path.to_string()))
    );

    // A later change without a move has no `deleted` entry.
    let cursor = str_of(&page["cursor"]);
    p.modify_file("dropbox", user, "id:a", "b.txt");
    let (_, page) = dropbox_changes(&p, &token, &cursor).await;
    assert_eq!(
        tags_and_paths(page["entries"].as_array().unwrap()),
        [("file".to_string(), "/b.txt".to_string())]
    );
}

#[tokio::test]
async fn dropbox_cursors_reset_and_faults_carry_dropbox_errors() {
    let p = FakeProviders::start().await;
    p.add_files("dropbox", 3);
    let token = str_of(&log_in(&p, Provider::Dropbox).await["access_token"]);
    let (entries, cursor) = dropbox_listing(&p, &token, root_listing()).await;
    assert_eq!(entries.len(), 3);

    p.reset_cursors();
    let (status, body) = dropbox_changes(&p, &token, &cursor).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        str_of(&body["error_summary"]).starts_with("reset/"),
        "{body}"
    );
    assert_eq!(body["error"][".tag"], "reset");
    let (entries, _) = dropbox_listing(&p, &token, root_listing()).await;
    assert_eq!(entries.len(), 3, "a fresh listing works after a reset");

    p.fail_next("/dropbox/2/files", 429, Some("7"), 1);
    let (status, headers, body) =
        dropbox_rpc(&p, "files/list_folder", &token, Some(root_listing())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(body["error"]["reason"][".tag"], "too_many_requests");
    assert_eq!(body["error"]["retry_after"], 7);

    p.fail_next_dropbox("/dropbox/2/files/list_folder", "path/not_found", 1);
    let (status, _, body) =
        dropbox_rpc(&p, "files/list_folder", &token, Some(root_listing())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error_summary"], "path/not_found/...");
    assert_eq!(body["error"]["path"][".tag"], "not_found");

    // The root is "" (not "/"); a missing folder is a 409 path/not_found.
    let slash = serde_json::json!({"path": "/", "recursive": true});
    let (status, _, _) = dropbox_rpc(&p, "files/list_folder", &token, Some(slash)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let missing = serde_json::json!({"path": "/nowhere"});
    let (status, _, body) = dropbox_rpc(&p, "files/list_folder", &token, Some(missing)).await;
    assert_eq!(
        (status, &body["error"]["path"][".tag"]),
        (StatusCode::CONFLICT, &Value::from("not_found"))
    );
}

#[tokio::test]
async fn dropbox_fresh_identities_are_per_consent() {
    let p = FakeProviders::start().await;
    p.add_files("dropbox", 2);
    p.fresh_identity_per_consent();
    let first = log_in(&p, Provider::Dropbox).await;
    let second = log_in(&p, Provider::Dropbox).await;
    assert_ne!(first["account_id"], second["account_id"]);
    // Dropbox's account ids are exactly 40 characters (users.AccountId).
    for account in [&first, &second] {
        assert_eq!(str_of(&account["account_id"]).len(), 40, "{account}");
    }
    let (_, _, account) = dropbox_rpc(
        &p,
        "users/get_current_account",
        &str_of(&second["access_token"]),
        None,
    )
    .await;
    assert_eq!(account["account_id"], second["account_id"]);
    let (entries, _) = dropbox_listing(&p, &str_of(&second["access_token"]), root_listing()).await;
    assert_eq!(
        entries.len(),
        2,
        "a fresh identity's drive starts as a copy"
    );
}

#[tokio::test]
async fn dropbox_env_vars_point_at_the_stand_in() {
    let p = FakeProviders::start().await;
    let env: HashMap<String, String> = p.dropbox_env_vars().into_iter().collect();
    assert_eq!(env["DROPBOX_API_URL"], format!("{}/dropbox", p.base_url()));
    assert_eq!(
        env["DROPBOX_CONTENT_URL"],
        format!("{}/dropbox/content", p.base_url())
    );
    assert_eq!(
        env["DROPBOX_AUTH_URL"],
        format!("{}/dropbox/oauth2/authorize", p.base_url())
    );
    assert_eq!(
        env["DROPBOX_TOKEN_URL"],
        format!("{}/dropbox/oauth2/token", p.base_url())
    );
    assert_eq!(env["DROPBOX_CLIENT_ID"], hub_testkit::DROPBOX_CLIENT_ID);
    assert_eq!(env.len(), 6);
}

// ------------------------------------------------------------ push notifications

/// One request the test receiver got.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

type Inbox = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;

/// A tiny receiver standing in for the hub's webhook routes: `/google` answers 200, `/graph`
/// echoes Graph's `validationToken` in text/plain and answers notifications 202, `/dropbox`
/// echoes Dropbox's `challenge` and answers notifications 200, `/wrong` echoes nothing.
async fn receiver() -> (String, Inbox) {
    use axum::extract::{Request, State};
    use axum::response::IntoResponse;

    async fn record(State(inbox): State<Inbox>, request: Request) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
        let query: HashMap<String, String> = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let path = parts.uri.path().to_string();
        inbox.lock().unwrap().push(Received {
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            headers,
            body,
        });
        let echo = query.get("validationToken").or(query.get("challenge"));
        let text = [("content-type", "text/plain")];
        match (path.as_str(), echo) {
            ("/wrong", _) => (text, "not the token").into_response(),
            (_, Some(echo)) => (text, echo.clone()).into_response(),
            ("/graph", None) => axum::http::StatusCode::ACCEPTED.into_response(),
            _ => axum::http::StatusCode::OK.into_response(),
        }
    }

    let inbox = Inbox::default();
    let app = axum::Router::new()
        .fallback(record)
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

/// Waits (up to 5 s) until the inbox holds `n` requests; returns them.
async fn received(inbox: &Inbox, n: usize) -> Vec<Received> {
    for _ in 0..100 {
        if inbox.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = inbox.lock().unwrap().clone();
    assert!(got.len() >= n, "expected {n} requests, got {got:?}");
    got
}

async fn send_json(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let answer = client()
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn drive_watch_sends_sync_then_changes_until_the_channel_is_stopped() {
    use hub_testkit::Authenticity;
    let p = FakeProviders::start().await;
    let (hook, inbox) = receiver().await;
    let token = str_of(&log_in(&p, Provider::Google).await["access_token"]);
    let watch = format!("{}/google/drive/v3/changes/watch", p.base_url());
    let in_two_weeks = chrono::Utc::now().timestamp_millis() + 14 * 24 * 3600 * 1000;
    let channel = serde_json::json!({
        "id": "chan-1", "type": "web_hook", "address": format!("{hook}/google"),
        "token": "channel-secret", "expiration": in_two_weeks,
    });

    let (status, body) = send_json(reqwest::Method::POST, &watch, &token, channel.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "pageToken is required");
    assert_eq!(drive_reason(&body), "required");
    let url = format!("{watch}?pageToken=42");
    let (status, created) = send_json(reqwest::Method::POST, &url, &token, channel.clone()).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["kind"], "api#channel");
    assert_eq!(
        (created["id"].as_str(), created["token"].as_str()),
        (Some("chan-1"), Some("channel-secret"))
    );
    assert!(created["resourceUri"]
        .as_str()
        .unwrap()
        .contains("pageToken=42"));
    let expiration: i64 = created["expiration"].as_str().unwrap().parse().unwrap();
    let week = chrono::Utc::now().timestamp_millis() + 7 * 24 * 3600 * 1000;
    assert!(expiration <= week + 1000, "a week at most");
    let (status, body) = send_json(reqwest::Method::POST, &url, &token, channel).await;
    assert_eq!(
        (status, drive_reason(&body)),
        (StatusCode::BAD_REQUEST, "channelIdNotUnique")
    );

    // The sync message comes first, on its own.
    let sync = received(&inbox, 1).await.remove(0);
    assert_eq!(
        (sync.method.as_str(), sync.path.as_str()),
        ("POST", "/google")
    );
    assert_eq!(sync.headers["x-goog-resource-state"], "sync");
    assert_eq!(sync.headers["x-goog-message-number"], "1");
    assert_eq!(sync.headers["x-goog-channel-id"], "chan-1");
    assert_eq!(sync.headers["x-goog-channel-token"], "channel-secret");
    assert_eq!(
        sync.headers["x-goog-resource-id"],
        str_of(&created["resourceId"])
    );
    assert_eq!(
        sync.headers["x-goog-resource-uri"],
        str_of(&created["resourceUri"])
    );
    assert!(sync.headers["x-goog-channel-expiration"].ends_with(" GMT"));

    let user = hub_testkit::DEFAULT_GOOGLE_USER;
    let sent = p.notify_drive_change(user, Authenticity::Genuine).await;
    assert_eq!(
        sent.iter().map(|d| d.status).collect::<Vec<_>>(),
        [Some(200)]
    );
    p.notify_drive_change(user, Authenticity::Forged).await;
    let got = received(&inbox, 3).await;
    assert_eq!(got[1].headers["x-goog-resource-state"], "change");
    assert_eq!(got[1].headers["x-goog-message-number"], "2");
    assert_eq!(got[1].headers["x-goog-channel-token"], "channel-secret");
    assert_ne!(got[2].headers["x-goog-channel-token"], "channel-secret");

    let stop = format!("{}/google/drive/v3/channels/stop", p.base_url());
    let which = serde_json::json!({"id": "chan-1", "resourceId": created["resourceId"]});
    let (status, _) = send_json(reqwest::Method::POST, &stop, &token, which.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send_json(reqwest::Method::POST, &stop, &token, which).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(p.live_drive_channels(user).is_empty());
    assert!(p
        .notify_drive_change(user, Authenticity::Genuine)
        .await
        .is_empty());
}

#[tokio::test]
async fn graph_subscriptions_are_validated_first_then_notify_renew_and_delete() {
    use hub_testkit::{Authenticity, LifecycleEvent};
    let p = FakeProviders::start().await;
    let (hook, inbox) = receiver().await;
    // A drive subscription needs Files.ReadWrite (or .All): with Files.Read, 403.
    let reader = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    let scope = "offline_access Files.ReadWrite User.Read";
    let token = str_of(&log_in_asking(&p, Provider::Microsoft, scope).await["access_token"]);
    let subscriptions = format!("{}/graph/v1.0/subscriptions", p.base_url());
    let in_a_day = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let subscription = |notification: &str| {
        serde_json::json!({
            "changeType": "updated", "notificationUrl": format!("{hook}{notification}"),
            "lifecycleNotificationUrl": format!("{hook}/graph"), "resource": "me/drive/root",
            "expirationDateTime": in_a_day, "clientState": "subscription-secret",
        })
    };

    let (status, body) = send_json(
        reqwest::Method::POST,
        &subscriptions,
        &reader,
        subscription("/graph"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "ExtensionError");
    // An endpoint that does not echo the token: no subscription.
    let (status, body) = send_json(
        reqwest::Method::POST,
        &subscriptions,
        &token,
        subscription("/wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let user = hub_testkit::DEFAULT_MICROSOFT_USER;
    assert!(p.live_graph_subscriptions(user).is_empty());
    let mut too_long = subscription("/graph");
    too_long["expirationDateTime"] =
        Value::from((chrono::Utc::now() + chrono::Duration::minutes(42_301)).to_rfc3339());
    let (status, _) = send_json(reqwest::Method::POST, &subscriptions, &token, too_long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    inbox.lock().unwrap().clear();
    let (status, created) = send_json(
        reqwest::Method::POST,
        &subscriptions,
        &token,
        subscription("/graph"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = str_of(&created["id"]);
    assert_eq!(p.live_graph_subscriptions(user), vec![id.clone()]);
    // Both URLs were validated before the answer.
    let validations = inbox.lock().unwrap().clone();
    assert_eq!(validations.len(), 2);
    assert!(validations
        .iter()
        .all(|v| v.method == "POST" && v.query.contains_key("validationToken")));

    let sent = p.notify_graph_change(user, Authenticity::Genuine).await;
    assert_eq!(sent[0].status, Some(202));
    p.notify_graph_change(user, Authenticity::Forged).await;
    p.send_graph_lifecycle_event(user, LifecycleEvent::ReauthorizationRequired)
        .await;
    let got = received(&inbox, 5).await;
    let bodies: Vec<Value> = got[2..]
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let change = &bodies[0]["value"][0];
    assert_eq!(
        (
            change["subscriptionId"].as_str(),
            change["clientState"].as_str()
        ),
        (Some(id.as_str()), Some("subscription-secret"))
    );
    assert_eq!(change["changeType"], "updated");
    assert!(change["tenantId"].is_string() && change["subscriptionExpirationDateTime"].is_string());
    assert_ne!(bodies[1]["value"][0]["clientState"], "subscription-secret");
    assert_eq!(
        bodies[2]["value"][0]["lifecycleEvent"],
        "reauthorizationRequired"
    );

    let one = format!("{subscriptions}/{id}");
    let in_two_days = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (status, renewed) = send_json(
        reqwest::Method::PATCH,
        &one,
        &token,
        serde_json::json!({"expirationDateTime": in_two_days}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let renewed_until =
        chrono::DateTime::parse_from_rfc3339(renewed["expirationDateTime"].as_str().unwrap())
            .unwrap();
    assert!(renewed_until > chrono::Utc::now() + chrono::Duration::days(1));
    let answer = client()
        .delete(&one)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let answer = client()
        .delete(&one)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);

    // `subscriptionRemoved`: Graph dropped it, and so does the stand-in.
    let (_, again) = send_json(
        reqwest::Method::POST,
        &subscriptions,
        &token,
        subscription("/graph"),
    )
    .await;
    let sent = p
        .send_graph_lifecycle_event(user, LifecycleEvent::SubscriptionRemoved)
        .await;
    assert_eq!(sent[0].status, Some(202));
    assert!(p.live_graph_subscriptions(user).is_empty());
    let answer = client()
        .delete(format!("{subscriptions}/{}", str_of(&again["id"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dropbox_webhooks_are_verified_then_signed_with_the_app_secret() {
    use hmac::{Hmac, Mac};
    use hub_testkit::Authenticity;
    let p = FakeProviders::start().await;
    let (hook, inbox) = receiver().await;
    assert!(!p.register_dropbox_webhook(&format!("{hook}/wrong")).await);
    assert!(p.register_dropbox_webhook(&format!("{hook}/dropbox")).await);
    let challenge = &received(&inbox, 2).await[1];
    assert_eq!(challenge.method, "GET");
    assert!(challenge.query.contains_key("challenge"));

    let account = hub_testkit::DEFAULT_DROPBOX_USER;
    let sent = p.notify_dropbox(&[account], Authenticity::Genuine).await;
    assert_eq!(sent.status, Some(200));
    p.notify_dropbox(&[account], Authenticity::Forged).await;
    let got = received(&inbox, 4).await;
    let signature_of = |body: &[u8]| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(hub_testkit::DROPBOX_CLIENT_SECRET.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    };
    let genuine = &got[2];
    assert_eq!(
        genuine.headers["x-dropbox-signature"],
        signature_of(&genuine.body)
    );
    let body: Value = serde_json::from_slice(&genuine.body).unwrap();
    assert_eq!(
        body["list_folder"]["accounts"],
        serde_json::json!([account])
    );
    assert!(body["delta"]["users"][0].is_u64());
    let forged = &got[3];
    assert_ne!(
        forged.headers["x-dropbox-signature"],
        signature_of(&forged.body)
    );
}

#[tokio::test]
async fn graph_sites_need_a_sites_scope_and_a_shared_folder_lists_its_children() {
    let p = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_MICROSOFT_USER;
    p.set_graph_business(true);
    p.follow_site(
        user,
        "contoso.sharepoint.com,s1,w1",
        "Sales",
        &[("b!lib", "Documents")],
    );
    p.add_library_file("b!lib", FileSpec::new("L1", "q1.xlsx"));
    p.add_file(
        "onedrive",
        "ms-user-2",
        FileSpec::folder("PROJECT", "Project"),
    );
    p.add_file(
        "onedrive",
        "ms-user-2",
        FileSpec::new("P1", "a.txt").in_folder("PROJECT"),
    );
    let token = str_of(&log_in(&p, Provider::Microsoft).await["access_token"]);
    let graph = format!("{}/graph/v1.0", p.base_url());

    // `followedSites` and a site's drives need Sites.Read.All, which this token lacks.
    let (status, _, body) = get(&format!("{graph}/me/followedSites"), &token).await;
    assert_eq!(
        (status, str_of(&body["error"]["code"])),
        (StatusCode::FORBIDDEN, "accessDenied".into())
    );
    // A library's delta needs Files.Read only; its items name the library's drive.
    let (items, _) = delta_round(&format!("{graph}/drives/b!lib/root/delta"), &token).await;
    let item = items
        .iter()
        .find(|i| i["id"] == "L1")
        .expect("the library's file");
    assert_eq!(item["parentReference"]["driveId"], "b!lib");
    assert_eq!(item["parentReference"]["driveType"], "documentLibrary");
    let (status, _, _) = get(&format!("{graph}/drives/b!gone/root/delta"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another user's drive is closed until that user shares a folder with this one.
    let children = format!("{graph}/drives/drive-ms-user-2/items/PROJECT/children");
    let (status, _, _) = get(&children, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    p.add_file(
        "onedrive",
        user,
        FileSpec::remote_folder("LOCAL", "Project", "ms-user-2", "PROJECT"),
    );
    let (status, _, body) = get(&children, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["P1"]);
    let (status, _, _) = get(
        &format!("{graph}/drives/drive-ms-user-2/items/NOPE/children"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The shared folder shows in the user's delta with a `remoteItem` and no `folder` facet.
    let (items, _) = delta_round(&format!("{graph}/me/drive/root/delta"), &token).await;
    let local = items
        .iter()
        .find(|i| i["id"] == "LOCAL")
        .expect("the shared folder");
    assert!(local.get("folder").is_none(), "{local}");
    assert_eq!(local["remoteItem"]["id"], "PROJECT");
    assert_eq!(
        local["remoteItem"]["parentReference"]["driveId"],
        "drive-ms-user-2"
    );
}
