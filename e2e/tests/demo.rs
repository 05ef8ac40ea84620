//! The click-through demo as a newcomer gets it: `scripts/dev` with no OAuth client configured
//! (its env file created from `.env.example` on this first run) starts the hub against the
//! testkit's stand-ins and the demo app, and prints one URL. A real browser opens it, connects
//! a drive through the connect page and the stand-in's consent page, lands on the demo app's
//! `/connected` page and sees the sample drive's files there once the first sync has run.
//!
//! Runs `scripts/dev` itself, on free ports, with its env file, temporary directory and data in
//! a temp dir (never the developer's `.env.local` or `.hub-data`), and stops its whole process
//! tree at the end. Needs `chromium` and `chromedriver` (see `hub_e2e::browser`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use hub_e2e::browser::{click, landed_at, param, screenshot, Driver};
use hub_e2e::{descendants, free_port, stop_process_tree, workspace_root};
use hub_testkit::sample_drive::sample_drive;
use hub_testkit::Provider;
use rustix::process::{kill_process, Pid, Signal};

/// Waits until the page shows every one of `present` and none of `absent`.
async fn wait_for_page(browser: &fantoccini::Client, present: &[&str], absent: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = browser.source().await.unwrap();
        if present.iter().all(|text| page.contains(text))
            && !absent.iter().any(|text| page.contains(text))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {present:?} and not {absent:?}; page:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the page holds an element `xpath` finds.
async fn wait_for_element(browser: &fantoccini::Client, xpath: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while browser.find(Locator::XPath(xpath)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "no {xpath}; page:\n{}",
            browser.source().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `scripts/dev` in a process group of its own, its whole tree stopped when dropped.
struct Dev {
    child: Child,
    log: std::path::PathBuf,
    stopped: bool,
}

impl Dev {
    fn start(dir: &Path, ports: [u16; 3]) -> Dev {
        let [hub, standins, demo] = ports;
        let log = dir.join("dev.log");
        let output = File::create(&log).unwrap();
        let child = Command::new(workspace_root().join("scripts/dev"))
            .current_dir(workspace_root())
            .env("HUB_ENV_FILE", dir.join("hub.env"))
            .env("HUB_PORT", hub.to_string())
            .env("HUB_STANDINS_PORT", standins.to_string())
            .env("HUB_DEMO_APP_PORT", demo.to_string())
            // The demo's working files (its env file, the hub's data) go under the temp dir.
            .env("TMPDIR", dir)
            .env_remove("HUB_PUBLIC_URL")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .process_group(0)
            .spawn()
            .expect("scripts/dev runs");
        Dev {
            child,
            log,
            stopped: false,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until scripts/dev has printed `line` (it builds the functions first).
    async fn printed(&mut self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(1800);
        while !self.log().lines().any(|printed| printed.trim() == line) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "scripts/dev ended ({status}) before printing {line}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "scripts/dev did not print {line}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// SIGTERM to every process of its tree (the functions are in process groups of their
    /// own), then to its process group; once.
    fn stop(&mut self) {
        if !std::mem::replace(&mut self.stopped, true) {
            stop_process_tree(&mut self.child, Signal::TERM);
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the process is gone (or a zombie, about to be reaped).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_newcomer_clicks_through_the_demo_against_the_stand_ins() {
    let dir = tempfile::tempdir().unwrap();
    let mut ports = [free_port(), free_port(), free_port()];
    while ports[1] == ports[0] || ports[2] == ports[0] || ports[2] == ports[1] {
        ports = [free_port(), free_port(), free_port()];
    }
    let [hub_port, standins_port, demo_port] = ports;
    let mut dev = Dev::start(dir.path(), ports);
    let demo_url = format!("http://localhost:{demo_port}/");
    dev.printed(&demo_url).await;
    let log = dev.log();
    assert!(
        log.contains("DEMO MODE") && log.contains("NOT the real providers"),
        "it says loudly what it runs against:\n{log}"
    );
    let env_file = std::fs::read_to_string(dir.path().join("hub.env")).unwrap();
    let example = std::fs::read_to_string(workspace_root().join(".env.example")).unwrap();
    assert_eq!(
        env_file, example,
        "the first run's env file is .env.example"
    );

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&demo_url).await.unwrap();
    screenshot(&browser, "demo-app").await;
    click(&browser, Locator::LinkText("Connect a drive")).await;

    // The hub's connect page, with the four stand-in providers; the user picks Dropbox.
    landed_at(
        &browser,
        &format!("http://localhost:{hub_port}/connect?session="),
    )
    .await;
    let mut labels = Vec::new();
    for link in browser.find_all(Locator::Css("a.provider")).await.unwrap() {
        labels.push(link.text().await.unwrap());
    }
    assert_eq!(
        labels,
        [
            "Connect Google Drive",
            "Connect Microsoft OneDrive",
            "Connect Dropbox",
            "Connect Box"
        ]
    );
    click(&browser, Locator::LinkText("Connect Dropbox")).await;

    // The user first denies at the stand-in's consent page: the demo app says so and offers
    // to try again, which starts a new connect session.
    landed_at(
        &browser,
        &format!("http://127.0.0.1:{standins_port}/dropbox/"),
    )
    .await;
    click(&browser, Locator::Css("button.deny")).await;
    let back = landed_at(&browser, &format!("{demo_url}connected")).await;
    assert_eq!(
        param(&back, "error"),
        Some("authorization_denied"),
        "{back:?}"
    );
    wait_for_page(&browser, &["You did not allow access", "Try again"], &[]).await;
    screenshot(&browser, "demo-denied").await;
    click(&browser, Locator::Css("a.try-again")).await;
    wait_for_page(
        &browser,
        &["The button asks the hub for a connect session"],
        &[],
    )
    .await;
    click(&browser, Locator::LinkText("Connect a drive")).await;
    click(&browser, Locator::LinkText("Connect Dropbox")).await;

    // The stand-in's consent page; the user allows.
    landed_at(
        &browser,
        &format!("http://127.0.0.1:{standins_port}/dropbox/"),
    )
    .await;
    let signed_in = browser.find(Locator::Css("strong.email")).await.unwrap();
    assert_eq!(
        signed_in.text().await.unwrap(),
        hub_testkit::DEFAULT_DROPBOX_EMAIL
    );
    screenshot(&browser, "demo-consent-page").await;
    click(&browser, Locator::Css("button.allow")).await;

    // Back in the demo app, which says so and, once the first sync ran, lists the files.
    let back = landed_at(&browser, &format!("{demo_url}connected")).await;
    assert_eq!(param(&back, "status"), Some("connected"), "{back:?}");
    assert_eq!(param(&back, "provider"), Some("dropbox"));
    let account_id = param(&back, "account_id").unwrap().to_string();
    let names: Vec<String> = sample_drive(Provider::Dropbox)
        .into_iter()
        .map(|item| item.name)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        // The page reloads itself until the account has synced.
        let page = browser.source().await.unwrap();
        if names.iter().all(|name| page.contains(name.as_str())) {
            assert!(page.contains(hub_testkit::DEFAULT_DROPBOX_EMAIL), "{page}");
            // People know a drive by its provider and email, not the hub's id; and a full
            // list is not headed by a note that it has not synced.
            let text = browser
                .find(Locator::Css("main"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!text.contains(&account_id), "no raw account id: {text}");
            assert!(!text.contains("Syncing"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sample drive's files did not show up; page:\n{page}\nlog:\n{}",
            dev.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    screenshot(&browser, "demo-connected").await;

    // A file's bytes through the whole chain: the demo app's Download link (the app asks the
    // hub's content route with its key), the hub's 302, the provider's link.
    let download = browser
        .find(Locator::XPath(
            "//li[span[@class='file-name' and contains(., 'Shopping list.txt')]]/a[@class='download']",
        ))
        .await
        .expect("a Download link by the shopping list")
        .attr("href")
        .await
        .unwrap()
        .expect("an href");
    let fetched = oauth2::reqwest::get(format!("{}{}", demo_url.trim_end_matches('/'), download))
        .await
        .unwrap();
    assert_eq!(fetched.status(), oauth2::reqwest::StatusCode::OK);
    assert_eq!(
        &fetched.bytes().await.unwrap()[..],
        hub_testkit::sample_drive::SHOPPING_LIST,
        "the file's bytes arrive exactly"
    );

    // Folders, as a file picker shows them: the top level, a folder's children, back up.
    click(&browser, Locator::Css("a.browse")).await;
    wait_for_page(
        &browser,
        &["Projects", "Shopping list.txt"],
        &["Roadmap 2026.xlsx"],
    )
    .await;
    click(&browser, Locator::LinkText("Projects")).await;
    wait_for_page(
        &browser,
        &["Roadmap 2026.xlsx", "Quarterly report Q3.pdf"],
        &["Shopping list.txt"],
    )
    .await;
    screenshot(&browser, "demo-browse-folder").await;
    click(&browser, Locator::Css("a.up")).await;
    wait_for_page(
        &browser,
        &["Projects", "Shopping list.txt"],
        &["Roadmap 2026.xlsx"],
    )
    .await;

    // The search box asks the provider's own search.
    browser
        .find(Locator::Css("input[name=q]"))
        .await
        .unwrap()
        .send_keys("roadmap")
        .await
        .unwrap();
    click(&browser, Locator::Css("form.search button")).await;
    wait_for_page(
        &browser,
        &["Results for", "Roadmap 2026.xlsx"],
        &["Shopping list.txt"],
    )
    .await;
    screenshot(&browser, "demo-search").await;

    // The headline: a file changed at the provider reaches the change feed and the app's
    // events. Rename, add, delete, each seen in the demo's feed view with its event.
    browser.goto(&format!("{demo_url}connected")).await.unwrap();
    click(
        &browser,
        Locator::XPath(
            "//li[span[@class='file-name' and contains(., 'Shopping list.txt')]]/form[contains(@class, 'rename')]/button",
        ),
    )
    .await;
    landed_at(&browser, &format!("{demo_url}feed?")).await;
    wait_for_page(
        &browser,
        &["Shopping list (renamed).txt", "sync.completed"],
        &[],
    )
    .await;
    screenshot(&browser, "demo-feed-renamed").await;
    browser.goto(&format!("{demo_url}connected")).await.unwrap();
    click(&browser, Locator::Css("form.add button")).await;
    landed_at(&browser, &format!("{demo_url}feed?")).await;
    wait_for_page(&browser, &["New note "], &[]).await;
    browser.goto(&format!("{demo_url}connected")).await.unwrap();
    click(
        &browser,
        Locator::XPath(
            "//li[span[@class='file-name' and contains(., 'Shopping list (renamed).txt')]]/form[contains(@class, 'delete')]/button",
        ),
    )
    .await;
    landed_at(&browser, &format!("{demo_url}feed?")).await;
    wait_for_element(
        &browser,
        "//li[contains(@class, 'deleted') and contains(., 'Shopping list (renamed).txt')]",
    )
    .await;
    screenshot(&browser, "demo-feed-deleted").await;

    // Disconnect: the hub forgets the account, and the demo's list says so.
    browser.goto(&format!("{demo_url}connected")).await.unwrap();
    click(&browser, Locator::Css("form.disconnect button")).await;
    landed_at(&browser, &format!("{demo_url}connected?disconnected=")).await;
    wait_for_page(
        &browser,
        &["is disconnected", "No drive connected yet."],
        &["Browse its folders"],
    )
    .await;
    browser.close().await.unwrap();

    // Stopping scripts/dev (SIGTERM to the script alone) stops everything it started, and
    // removes the demo's files; then its whole process group is stopped anyway.
    let started: Vec<i32> = descendants(dev.child.id())
        .into_iter()
        .map(|(pid, _)| pid.as_raw_nonzero().get())
        .collect();
    assert!(!started.is_empty());
    let script = Pid::from_child(&dev.child);
    kill_process(script, Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while dev.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "scripts/dev did not end on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.iter().all(|pid| ended(*pid)) {
        let left: Vec<_> = started.iter().filter(|pid| !ended(**pid)).collect();
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dev.stop();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name.to_string_lossy().starts_with("hub-demo."))
        .collect();
    assert!(
        left.is_empty(),
        "the demo's working dir is removed: {left:?}"
    );
}

/// A child process killed when dropped, so that a failed assertion leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opened before the hub listens (on a first run `scripts/dev` builds the functions for
/// minutes after the demo app is up), the demo app says the hub is starting and reloads
/// itself, instead of showing a request error; once the hub answers, the page is the demo's.
#[tokio::test]
async fn the_demo_app_says_the_hub_is_starting_until_it_answers() {
    let hub_port = free_port();
    let mut demo_port = free_port();
    while demo_port == hub_port {
        demo_port = free_port();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let _app = Running(
        Command::new(target.join("debug/demo-app"))
            .env("HUB_URL", format!("http://127.0.0.1:{hub_port}"))
            .env("HUB_API_KEY", "demo-key")
            .env("DEMO_APP_PORT", demo_port.to_string())
            .env_remove("HUB_WEBHOOK_SECRET")
            .env_remove("DEMO_STANDINS_CONTROL_URL")
            .stdin(Stdio::null())
            .spawn()
            .expect("demo-app runs (cargo build -p hub-testkit --bins)"),
    );
    let demo_url = format!("http://127.0.0.1:{demo_port}/");
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        match oauth2::reqwest::get(&demo_url).await {
            Ok(response) => break response,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the demo app did not listen: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first.status().as_u16(), 503);
    let body = first.text().await.unwrap();
    assert!(body.contains("The hub is starting"), "{body}");
    assert!(
        body.contains("http-equiv=\"refresh\""),
        "it reloads itself: {body}"
    );

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&demo_url).await.unwrap();
    wait_for_page(&browser, &["The hub is starting"], &[]).await;
    screenshot(&browser, "demo-hub-starting").await;

    // The hub comes up (here a stand-in of its session route, on the port the app was
    // given): the page that reloads itself becomes the demo's first page.
    let listener = std::net::TcpListener::bind(("127.0.0.1", hub_port)).unwrap();
    let hub = wiremock::MockServer::builder()
        .listener(listener)
        .start()
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/connect/sessions"))
        .respond_with(
            wiremock::ResponseTemplate::new(201).set_body_json(serde_json::json!({
                "token": "t",
                "connect_url": format!("{}/connect?session=t", hub.uri()),
                "expires_at": "2030-01-01T00:00:00Z",
            })),
        )
        .mount(&hub)
        .await;
    wait_for_page(&browser, &["Connect a drive</a>"], &["The hub is starting"]).await;
    browser.close().await.unwrap();
}
