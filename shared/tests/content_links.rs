//! File content through the providers' own links (docs/API.md, "File content"), on both
//! stores: Graph's `/content` redirect, Box's `/files/{id}/content` redirect and Dropbox's
//! temporary link, each read without key or token from the stand-in's download host (every
//! byte value, one `Range`, refused once expired); Graph's conversions; Dropbox Paper
//! exports streamed through the hub's own link; every typed refusal; `scope_not_granted` for
//! accounts connected with the listing's scopes alone; one refresh on a 401; and no token in
//! any link.

mod common;
#[path = "support/drive_sync.rs"]
mod drive_sync;

use std::time::Duration;

use futures::StreamExt as _;
use hub::content::{ContentLocation, Want};
use hub::deadline::Deadline;
use hub::error::HubError;
use hub::Hub;
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_MICROSOFT_USER};
use reqwest::StatusCode;

use drive_sync::{Backend, BACKENDS};

/// Every byte value, more than once, and not a whole number of rounds.
fn every_byte() -> Vec<u8> {
    (0..=255u8).cycle().take(256 * 4 + 37).collect()
}

struct Fixture {
    hub: Hub,
    providers: FakeProviders,
    _dir: tempfile::TempDir,
}

async fn fixture(backend: Backend) -> Fixture {
    let providers = FakeProviders::start().await;
    let extra: Vec<(String, String)> = providers.box_env_vars();
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (hub, dir) = drive_sync::hub_on(&providers, backend, &extra).await;
    Fixture {
        hub,
        providers,
        _dir: dir,
    }
}

impl Fixture {
    async fn connect_and_sync(&self, provider: &str) -> String {
        let account = drive_sync::connect(&self.hub, provider).await;
        drive_sync::sync(&self.hub, provider, &account).await;
        account
    }

    async fn locate(
        &self,
        account: &str,
        file: &str,
        format: Option<&str>,
    ) -> Result<ContentLocation, HubError> {
        let deadline = Deadline::after(Duration::from_secs(20));
        hub::content::locate(&self.hub, account, file, format, deadline).await
    }

    /// A provider link: its URL and that it holds no token the stand-ins issued.
    async fn link(&self, account: &str, file: &str, format: Option<&str>) -> String {
        let location = self.locate(account, file, format).await.unwrap();
        assert!(!location.streamed_by_hub, "the provider's own link");
        self.assert_no_token(&location.url);
        self.assert_no_token(&serde_json::to_string(&location).unwrap());
        location.url
    }

    fn assert_no_token(&self, text: &str) {
        for token in self.providers.issued_tokens() {
            assert!(!text.contains(&token), "a token in {text}");
        }
    }

    /// Changes the stored account's granted scopes, as an account connected before the hub
    /// asked for the content scopes holds them.
    async fn grant_only(&self, account: &str, scopes: &[&str]) {
        let mut stored = self.hub.store.get_account(account).await.unwrap().unwrap();
        let version = stored.version;
        stored.scopes = scopes.iter().map(|s| s.to_string()).collect();
        stored.version += 1;
        let written = self
            .hub
            .store
            .update_account(&stored, version)
            .await
            .unwrap();
        assert_eq!(written, hub::store::Write::Done);
    }
}

/// `GET` without key or token, with an optional `Range`.
async fn fetch(
    url: &str,
    range: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let headers = answer.headers().clone();
    (status, headers, answer.bytes().await.unwrap().to_vec())
}

/// The bytes, a range of them and the refusal once every link expired.
async fn assert_link_serves(f: &Fixture, url: &str, bytes: &[u8], expired: StatusCode) {
    let (status, _, body) = fetch(url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes, "the bytes exactly");
    let (status, headers, body) = fetch(url, Some("bytes=250-260")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &bytes[250..=260]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 250-260/{}", bytes.len()).as_str()
    );
    f.providers.expire_download_links();
    let (status, _, body) = fetch(url, None).await;
    assert_eq!(status, expired, "an expired link serves nothing");
    assert_ne!(body, bytes);
}

fn code<T: std::fmt::Debug>(answer: Result<T, HubError>) -> (&'static str, u16) {
    let error = answer.expect_err("a refusal");
    (error.code(), error.status())
}

// ------------------------------------------------------------------------------ Microsoft

const MS_USER: &str = DEFAULT_MICROSOFT_USER;
const SHARER: &str = "ms-sharer";
const LIBRARY: &str = "b!sales-docs";

/// A work user's OneDrive, a followed site's library and a folder another user shared.
fn microsoft_drives(providers: &FakeProviders) {
    providers.set_graph_business(true);
    providers.follow_site(
        MS_USER,
        "contoso.sharepoint.com,s1,w1",
        "Sales",
        &[(LIBRARY, "Documents")],
    );
    providers.add_file("onedrive", MS_USER, FileSpec::new("BIN", "data.bin"));
    providers.set_file_bytes("onedrive", MS_USER, "BIN", &every_byte());
    providers.add_file("onedrive", MS_USER, FileSpec::new("DOCX", "Report.docx"));
    providers.add_file("onedrive", MS_USER, FileSpec::new("LOOP", "Notes.loop"));
    providers.add_file("onedrive", MS_USER, FileSpec::new("JPG", "photo.jpg"));
    // Past the 2 MB Graph converts.
    providers.add_file("onedrive", MS_USER, FileSpec::new("BIG", "Big.pptx"));
    providers.set_file_bytes("onedrive", MS_USER, "BIG", &vec![7; 2 * 1024 * 1024 + 1]);
    providers.add_file("onedrive", MS_USER, FileSpec::folder("DIR", "Folder"));
    providers.add_file(
        "onedrive",
        MS_USER,
        FileSpec::onenote_notebook("NOTEBOOK", "Notes"),
    );
    providers.add_library_file(LIBRARY, FileSpec::new("SALES", "q1.xlsx"));
    providers.set_file_bytes("onedrive", LIBRARY, "SALES", &every_byte()[7..]);
    providers.add_file("onedrive", SHARER, FileSpec::folder("PROJECT", "Project"));
    providers.add_file(
        "onedrive",
        SHARER,
        FileSpec::new("PLAN", "plan.bin").in_folder("PROJECT"),
    );
    providers.set_file_bytes("onedrive", SHARER, "PLAN", &every_byte()[100..]);
    providers.add_file(
        "onedrive",
        MS_USER,
        FileSpec::remote_folder("LOCAL-PROJECT", "Project", SHARER, "PROJECT"),
    );
}

#[tokio::test]
async fn graph_links_serve_the_bytes_of_every_drive_without_a_token() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        microsoft_drives(&f.providers);
        let account = f.connect_and_sync("onedrive").await;
        let cases = [("BIN", every_byte()), ("SALES", every_byte()[7..].to_vec())];
        for (id, bytes) in cases {
            let url = f.link(&account, id, None).await;
            assert!(
                url.starts_with(&format!("{}/graph-download/", f.providers.base_url())),
                "{backend:?} {id}: Graph's download host: {url}"
            );
            assert_link_serves(&f, &url, &bytes, StatusCode::UNAUTHORIZED).await;
        }
    }
}

#[tokio::test]
async fn graph_converts_what_it_lists_and_the_rest_is_refused_by_type() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        microsoft_drives(&f.providers);
        let account = f.connect_and_sync("onedrive").await;
        let original = fetch(&f.link(&account, "DOCX", None).await, None).await.2;
        let pdf = fetch(&f.link(&account, "DOCX", Some("pdf")).await, None).await;
        assert_eq!(pdf.0, StatusCode::OK);
        assert_eq!(pdf.1["content-type"], "application/pdf");
        assert_eq!(pdf.2, hub_testkit::converted_bytes("pdf", &original));
        let original = fetch(&f.link(&account, "LOOP", None).await, None).await.2;
        let html = fetch(&f.link(&account, "LOOP", Some("html")).await, None).await;
        assert_eq!(html.2, hub_testkit::converted_bytes("html", &original));

        let unsupported = ("unsupported_format", 400);
        let not_downloadable = ("not_downloadable", 409);
        for (id, format, expected) in [
            ("DOCX", Some("html"), unsupported),
            ("DOCX", Some("docx"), unsupported),
            ("LOOP", Some("pdf"), unsupported),
            ("JPG", Some("pdf"), unsupported),
            ("BIG", Some("pdf"), unsupported),
            ("BIN", Some("doc"), unsupported),
            ("DIR", None, not_downloadable),
            ("LOCAL-PROJECT", None, not_downloadable),
            ("NOTEBOOK", None, not_downloadable),
            ("NOTEBOOK", Some("pdf"), not_downloadable),
            ("NOWHERE", None, ("file_not_found", 404)),
            // The contents of a folder another user shared are filed under the user's own
            // drive (docs/API.md, "Drives"): the index no longer names the sharer's drive,
            // which Graph's `/content` needs.
            ("PLAN", None, not_downloadable),
        ] {
            assert_eq!(
                code(f.locate(&account, id, format).await),
                expected,
                "{backend:?} {id} {format:?}"
            );
        }
        // Deleted at Microsoft since the sync: Graph's 404 is said as such.
        f.providers.drop_file_silently("onedrive", MS_USER, "JPG");
        assert_eq!(
            code(f.locate(&account, "JPG", None).await),
            not_downloadable
        );
    }
}

#[tokio::test]
async fn a_microsoft_account_connected_with_files_read_alone_gets_scope_not_granted() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        microsoft_drives(&f.providers);
        let account = f.connect_and_sync("onedrive").await;
        let stored = f.hub.store.get_account(&account).await.unwrap().unwrap();
        assert!(stored.scopes.iter().any(|s| s == "Files.Read.All"));
        f.grant_only(
            &account,
            &[
                "offline_access",
                "Files.Read",
                "User.Read",
                "Sites.Read.All",
            ],
        )
        .await;
        assert_eq!(
            code(f.locate(&account, "BIN", None).await),
            ("scope_not_granted", 409)
        );
    }
}

/// Graph gives no bytes to a token without a `Files.*` scope (403 `accessDenied`): the
/// user withdrew it at Microsoft, and must connect again, as an account connected before the
/// hub asked for it.
#[tokio::test]
async fn the_graph_stand_in_refuses_the_download_without_the_files_scope() {
    let f = fixture(Backend::Local).await;
    microsoft_drives(&f.providers);
    let account = f.connect_and_sync("onedrive").await;
    assert!(f.locate(&account, "BIN", None).await.is_ok());
    f.providers
        .withdraw_scopes("onedrive", "offline_access User.Read Sites.Read.All");
    let refused = f.locate(&account, "BIN", None).await.expect_err("refused");
    assert_eq!(refused.code(), "scope_not_granted");
    assert!(refused.to_string().contains("Files.Read.All"), "{refused}");
}

#[tokio::test]
async fn a_refused_microsoft_token_is_refreshed_once_for_the_link() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        microsoft_drives(&f.providers);
        let account = f.connect_and_sync("onedrive").await;
        f.providers.expire_access_tokens();
        let refreshes = f.providers.requests("/microsoft/common/oauth2/v2.0/token");
        let url = f.link(&account, "BIN", None).await;
        assert_eq!(
            f.providers.requests("/microsoft/common/oauth2/v2.0/token"),
            refreshes + 1,
            "one refresh"
        );
        assert_eq!(fetch(&url, None).await.2, every_byte());
    }
}

/// The whole of a hub link's bytes, read through the content function's domain.
async fn read_hub_link(f: &Fixture, url: &str) -> Vec<u8> {
    let token = url.rsplit('/').next().unwrap();
    let deadline = Deadline::after(Duration::from_secs(20));
    let served = hub::content::open(&f.hub, token, Want::Bytes(None), deadline)
        .await
        .unwrap();
    let mut body = served.body.expect("a body").body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    bytes
}

// ------------------------------------------------------------------------------------ Box

const BOX_USER: &str = hub_testkit::DEFAULT_BOX_USER;

/// A file of every byte value, a folder and a second file, in the user's root.
fn box_files(providers: &FakeProviders) -> (String, String, String) {
    let folder = providers.box_add_folder(BOX_USER, "Docs", hub_testkit::BOX_ROOT_ID);
    let file = providers.box_add_file(BOX_USER, "data.bin", hub_testkit::BOX_ROOT_ID);
    providers.set_file_bytes("box", BOX_USER, &file, &every_byte());
    let other = providers.box_add_file(BOX_USER, "report.docx", &folder);
    (
        format!("file_{file}"),
        format!("folder_{folder}"),
        format!("file_{other}"),
    )
}

#[tokio::test]
async fn box_links_serve_the_bytes_without_a_token_and_refuse_by_type() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        let (file, folder, other) = box_files(&f.providers);
        let account = f.connect_and_sync("box").await;
        let url = f.link(&account, &file, None).await;
        assert!(
            url.starts_with(&format!("{}/box-download/", f.providers.base_url())),
            "{backend:?}: Box's download host: {url}"
        );
        assert_link_serves(&f, &url, &every_byte(), StatusCode::FORBIDDEN).await;

        let unsupported = ("unsupported_format", 400);
        for (id, format, expected) in [
            (file.as_str(), Some("pdf"), unsupported),
            (other.as_str(), Some("docx"), unsupported),
            (other.as_str(), Some("nonsense"), unsupported),
            (folder.as_str(), None, ("not_downloadable", 409)),
            ("file_999999", None, ("file_not_found", 404)),
        ] {
            assert_eq!(
                code(f.locate(&account, id, format).await),
                expected,
                "{backend:?} {id} {format:?}"
            );
        }
        // Trashed at Box since the sync: Box's 404 `trashed` is said as such.
        let box_id = other.strip_prefix("file_").unwrap();
        f.providers.box_change(
            BOX_USER,
            hub_testkit::BoxKind::File,
            box_id,
            hub_testkit::BoxChange::Trash,
        );
        assert_eq!(
            code(f.locate(&account, &other, None).await),
            ("not_downloadable", 409)
        );
    }
}

#[tokio::test]
async fn box_scopes_and_one_refresh() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        let (file, _, _) = box_files(&f.providers);
        let account = f.connect_and_sync("box").await;
        f.providers.expire_access_tokens();
        let refreshes = f.providers.requests("/box/oauth2/token");
        let url = f.link(&account, &file, None).await;
        assert_eq!(f.providers.requests("/box/oauth2/token"), refreshes + 1);
        assert_eq!(fetch(&url, None).await.2, every_byte());

        // Box reads bytes only with `root_readonly`: 403 `insufficient_scope` without it.
        f.providers.withdraw_scopes("box", "");
        let refused = f.locate(&account, &file, None).await.expect_err("refused");
        assert_eq!(refused.code(), "scope_not_granted");
        assert!(refused.to_string().contains("root_readonly"), "{refused}");

        // An account stored without the grant's scopes (connected before they were kept).
        f.grant_only(&account, &[]).await;
        assert_eq!(
            code(f.locate(&account, &file, None).await),
            ("scope_not_granted", 409)
        );
    }
}

// -------------------------------------------------------------------------------- Dropbox

const DROPBOX_USER: &str = hub_testkit::DEFAULT_DROPBOX_USER;

/// A file of every byte value, a Paper doc and a folder in the user's home; with `team`, a
/// team space whose team folder holds a file of its own.
fn dropbox_files(providers: &FakeProviders, team: bool) {
    providers.add_file("dropbox", DROPBOX_USER, FileSpec::new("id:bin", "data.bin"));
    providers.set_file_bytes("dropbox", DROPBOX_USER, "id:bin", &every_byte());
    providers.add_file(
        "dropbox",
        DROPBOX_USER,
        FileSpec::new("id:paper", "Notes.paper"),
    );
    providers.set_file_bytes("dropbox", DROPBOX_USER, "id:paper", b"# Notes\n");
    providers.add_file("dropbox", DROPBOX_USER, FileSpec::folder("id:dir", "Dir"));
    if team {
        providers.make_dropbox_team_member(DROPBOX_USER, "Acme");
        providers.add_file(
            "dropbox",
            DROPBOX_USER,
            FileSpec::folder("id:team", "Marketing"),
        );
        let plan = FileSpec::new("id:plan", "Plan.bin").in_folder("id:team");
        providers.add_file("dropbox", DROPBOX_USER, plan);
        providers.set_file_bytes("dropbox", DROPBOX_USER, "id:plan", &every_byte()[3..]);
    }
}

#[tokio::test]
async fn dropbox_temporary_links_serve_home_and_team_space_bytes_without_a_token() {
    for backend in BACKENDS {
        for team in [false, true] {
            let f = fixture(backend).await;
            dropbox_files(&f.providers, team);
            let account = f.connect_and_sync("dropbox").await;
            let mut cases = vec![("id:bin", every_byte())];
            if team {
                // Outside the member folder: only a call rooted at the team space finds it.
                cases.push(("id:plan", every_byte()[3..].to_vec()));
            }
            for (id, bytes) in cases {
                let location = f.locate(&account, id, None).await.unwrap();
                let expires = location.expires_at.expect("Dropbox says when");
                let hours = (expires - chrono::Utc::now()).num_minutes();
                assert!((235..=240).contains(&hours), "4 hours, was {hours} minutes");
                let url = f.link(&account, id, None).await;
                assert!(
                    url.starts_with(&format!("{}/dropbox-download/", f.providers.base_url())),
                    "{backend:?}: Dropbox's content host: {url}"
                );
                assert_link_serves(&f, &url, &bytes, StatusCode::GONE).await;
            }
        }
    }
}

#[tokio::test]
async fn paper_docs_export_through_the_hub_and_the_rest_is_refused_by_type() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        dropbox_files(&f.providers, false);
        let account = f.connect_and_sync("dropbox").await;
        for (format, expected) in [("md", "md"), ("html", "html")] {
            let location = f.locate(&account, "id:paper", Some(format)).await.unwrap();
            assert!(
                location.streamed_by_hub,
                "Dropbox has no link for an export"
            );
            f.assert_no_token(&location.url);
            assert_eq!(
                read_hub_link(&f, &location.url).await,
                hub_testkit::converted_bytes(expected, b"# Notes\n"),
                "{backend:?} {format}"
            );
        }
        match f.locate(&account, "id:paper", None).await {
            Err(HubError::ExportRequired { formats }) => assert_eq!(formats, ["md", "html"]),
            other => panic!("export_required, got {other:?}"),
        }
        let unsupported = ("unsupported_format", 400);
        for (id, format, expected) in [
            ("id:paper", Some("pdf"), unsupported),
            ("id:paper", Some("docx"), unsupported),
            ("id:bin", Some("md"), unsupported),
            ("id:bin", Some("pdf"), unsupported),
            ("id:dir", None, ("not_downloadable", 409)),
            ("id:nowhere", None, ("file_not_found", 404)),
        ] {
            assert_eq!(
                code(f.locate(&account, id, format).await),
                expected,
                "{backend:?} {id} {format:?}"
            );
        }
        // Deleted at Dropbox since the sync: `path/not_found` is said as such.
        f.providers
            .drop_file_silently("dropbox", DROPBOX_USER, "id:bin");
        assert_eq!(
            code(f.locate(&account, "id:bin", None).await),
            ("not_downloadable", 409)
        );
    }
}

#[tokio::test]
async fn dropbox_scopes_and_one_refresh_for_links_and_exports() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        dropbox_files(&f.providers, false);
        let account = f.connect_and_sync("dropbox").await;
        let paper = f.locate(&account, "id:paper", Some("md")).await.unwrap();

        f.providers.expire_access_tokens();
        let refreshes = f.providers.requests("/dropbox/oauth2/token");
        let url = f.link(&account, "id:bin", None).await;
        assert_eq!(f.providers.requests("/dropbox/oauth2/token"), refreshes + 1);
        assert_eq!(fetch(&url, None).await.2, every_byte());
        f.providers.expire_access_tokens();
        let md = read_hub_link(&f, &paper.url).await;
        assert_eq!(md, hub_testkit::converted_bytes("md", b"# Notes\n"));
        assert_eq!(f.providers.requests("/dropbox/oauth2/token"), refreshes + 2);

        // Dropbox gives bytes only with `files.content.read`: 401 `missing_scope` without it.
        f.providers
            .withdraw_scopes("dropbox", "account_info.read files.metadata.read");
        let refused = f
            .locate(&account, "id:bin", None)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), "scope_not_granted");
        assert!(
            refused.to_string().contains("files.content.read"),
            "{refused}"
        );

        // An account connected before the hub asked for it.
        f.grant_only(&account, &["account_info.read", "files.metadata.read"])
            .await;
        assert_eq!(
            code(f.locate(&account, "id:bin", None).await),
            ("scope_not_granted", 409)
        );
    }
}
