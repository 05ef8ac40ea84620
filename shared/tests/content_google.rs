//! A Drive file's bytes through the hub (docs/API.md, "File content") against the strict
//! Drive stand-in, on both stores: every Drive file is streamed by the hub's own link, its
//! own bytes by `alt=media` (exact, by range, `HEAD` without Drive, 416), a Google Docs,
//! Sheets, Slides or Drawings file exported in each format Drive lists for it (past 10 MB
//! through its `exportLinks`), the refusals (`export_required`, `unsupported_format`,
//! `not_downloadable`, `file_not_found`, `scope_not_granted`), a refused access token
//! refreshed once, a refused refresh marking the account, the link dying with its account
//! and its expiry, and no token anywhere the app sees.

mod common;
#[path = "support/drive_sync.rs"]
mod drive_sync;

use std::time::Duration;

use futures::TryStreamExt as _;
use hub::content::{ContentLocation, RangeAsked, Served, Shape, Want};
use hub::deadline::Deadline;
use hub::error::{HubError, HubResult};
use hub::model::{AccountStatus, ContentFormat};
use hub::store::Write;
use hub::Hub;
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_GOOGLE_USER};
use sha2::{Digest as _, Sha256};

use drive_sync::{Backend, BACKENDS};

const USER: &str = DEFAULT_GOOGLE_USER;
const DOC: &str = "application/vnd.google-apps.document";
const SHEET: &str = "application/vnd.google-apps.spreadsheet";
const SLIDES: &str = "application/vnd.google-apps.presentation";
const DRAWING: &str = "application/vnd.google-apps.drawing";
const FORM: &str = "application/vnd.google-apps.form";
/// 0 to 255, and again, and part of a third time: every byte value, at offsets that do not
/// line up with a power of two.
const BINARY_SIZE: usize = 700;

fn every_byte() -> Vec<u8> {
    (0..BINARY_SIZE).map(|i| (i % 256) as u8).collect()
}

fn native(id: &str, name: &str, mime_type: &str) -> FileSpec {
    FileSpec {
        mime_type: mime_type.into(),
        size: None,
        ..FileSpec::new(id, name)
    }
}

/// A hub connected to the stand-in's Google user, whose drive holds the test files, synced.
struct Drive {
    providers: FakeProviders,
    hub: Hub,
    _dir: tempfile::TempDir,
    account: String,
}

impl Drive {
    async fn on(backend: Backend) -> Drive {
        let providers = FakeProviders::start().await;
        let mut binary = FileSpec::new("bin", "every byte.bin");
        binary.mime_type = "application/octet-stream".into();
        providers.add_file("google", USER, binary);
        providers.set_google_content(USER, "bin", &every_byte());
        for (id, name, mime_type) in [
            ("doc", "Notes", DOC),
            ("sheet", "Budget", SHEET),
            ("slides", "Deck", SLIDES),
            ("drawing", "Sketch", DRAWING),
            ("form", "Survey", FORM),
            ("site", "Team site", "application/vnd.google-apps.site"),
            ("script", "Macros", "application/vnd.google-apps.script"),
            ("big-doc", "Long report", DOC),
        ] {
            providers.add_file("google", USER, native(id, name, mime_type));
        }
        providers.set_google_generated_export("big-doc", 11 << 20);
        providers.add_file("google", USER, FileSpec::folder("folder", "Folder"));
        providers.add_file(
            "google",
            USER,
            FileSpec::new("kept", "kept.pdf").shared_with_me(),
        );
        providers.disable_google_download("kept");
        providers.add_file("google", USER, FileSpec::new("bad", "bad.exe"));
        providers.flag_google_abusive("bad");
        providers.add_file("google", USER, FileSpec::new("gone", "gone.txt"));
        providers.join_shared_drive(USER, "0A-team", "Team");
        let team = FileSpec::new("team-bin", "team.bin").in_shared_drive("0A-team");
        providers.add_file("google", USER, team);
        providers.set_google_content(USER, "team-bin", b"a shared drive's bytes");
        let (hub, dir) = drive_sync::hub_on(&providers, backend, &[]).await;
        let account = drive_sync::connect(&hub, "google").await;
        drive_sync::sync(&hub, "google", &account).await;
        Drive {
            providers,
            hub,
            _dir: dir,
            account,
        }
    }

    async fn locate(&self, file_id: &str, format: Option<&str>) -> HubResult<ContentLocation> {
        hub::content::locate(&self.hub, &self.account, file_id, format, deadline()).await
    }

    async fn open(&self, url: &str, want: Want) -> HubResult<Served> {
        hub::content::open(&self.hub, token_of(url), want, deadline()).await
    }

    /// The bytes of a hub link, whole or from `range`, with the answer's shape.
    async fn read(&self, url: &str, range: Option<RangeAsked>) -> HubResult<(Shape, Vec<u8>)> {
        let served = self.open(url, Want::Bytes(range)).await?;
        let bytes = match served.body {
            Some(stream) => {
                let chunks: Vec<_> = stream.body.try_collect().await.unwrap();
                chunks.concat()
            }
            None => Vec::new(),
        };
        Ok((served.shape, bytes))
    }

    /// `locate` then `read` whole, for a file that must give its bytes.
    async fn bytes_of(&self, file_id: &str, format: Option<&str>) -> (ContentLocation, Vec<u8>) {
        let location = self.locate(file_id, format).await.unwrap();
        assert!(location.streamed_by_hub, "Drive has no link of its own");
        let (_, bytes) = self.read(&location.url, None).await.unwrap();
        (location, bytes)
    }

    /// No token the stand-in issued is in `text`.
    fn assert_no_token_in(&self, text: &str) {
        for token in self.providers.issued_tokens() {
            assert!(!text.contains(&token), "a token is in {text}");
        }
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

fn token_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

fn code(error: &HubError) -> (u16, &'static str) {
    (error.status(), error.code())
}

async fn binary_bytes_ranges_and_headers(backend: Backend) {
    let drive = Drive::on(backend).await;
    let location = drive.locate("bin", None).await.unwrap();
    assert!(location.streamed_by_hub);
    assert_eq!(location.size, Some(BINARY_SIZE as u64));
    assert!(location.url.starts_with(&drive.hub.config.content_url));
    assert!(location.expires_at.is_some());
    drive.assert_no_token_in(&serde_json::to_string(&location).unwrap());

    let (shape, bytes) = drive.read(&location.url, None).await.unwrap();
    assert_eq!(
        shape,
        Shape::Whole {
            length: Some(BINARY_SIZE as u64)
        }
    );
    assert_eq!(bytes, every_byte(), "every byte value, exactly");

    let range = RangeAsked::parse("bytes=250-269");
    let (shape, bytes) = drive.read(&location.url, range).await.unwrap();
    assert!(
        matches!(shape, Shape::Part { range, size } if (range.first, range.last, size) == (250, 269, BINARY_SIZE as u64)),
        "{shape:?}"
    );
    assert_eq!(bytes, &every_byte()[250..270]);
    let (_, tail) = drive
        .read(&location.url, RangeAsked::parse("bytes=-3"))
        .await
        .unwrap();
    assert_eq!(tail, &every_byte()[BINARY_SIZE - 3..]);

    // HEAD and a range past the end are answered from the link, without Drive.
    let downloads = drive.providers.requests("/google/drive/v3/files/bin");
    let served = drive.open(&location.url, Want::Headers).await.unwrap();
    assert!(served.body.is_none());
    let response = hub::web::served_response(served);
    let headers = response.headers();
    assert_eq!(headers["content-length"], BINARY_SIZE.to_string().as_str());
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("every%20byte.bin"));
    for value in headers.values() {
        drive.assert_no_token_in(value.to_str().unwrap());
    }
    let (shape, bytes) = drive
        .read(
            &location.url,
            RangeAsked::parse(&format!("bytes={BINARY_SIZE}-")),
        )
        .await
        .unwrap();
    assert_eq!(
        shape,
        Shape::Unsatisfiable {
            size: BINARY_SIZE as u64
        }
    );
    assert!(bytes.is_empty());
    assert_eq!(
        drive.providers.requests("/google/drive/v3/files/bin"),
        downloads
    );

    // A shared drive's file (Drive finds it only for an app that supports shared drives).
    let (_, bytes) = drive.bytes_of("team-bin", None).await;
    assert_eq!(bytes, b"a shared drive's bytes");

    // The stored link holds no token either.
    let id = hex::encode(Sha256::digest(token_of(&location.url).as_bytes()));
    let link = drive
        .hub
        .store
        .get_content_link(&id)
        .await
        .unwrap()
        .unwrap();
    drive.assert_no_token_in(&format!("{link:?}"));
    assert_eq!(link.account_id, drive.account);
}

#[tokio::test]
async fn a_binary_file_streams_exactly_whole_and_by_range() {
    for backend in BACKENDS {
        binary_bytes_ranges_and_headers(backend).await;
    }
}

async fn native_exports(backend: Backend) {
    let drive = Drive::on(backend).await;
    let cases = [
        ("doc", "md", "Notes.md"),
        ("doc", "pdf", "Notes.pdf"),
        ("doc", "docx", "Notes.docx"),
        ("sheet", "xlsx", "Budget.xlsx"),
        ("sheet", "csv", "Budget.csv"),
        ("slides", "pptx", "Deck.pptx"),
        ("slides", "pdf", "Deck.pdf"),
        ("drawing", "png", "Sketch.png"),
        ("drawing", "svg", "Sketch.svg"),
    ];
    for (id, format, name) in cases {
        let media_type = ContentFormat::named(format).unwrap().media_type();
        let (location, bytes) = drive.bytes_of(id, Some(format)).await;
        assert_eq!(location.size, None, "an export's size is not known before");
        assert_eq!(
            bytes,
            drive.providers.google_export(id, media_type),
            "{id} as {format}"
        );
        let served = drive.open(&location.url, Want::Headers).await.unwrap();
        assert_eq!(served.source.name, name);
        assert_eq!(served.source.media_type, media_type);
        // An export is not rangeable: a Range is answered whole.
        let (shape, _) = drive
            .read(&location.url, RangeAsked::parse("bytes=0-1"))
            .await
            .unwrap();
        assert_eq!(shape, Shape::Whole { length: None });
    }

    // Past files.export's 10 MB, the file's exportLinks, which have no limit.
    let links = drive.providers.requests("/google/feeds/download/export");
    let (_, bytes) = drive.bytes_of("big-doc", Some("pdf")).await;
    assert_eq!(bytes.len(), 11 << 20);
    assert!(bytes
        .iter()
        .enumerate()
        .all(|(i, b)| *b == hub_testkit::generated_byte(i as u64)));
    assert_eq!(
        drive.providers.requests("/google/feeds/download/export"),
        links + 1
    );
}

#[tokio::test]
async fn native_files_export_in_each_format_drive_lists() {
    for backend in BACKENDS {
        native_exports(backend).await;
    }
}

async fn refusals(backend: Backend) {
    let drive = Drive::on(backend).await;
    // A Doc without a format: the formats Drive lists for Docs that the hub names.
    match drive.locate("doc", None).await.unwrap_err() {
        HubError::ExportRequired { formats } => {
            for format in ["docx", "odt", "rtf", "pdf", "txt", "html", "epub", "md"] {
                assert!(
                    formats.contains(&format.to_string()),
                    "{format} in {formats:?}"
                );
            }
            assert!(!formats.contains(&"xlsx".to_string()));
        }
        other => panic!("{other:?}"),
    }
    let refused = drive.locate("sheet", None).await.unwrap_err();
    assert_eq!(code(&refused), (409, "export_required"));
    assert!(refused.to_string().contains("csv"), "{refused}");

    for (id, format) in [("doc", "xlsx"), ("drawing", "md"), ("bin", "pdf")] {
        let refused = drive.locate(id, Some(format)).await.unwrap_err();
        assert_eq!(
            code(&refused),
            (400, "unsupported_format"),
            "{id} as {format}"
        );
    }
    let refused = drive.locate("doc", Some("png")).await.unwrap_err();
    assert!(
        refused.to_string().contains("docx"),
        "names the allowed: {refused}"
    );
    let refused = drive.locate("doc", Some("exe")).await.unwrap_err();
    assert_eq!(code(&refused), (400, "unsupported_format"));

    for id in ["folder", "form", "site", "script", "kept"] {
        let refused = drive.locate(id, None).await.unwrap_err();
        assert_eq!(code(&refused), (409, "not_downloadable"), "{id}: {refused}");
    }
    let refused = drive.locate("form", Some("pdf")).await.unwrap_err();
    assert_eq!(code(&refused), (409, "not_downloadable"));
    // Drive says a file is flagged only when it is downloaded.
    let location = drive.locate("bad", None).await.unwrap();
    let refused = drive.read(&location.url, None).await.unwrap_err();
    assert_eq!(code(&refused), (409, "not_downloadable"));
    assert!(refused.to_string().contains("malware"), "{refused}");

    for id in ["nothing-by-this-id"] {
        let refused = drive.locate(id, None).await.unwrap_err();
        assert_eq!(code(&refused), (404, "file_not_found"));
    }
    // Deleted at Drive since the index last heard: 404 too, before and after the link.
    let location = drive.locate("gone", None).await.unwrap();
    drive.providers.delete_file("google", "gone");
    let refused = drive.read(&location.url, None).await.unwrap_err();
    assert_eq!(code(&refused), (404, "file_not_found"));
    let refused = drive.locate("gone", None).await.unwrap_err();
    assert_eq!(code(&refused), (404, "file_not_found"));
}

#[tokio::test]
async fn drive_files_without_bytes_are_refused_with_typed_errors() {
    for backend in BACKENDS {
        refusals(backend).await;
    }
}

async fn tokens_and_links(backend: Backend) {
    let drive = Drive::on(backend).await;
    let location = drive.locate("bin", None).await.unwrap();

    // Drive refuses the access token once: the hub refreshes once and reads on.
    let refreshes = drive.providers.requests("/google/token");
    drive.providers.expire_access_tokens();
    let (_, bytes) = drive.read(&location.url, None).await.unwrap();
    assert_eq!(bytes, every_byte());
    assert_eq!(drive.providers.requests("/google/token"), refreshes + 1);

    // The link dies at its expiry.
    let id = hex::encode(Sha256::digest(token_of(&location.url).as_bytes()));
    let mut link = drive
        .hub
        .store
        .get_content_link(&id)
        .await
        .unwrap()
        .unwrap();
    link.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    drive.hub.store.put_content_link(&link).await.unwrap();
    let refused = drive.read(&location.url, None).await.unwrap_err();
    assert!(
        matches!(refused, HubError::ContentLinkInvalid),
        "{refused:?}"
    );

    // An account connected when the hub asked only the metadata scope reads no bytes.
    let mut account = drive
        .hub
        .store
        .get_account(&drive.account)
        .await
        .unwrap()
        .unwrap();
    let (version, scopes) = (account.version, account.scopes.clone());
    account.scopes = [
        "openid",
        "email",
        "https://www.googleapis.com/auth/drive.metadata.readonly",
    ]
    .map(String::from)
    .to_vec();
    account.version += 1;
    assert_eq!(
        drive
            .hub
            .store
            .update_account(&account, version)
            .await
            .unwrap(),
        Write::Done
    );
    let refused = drive.locate("bin", None).await.unwrap_err();
    assert_eq!(code(&refused), (409, "scope_not_granted"));
    assert!(refused.to_string().contains("drive.readonly"), "{refused}");
    account.scopes = scopes;
    account.version += 1;
    assert_eq!(
        drive
            .hub
            .store
            .update_account(&account, version + 1)
            .await
            .unwrap(),
        Write::Done
    );

    // The link dies with its account.
    let location = drive.locate("bin", None).await.unwrap();
    hub::accounts::delete(&drive.hub, &drive.account)
        .await
        .unwrap();
    let refused = drive.read(&location.url, None).await.unwrap_err();
    assert!(
        matches!(refused, HubError::ContentLinkInvalid),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_refused_token_refreshes_once_and_links_die_with_expiry_and_account() {
    for backend in BACKENDS {
        tokens_and_links(backend).await;
    }
}

async fn refused_refresh(backend: Backend) {
    let drive = Drive::on(backend).await;
    let location = drive.locate("bin", None).await.unwrap();
    drive.providers.expire_access_tokens();
    drive.providers.revoke_refresh_tokens("google");
    let refused = drive.read(&location.url, None).await.unwrap_err();
    assert_eq!(code(&refused), (409, "account_needs_reauth"));
    let account = drive
        .hub
        .store
        .get_account(&drive.account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status, AccountStatus::NeedsReauth);
    let refused = drive.locate("bin", None).await.unwrap_err();
    assert_eq!(code(&refused), (409, "account_needs_reauth"));
}

#[tokio::test]
async fn a_refused_refresh_marks_the_account_needs_reauth() {
    for backend in BACKENDS {
        refused_refresh(backend).await;
    }
}
