//! File content through the real binaries under `cargo lambda watch` (docs/API.md, "File
//! content"): `users` answers the content route's 302 and the `content` function streams the
//! hub's links, on the local backend and on the AWS backend (moto). Each provider's binary
//! file, holding every byte value, arrives exactly through the whole chain, fetched from the
//! `Location` with no key and no token (the hub's own link for Google, the provider's for
//! Microsoft, Dropbox and Box); a Google Doc and a Dropbox Paper doc export; no token shows
//! anywhere.

use hub_e2e::aws::AwsResources;
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::{
    FakeProviders, FileSpec, BOX_ROOT_ID, DEFAULT_BOX_USER, DEFAULT_DROPBOX_USER,
    DEFAULT_GOOGLE_USER, DEFAULT_MICROSOFT_USER,
};
use oauth2::reqwest::{self, Method};
use serde_json::Value;

/// Every byte value, several times over, so that a decoding through text anywhere in the
/// chain would show.
fn every_byte(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 256) as u8).collect()
}

#[tokio::test]
async fn content_through_the_real_binaries_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let hub = LocalHub::start(&every_provider(&providers)).await;
    google_content(&providers, &hub).await;
    provider_links(&providers, &hub).await;
}

/// The stand-ins' variables for all four providers.
fn every_provider(providers: &FakeProviders) -> Vec<(String, String)> {
    let mut env = providers.env_vars();
    env.extend(providers.dropbox_env_vars());
    env.extend(providers.box_env_vars());
    env
}

#[tokio::test]
async fn content_through_the_real_binaries_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let aws = AwsResources::create().await;
    let mut env = every_provider(&providers);
    env.extend(aws.env_vars());
    let hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    google_content(&providers, &hub).await;
    provider_links(&providers, &hub).await;
    assert_eq!(aws.dead_letters().await, 0, "no job failed for good");
}

/// The content route's answer, not followed: its status, `Location` and JSON body.
async fn locate(hub: &LocalHub, path: &str) -> (StatusCode, Option<String>, Value) {
    let response = hub.authed(Method::GET, path).send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, location, body)
}

/// Fetches `request` (from [`stranger`]); a request that fails shows the hub's log.
async fn fetch(hub: &LocalHub, request: reqwest::RequestBuilder) -> reqwest::Response {
    match request.send().await {
        Ok(response) => response,
        Err(e) => panic!(
            "fetching a content link failed: {e}; the hub's log:\n{}",
            hub.log()
        ),
    }
}

/// A plain client, as a browser or an ingestion job would fetch the link: no API key.
fn stranger() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn google_content(providers: &FakeProviders, hub: &LocalHub) {
    let bytes = every_byte(256 * 40 + 7);
    providers.add_file(
        "google",
        DEFAULT_GOOGLE_USER,
        FileSpec {
            mime_type: "application/octet-stream".into(),
            ..FileSpec::new("bin-1", "Données \"brutes\".bin")
        },
    );
    providers.set_google_content(DEFAULT_GOOGLE_USER, "bin-1", &bytes);
    providers.add_file(
        "google",
        DEFAULT_GOOGLE_USER,
        FileSpec {
            mime_type: "application/vnd.google-apps.document".into(),
            size: None,
            ..FileSpec::new("doc-1", "Notes")
        },
    );
    providers.set_google_export("doc-1", b"# Notes\n\nexported\n");

    let (status, account) = hub.log_in("google").await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let id = account["id"].as_str().unwrap().to_string();
    hub.sync_provider("google", &id).await;

    // The 302: to the hub's content function, with nothing secret in the URL.
    let (status, location, body) = locate(hub, &format!("/users/{id}/files/bin-1/content")).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    let location: String = location.expect("a Location");
    assert_eq!(body["url"], location.as_str());
    assert_eq!(body["streamed_by_hub"], true);
    assert_eq!(body["size"], bytes.len());
    assert!(
        location.starts_with(&format!("{}/content/", hub.url)),
        "{location}"
    );

    // The bytes, exactly, without the API key.
    let response = fetch(hub, stranger().get(&location)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "private, no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["accept-ranges"], "bytes");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains("filename*=UTF-8''Donn%C3%A9es%20%22brutes%22.bin"),
        "{disposition}"
    );
    let received = response.bytes().await.unwrap();
    assert_eq!(received.len(), bytes.len());
    assert!(received[..] == bytes[..], "the bytes arrive exactly");

    // One range, and HEAD.
    let part = fetch(
        hub,
        stranger().get(&location).header("range", "bytes=256-511"),
    )
    .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 256-511/{}", bytes.len()).as_str()
    );
    assert!(part.bytes().await.unwrap()[..] == bytes[256..512]);
    let head = fetch(hub, stranger().head(&location)).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.bytes().await.unwrap().is_empty());

    // A Google Doc: its export, and the formats it takes.
    let (status, _, body) = locate(hub, &format!("/users/{id}/files/doc-1/content")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("export_required")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("md"), "{body}");
    let (status, export_location, body) =
        locate(hub, &format!("/users/{id}/files/doc-1/content?format=md")).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    let export = fetch(hub, stranger().get(export_location.expect("a Location"))).await;
    assert_eq!(export.status(), StatusCode::OK);
    assert!(export.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    assert_eq!(&export.bytes().await.unwrap()[..], b"# Notes\n\nexported\n");

    // Refusals in the API's shape.
    let (status, _, body) = locate(hub, &format!("/users/{id}/files/nope/content")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("file_not_found"))
    );
    let (status, _, body) =
        locate(hub, &format!("/users/{id}/files/bin-1/content?format=pdf")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_format"))
    );

    // No token anywhere the app or a log reader could see it.
    let log = hub.log();
    let issued = providers.issued_tokens();
    assert!(!issued.is_empty());
    for token in issued {
        assert!(!location.contains(&token), "a token in a content URL");
        assert!(!log.contains(&token), "a token in the logs");
    }

    // The link dies with its account.
    let (status, _) = hub
        .json(hub.authed(Method::DELETE, &format!("/users/{id}")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let dead = fetch(hub, stranger().get(&location)).await;
    assert_eq!(dead.status(), StatusCode::NOT_FOUND);
}

/// Microsoft, Dropbox and Box: the 302 is to the provider's own pre-authenticated link,
/// which serves the bytes exactly to a client with no key and no token; a Dropbox Paper
/// doc comes through the hub's own link, exported.
async fn provider_links(providers: &FakeProviders, hub: &LocalHub) {
    let bytes = every_byte(256 * 12 + 3);
    providers.add_file(
        "onedrive",
        DEFAULT_MICROSOFT_USER,
        FileSpec::new("MSBIN", "data.bin"),
    );
    providers.set_file_bytes("onedrive", DEFAULT_MICROSOFT_USER, "MSBIN", &bytes);
    providers.add_file(
        "dropbox",
        DEFAULT_DROPBOX_USER,
        FileSpec::new("id:bin", "data.bin"),
    );
    providers.set_file_bytes("dropbox", DEFAULT_DROPBOX_USER, "id:bin", &bytes);
    providers.add_file(
        "dropbox",
        DEFAULT_DROPBOX_USER,
        FileSpec::new("id:paper", "Notes.paper"),
    );
    providers.set_file_bytes("dropbox", DEFAULT_DROPBOX_USER, "id:paper", b"# Notes\n");
    let box_file = providers.box_add_file(DEFAULT_BOX_USER, "data.bin", BOX_ROOT_ID);
    providers.set_file_bytes("box", DEFAULT_BOX_USER, &box_file, &bytes);

    for (provider, file_id) in [
        ("onedrive", "MSBIN".to_string()),
        ("dropbox", "id:bin".to_string()),
        ("box", format!("file_{box_file}")),
    ] {
        let (status, account) = hub.log_in(provider).await;
        assert_eq!(status, StatusCode::OK, "{provider}: {account}");
        let id = account["id"].as_str().unwrap().to_string();
        hub.sync_provider(provider, &id).await;
        let path = format!("/users/{id}/files/{}/content", utf8_path_segment(&file_id));
        let (status, location, body) = locate(hub, &path).await;
        assert_eq!(status, StatusCode::FOUND, "{provider}: {body}");
        assert_eq!(body["streamed_by_hub"], false, "{provider}");
        let location = location.expect("a Location");
        assert!(
            !location.starts_with(&hub.url),
            "{provider}: the provider's own link, not the hub's: {location}"
        );
        let response = fetch(hub, stranger().get(&location)).await;
        assert_eq!(response.status(), StatusCode::OK, "{provider}");
        assert!(
            response.bytes().await.unwrap()[..] == bytes[..],
            "{provider}: the bytes arrive exactly"
        );
        for token in providers.issued_tokens() {
            assert!(
                !location.contains(&token),
                "{provider}: a token in the link"
            );
        }
        if provider == "dropbox" {
            let (status, location, body) = locate(
                hub,
                &format!("/users/{id}/files/id%3Apaper/content?format=md"),
            )
            .await;
            assert_eq!(status, StatusCode::FOUND, "{body}");
            assert_eq!(body["streamed_by_hub"], true);
            let export = fetch(hub, stranger().get(location.expect("a Location"))).await;
            assert_eq!(export.status(), StatusCode::OK);
            assert_eq!(
                &export.bytes().await.unwrap()[..],
                &hub_testkit::converted_bytes("md", b"# Notes\n")[..]
            );
        }
    }
}

/// A file id as one path segment (Dropbox's `id:...` holds a colon).
fn utf8_path_segment(id: &str) -> String {
    id.replace(':', "%3A")
}
