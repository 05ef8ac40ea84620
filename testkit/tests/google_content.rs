//! The Drive stand-in's file content over plain HTTP, as Drive documents it: `files.get` with
//! `capabilities` and `exportLinks`, `alt=media` with one `Range` (206, 416), `files.export`
//! and its 10 MB limit, the export links without it, `about.get`'s `exportFormats`, and the
//! refusals: a metadata-only grant, a flagged file, a download turned off, a Doc downloaded.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hub_testkit::{
    FakeProviders, FileSpec, DEFAULT_GOOGLE_USER, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET,
};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

const VERIFIER: &str = "a-verifier-of-forty-three-or-more-characters-0123456789";
const REDIRECT: &str = "http://hub.test/auth/google/callback";
const USER: &str = DEFAULT_GOOGLE_USER;
const DOC: &str = "application/vnd.google-apps.document";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Consents to `scope` and exchanges the code; the access token.
async fn access_token(p: &FakeProviders, scope: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let answer = client()
        .get(format!("{}/google/o/oauth2/v2/auth", p.base_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", GOOGLE_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "s"),
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    let answer = client()
        .post(format!("{}/google/token", p.base_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", GOOGLE_CLIENT_ID),
            ("client_secret", GOOGLE_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let tokens: Value = answer.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

async fn read_token(p: &FakeProviders) -> String {
    access_token(
        p,
        "openid email https://www.googleapis.com/auth/drive.readonly",
    )
    .await
}

/// GET with the token (and `range`); status, headers, body.
async fn fetch(
    url: &str,
    token: &str,
    range: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = client().get(url).bearer_auth(token);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let answer = request.send().await.unwrap();
    let (status, headers) = (answer.status(), answer.headers().clone());
    (status, headers, answer.bytes().await.unwrap().to_vec())
}

fn reason(body: &[u8]) -> String {
    let error: Value = serde_json::from_slice(body).unwrap();
    error["error"]["errors"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn native(id: &str, mime_type: &str) -> FileSpec {
    FileSpec {
        mime_type: mime_type.into(),
        size: None,
        ..FileSpec::new(id, format!("{id} doc"))
    }
}

#[tokio::test]
async fn alt_media_serves_the_bytes_whole_and_by_range() {
    let p = FakeProviders::start().await;
    p.add_file("google", USER, FileSpec::new("bin", "every byte.bin"));
    let bytes: Vec<u8> = (0..1000).map(|i| (i % 256) as u8).collect();
    p.set_google_content(USER, "bin", &bytes);
    let token = read_token(&p).await;
    let media = format!("{}/google/drive/v3/files/bin?alt=media", p.base_url());

    let (status, headers, body) = fetch(&media, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
    assert_eq!(headers["content-length"], "1000");

    let (status, headers, body) = fetch(&media, &token, Some("bytes=10-19")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &bytes[10..20]);
    assert_eq!(headers["content-range"], "bytes 10-19/1000");
    let (_, _, tail) = fetch(&media, &token, Some("bytes=-5")).await;
    assert_eq!(tail, &bytes[995..]);

    let (status, headers, _) = fetch(&media, &token, Some("bytes=1000-")).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], "bytes */1000");

    // The size in the resource is the bytes'.
    let get = format!(
        "{}/google/drive/v3/files/bin?fields=size,capabilities/canDownload",
        p.base_url()
    );
    let (status, _, body) = fetch(&get, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let resource: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        resource,
        serde_json::json!({"size": "1000", "capabilities": {"canDownload": true}})
    );
}

#[tokio::test]
async fn generated_content_is_served_by_range_without_being_held() {
    let p = FakeProviders::start().await;
    p.add_file("google", USER, FileSpec::new("big", "big.bin"));
    let size: u64 = 1 << 40; // a terabyte: only what is asked is made
    p.set_google_generated_content(USER, "big", size);
    let token = read_token(&p).await;
    let media = format!("{}/google/drive/v3/files/big?alt=media", p.base_url());
    let first = size - 70_000;
    let (status, headers, body) = fetch(&media, &token, Some(&format!("bytes={first}-"))).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        headers["content-range"],
        format!("bytes {first}-{}/{size}", size - 1).as_str()
    );
    let expected: Vec<u8> = (first..size).map(hub_testkit::generated_byte).collect();
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_metadata_only_grant_lists_but_reads_no_bytes() {
    let p = FakeProviders::start().await;
    p.add_file("google", USER, FileSpec::new("bin", "a.bin"));
    p.add_file("google", USER, native("doc", DOC));
    let token = access_token(
        &p,
        "openid email https://www.googleapis.com/auth/drive.metadata.readonly",
    )
    .await;
    let base = p.base_url();
    let (status, _, _) = fetch(&format!("{base}/google/drive/v3/files/bin"), &token, None).await;
    assert_eq!(status, StatusCode::OK, "metadata is readable");
    for url in [
        format!("{base}/google/drive/v3/files/bin?alt=media"),
        format!("{base}/google/drive/v3/files/doc/export?mimeType=application%2Fpdf"),
        format!("{base}/google/feeds/download/export?id=doc&mimeType=application%2Fpdf"),
    ] {
        let (status, _, body) = fetch(&url, &token, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}");
        assert_eq!(reason(&body), "insufficientPermissions", "{url}");
    }
}

#[tokio::test]
async fn native_files_export_up_to_ten_megabytes_and_their_links_past_it() {
    let p = FakeProviders::start().await;
    p.add_file("google", USER, native("doc", DOC));
    p.add_file("google", USER, native("big-doc", DOC));
    p.set_google_generated_export("big-doc", 11 << 20);
    let token = read_token(&p).await;
    let base = p.base_url();

    let about = format!("{base}/google/drive/v3/about?fields=exportFormats");
    let (status, _, body) = fetch(&about, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let about: Value = serde_json::from_slice(&body).unwrap();
    let doc_formats = about["exportFormats"][DOC].as_array().unwrap();
    assert!(doc_formats.contains(&Value::from("text/markdown")));
    assert!(doc_formats.contains(&Value::from(DOCX)));
    let (status, _, body) = fetch(&format!("{base}/google/drive/v3/about"), &token, None).await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (StatusCode::BAD_REQUEST, "required")
    );

    let export = format!("{base}/google/drive/v3/files/doc/export?mimeType=text%2Fmarkdown");
    let (status, headers, body) = fetch(&export, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/markdown");
    assert_eq!(body, p.google_export("doc", "text/markdown"));
    let unsupported = format!("{base}/google/drive/v3/files/doc/export?mimeType=image%2Fpng");
    assert_eq!(
        fetch(&unsupported, &token, None).await.0,
        StatusCode::BAD_REQUEST
    );

    let big = format!("{base}/google/drive/v3/files/big-doc/export?mimeType=application%2Fpdf");
    let (status, _, body) = fetch(&big, &token, None).await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (StatusCode::FORBIDDEN, "exportSizeLimitExceeded")
    );
    let get = format!("{base}/google/drive/v3/files/big-doc?fields=exportLinks,capabilities");
    let resource: Value = serde_json::from_slice(&fetch(&get, &token, None).await.2).unwrap();
    let link = resource["exportLinks"]["application/pdf"].as_str().unwrap();
    let (status, _, body) = fetch(link, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), 11 << 20);
    assert_eq!(body, p.google_export("big-doc", "application/pdf"));
    assert_eq!(
        fetch(link, "not-a-token", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn drive_refuses_what_it_gives_no_bytes_of() {
    let p = FakeProviders::start().await;
    p.add_file("google", USER, native("doc", DOC));
    p.add_file("google", USER, FileSpec::new("bad", "bad.exe"));
    p.add_file(
        "google",
        USER,
        FileSpec::new("kept", "kept.pdf").shared_with_me(),
    );
    p.join_shared_drive(USER, "0AshD", "Team");
    p.add_file(
        "google",
        USER,
        FileSpec::new("shared", "shared.bin").in_shared_drive("0AshD"),
    );
    p.flag_google_abusive("bad");
    p.disable_google_download("kept");
    let token = read_token(&p).await;
    let base = p.base_url();
    let media = |id: &str| format!("{base}/google/drive/v3/files/{id}?alt=media");

    let (status, _, body) = fetch(&media("doc"), &token, None).await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (StatusCode::FORBIDDEN, "fileNotDownloadable")
    );
    let (status, _, body) = fetch(&media("bad"), &token, None).await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (StatusCode::FORBIDDEN, "cannotDownloadAbusiveFile")
    );
    let acknowledged = format!("{}&acknowledgeAbuse=true", media("bad"));
    assert_eq!(
        fetch(&acknowledged, &token, None).await.0,
        StatusCode::OK,
        "its owner may"
    );
    let (status, _, body) = fetch(&media("kept"), &token, None).await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (StatusCode::FORBIDDEN, "cannotDownloadFile")
    );
    let get = format!("{base}/google/drive/v3/files/kept?fields=capabilities/canDownload");
    let resource: Value = serde_json::from_slice(&fetch(&get, &token, None).await.2).unwrap();
    assert_eq!(resource["capabilities"]["canDownload"], false);
    let export = format!("{base}/google/drive/v3/files/bad/export?mimeType=application%2Fpdf");
    let (status, _, body) = fetch(&export, &token, None).await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (StatusCode::FORBIDDEN, "fileNotExportable")
    );

    let (status, _, body) = fetch(&media("missing"), &token, None).await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (StatusCode::NOT_FOUND, "notFound")
    );
    // A shared drive's file, for an app that does not say it supports shared drives.
    assert_eq!(
        fetch(&media("shared"), &token, None).await.0,
        StatusCode::NOT_FOUND
    );
    let all_drives = format!("{}&supportsAllDrives=true", media("shared"));
    assert_eq!(fetch(&all_drives, &token, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_sample_drive_holds_a_file_of_every_byte_value_and_a_doc() {
    let p = FakeProviders::start().await;
    hub_testkit::sample_drive::add_sample_drives(&p);
    let token = read_token(&p).await;
    let base = p.base_url();
    let media = format!("{base}/google/drive/v3/files/1sAmPlEdRiVeByTeSxQz?alt=media");
    let (status, _, body) = fetch(&media, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let every_byte: Vec<u8> = (0..1024).map(|i| (i % 256) as u8).collect();
    assert_eq!(body, every_byte);
    let export =
        format!("{base}/google/drive/v3/files/1sAmPlEdRiVeDoCxQz/export?mimeType=text%2Fmarkdown");
    assert_eq!(fetch(&export, &token, None).await.0, StatusCode::OK);
}
