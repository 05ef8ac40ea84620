//! A real browser for the end-to-end tests: headless Chromium through chromedriver
//! (Debian's `chromium` and `chromium-driver`, which `scripts/test` installs when they are
//! missing), driven over WebDriver with fantoccini. The tests fail, never skip, without them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// A chromedriver on a free loopback port, stopped when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver runs (apt-get install chromium chromium-driver; scripts/test does)",
            );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url }
    }

    /// A headless Chromium session (no sandbox: CI runs as root).
    pub async fn browser(&self) -> Client {
        // The workspace links both of rustls' crypto providers, so fantoccini's client
        // cannot pick one by itself (chromedriver is plain HTTP on loopback anyway).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]}),
        );
        ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the browser is at a page whose URL starts with `prefix` and returns its query.
pub async fn landed_at(browser: &Client, prefix: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current = browser.current_url().await.unwrap();
        if current.as_str().starts_with(prefix) {
            return current.query_pairs().into_owned().collect();
        }
        assert!(
            Instant::now() < deadline,
            "the browser did not get to {prefix}; it is at {current}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the query parameter `name`, if any.
pub fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Clicks the first element `locator` finds (a link or a button), waiting for it to appear.
pub async fn click(browser: &Client, locator: Locator<'_>) {
    browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("no {locator:?} on the page: {e}"))
        .click()
        .await
        .unwrap();
}

/// Saves a screenshot of what the browser shows as `target/e2e-artifacts/<name>.png`, a test
/// artifact (target/ is not committed); returns its path.
pub async fn screenshot(browser: &Client, name: &str) -> PathBuf {
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let path = artifacts.join(format!("{name}.png"));
    std::fs::write(&path, browser.screenshot().await.unwrap()).unwrap();
    path
}
