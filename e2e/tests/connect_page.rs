//! The connect page in a real browser (headless Chromium through chromedriver), against the
//! real binaries under `cargo lambda watch`: an app asks for a connect session for its user,
//! sends the browser to the page, the user picks a provider and consents at the stand-in, and
//! the browser lands back in the app with the new account's id; a denied consent lands there
//! too, with the error; a spent session's page says `invalid_session`; a consent link
//! forwarded to another browser connects nothing.
//!
//! The stand-ins show their interactive consent page, so the browser clicks Allow or Deny
//! there as a user does. Needs `chromium` and `chromedriver` (see `hub_e2e::browser`).

use fantoccini::Locator;
use hub_e2e::browser::{click, landed_at, param, screenshot, Driver};
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::FakeProviders;
use oauth2::reqwest::Method;
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn new_session(hub: &LocalHub, body: Value) -> (StatusCode, Value) {
    hub.json(
        hub.authed(Method::POST, "/connect/sessions")
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// The stand-ins with their consent pages, an app whose return page (`/return...`) answers
/// every visit (the hub appends the outcome), and the hub allowing returns there.
async fn app_and_hub() -> (FakeProviders, MockServer, LocalHub) {
    let providers = FakeProviders::start().await;
    providers.interactive_consent(true);
    let app = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/return"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><title>Back in the app</title><p>Back in the app</p>",
            "text/html",
        ))
        .mount(&app)
        .await;
    let mut env = providers.env_vars();
    env.push((
        "HUB_ALLOWED_RETURN_URLS".into(),
        format!("{}/return", app.uri()),
    ));
    let hub = LocalHub::start(&env).await;
    (providers, app, hub)
}

#[tokio::test]
async fn an_app_connects_a_drive_for_its_user_in_a_real_browser() {
    let (providers, app, hub) = app_and_hub().await;
    let return_to = format!("{}/return/drive?tab=files", app.uri());

    // A return address outside the allowlist is refused, however it is dressed up.
    for forged in [
        format!("{}/returnx", app.uri()),
        format!("{}/return/../admin", app.uri()),
        format!("{}@evil.example/return", app.uri()),
        "https://evil.example/return".to_string(),
    ] {
        let (status, refused) =
            new_session(&hub, json!({"owner": "app-user-7", "return_to": forged})).await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_return_to")),
            "{forged}: {refused}"
        );
    }

    let (status, session) = new_session(
        &hub,
        json!({"owner": "app-user-7", "return_to": return_to, "providers": ["google", "onedrive"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let connect_url = session["connect_url"].as_str().unwrap().to_string();
    assert!(connect_url.starts_with(&format!("{}/connect?session=", hub.url)));

    // The page's headers, as a browser gets them.
    let page = hub.client.get(&connect_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(header("content-type").starts_with("text/html"));
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "no-referrer");
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'none'"), "no script: {csp}");

    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // The user sees one clear button per provider the app allowed, and picks Google.
    browser.goto(&connect_url).await.unwrap();
    // Kept as a test artifact: what the user sees.
    screenshot(&browser, "connect-page").await;
    let mut labels = Vec::new();
    for link in browser.find_all(Locator::Css("a.provider")).await.unwrap() {
        labels.push(link.text().await.unwrap());
    }
    assert_eq!(
        labels,
        ["Connect Google Drive", "Connect Microsoft OneDrive"]
    );
    click(&browser, Locator::LinkText("Connect Google Drive")).await;

    // The stand-in's consent page: who asks, as whom; the user allows.
    landed_at(&browser, &format!("{}/google/", providers.base_url())).await;
    let consent = browser
        .find(Locator::Css("main h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(consent, "Cloud Drive Connector Hub wants to see your files");
    let signed_in = browser.find(Locator::Css("strong.email")).await.unwrap();
    assert_eq!(
        signed_in.text().await.unwrap(),
        hub_testkit::DEFAULT_GOOGLE_EMAIL
    );
    screenshot(&browser, "consent-page").await;
    click(&browser, Locator::Css("button.allow")).await;

    let back = landed_at(&browser, &format!("{}/return/drive", app.uri())).await;
    assert_eq!(
        param(&back, "tab"),
        Some("files"),
        "the app's own query is kept"
    );
    assert_eq!(param(&back, "status"), Some("connected"), "{back:?}");
    assert_eq!(param(&back, "provider"), Some("google"));
    let account_id = param(&back, "account_id").unwrap().to_string();

    // The account belongs to the session's owner.
    let (status, owned) = hub
        .json(hub.authed(Method::GET, "/users?owner=app-user-7"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owned.as_array().unwrap().len(), 1, "{owned}");
    assert_eq!(owned[0]["id"], account_id.as_str());
    assert_eq!(owned[0]["owner"], "app-user-7");

    // The session is spent: its page now says so, readably, and a login with it is refused.
    browser.goto(&connect_url).await.unwrap();
    let code = browser
        .find(Locator::Css("code.error-code"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(code, "invalid_session");
    let spent = hub.client.get(&connect_url).send().await.unwrap();
    assert_eq!(spent.status(), StatusCode::BAD_REQUEST);
    let token = session["token"].as_str().unwrap();
    let (status, refused) = hub
        .json(hub.get(&format!("/auth/google/login?session={token}")))
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_session"))
    );

    // A denied consent brings the user back with the error, and leaves the session usable.
    let (_, session) = new_session(
        &hub,
        json!({"owner": "app-user-8", "return_to": return_to, "providers": ["google"]}),
    )
    .await;
    let connect_url = session["connect_url"].as_str().unwrap().to_string();
    browser.goto(&connect_url).await.unwrap();
    click(&browser, Locator::LinkText("Connect Google Drive")).await;
    click(&browser, Locator::Css("button.deny")).await;
    let back = landed_at(&browser, &format!("{}/return/drive", app.uri())).await;
    assert_eq!(param(&back, "status"), Some("error"), "{back:?}");
    assert_eq!(param(&back, "error"), Some("authorization_denied"));
    assert_eq!(param(&back, "account_id"), None);
    let again = hub.client.get(&connect_url).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "still usable after a denial"
    );
    let (_, none) = hub
        .json(hub.authed(Method::GET, "/users?owner=app-user-8"))
        .await;
    assert_eq!(none, json!([]));

    // A consent link forwarded to someone else (docs/API.md, "Logins"): the sender's browser
    // starts the login, the victim's (another Chromium session, with cookies of its own)
    // consents. The callback is refused and nothing is connected to the sender's owner.
    let (_, session) = new_session(
        &hub,
        json!({"owner": "sender-9", "return_to": return_to, "providers": ["google"]}),
    )
    .await;
    browser
        .goto(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    click(&browser, Locator::LinkText("Connect Google Drive")).await;
    landed_at(&browser, &format!("{}/google/", providers.base_url())).await;
    let forwarded = browser.current_url().await.unwrap();
    let victim = driver.browser().await;
    victim.goto(forwarded.as_str()).await.unwrap();
    click(&victim, Locator::Css("button.allow")).await;
    landed_at(&victim, &format!("{}/auth/google/callback", hub.url)).await;
    let answer = victim
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // A person's browser gets the page of `invalid_state`, not its JSON.
    assert!(
        answer.contains("This sign-in cannot be finished"),
        "{answer}"
    );
    screenshot(&victim, "forwarded-consent-refused").await;
    let (_, none) = hub
        .json(hub.authed(Method::GET, "/users?owner=sender-9"))
        .await;
    assert_eq!(none, json!([]), "the victim's drive is not the sender's");
    victim.close().await.unwrap();

    browser.close().await.unwrap();
}

/// The text of the page's `<main>` (or body).
async fn page_text(browser: &fantoccini::Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The `href` of the one element `css` finds.
async fn href(browser: &fantoccini::Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{css} has an href"))
}

/// Every dead end a person can reach in a browser ends on a page that says what happened and
/// offers a way on, never the API's raw JSON (docs/API.md, "Logins"): the connect page names
/// the app and can be cancelled; the back button then Allow again leads back to the app; a
/// direct login's outcome, allowed or denied, is a page; an unknown link is not called
/// expired.
#[tokio::test]
async fn no_dead_end_shows_a_person_raw_json() {
    let (providers, app, hub) = app_and_hub().await;
    let return_to = format!("{}/return", app.uri());
    let app_host = app.uri().trim_start_matches("http://").to_string();
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // The connect page says which app asks, and Cancel goes back to it as a denial would,
    // leaving the session usable.
    let (_, session) = new_session(
        &hub,
        json!({"owner": "app-user-1", "return_to": return_to, "providers": ["google"]}),
    )
    .await;
    let connect_url = session["connect_url"].as_str().unwrap().to_string();
    browser.goto(&connect_url).await.unwrap();
    let asking = browser
        .find(Locator::Css("p.asking"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(asking.starts_with(&format!("{app_host} asks")), "{asking}");
    click(&browser, Locator::Css("a.cancel")).await;
    let back = landed_at(&browser, &return_to).await;
    assert_eq!(param(&back, "status"), Some("error"), "{back:?}");
    assert_eq!(param(&back, "error"), Some("authorization_denied"));
    let again = hub.client.get(&connect_url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK, "a cancel spends nothing");

    // Allow, back to the consent page, Allow again: the state is spent, so the hub cannot
    // tell which session it was (400 invalid_state), but the page leads back to the app.
    browser.goto(&connect_url).await.unwrap();
    click(&browser, Locator::LinkText("Connect Google Drive")).await;
    click(&browser, Locator::Css("button.allow")).await;
    let back = landed_at(&browser, &return_to).await;
    assert_eq!(param(&back, "status"), Some("connected"), "{back:?}");
    browser.back().await.unwrap();
    landed_at(&browser, &format!("{}/google/", providers.base_url())).await;
    click(&browser, Locator::Css("button.allow")).await;
    landed_at(&browser, &format!("{}/auth/google/callback", hub.url)).await;
    let text = page_text(&browser).await;
    assert!(text.contains("This sign-in cannot be finished"), "{text}");
    assert!(!text.contains("invalid_state\""), "no JSON: {text}");
    assert_eq!(href(&browser, "a.back").await, return_to);
    screenshot(&browser, "back-then-allow-again").await;
    click(&browser, Locator::Css("a.back")).await;
    landed_at(&browser, &return_to).await;
    let (_, owned) = hub
        .json(hub.authed(Method::GET, "/users?owner=app-user-1"))
        .await;
    assert_eq!(owned.as_array().unwrap().len(), 1, "one account: {owned}");

    // The spent link's page says it was used, and links back to the app; a link the hub
    // never issued is not called expired.
    browser.goto(&connect_url).await.unwrap();
    let text = page_text(&browser).await;
    assert!(text.contains("already used"), "{text}");
    assert_eq!(href(&browser, "a.back").await, return_to);
    let unknown = format!("{}/connect?session={}", hub.url, "A".repeat(43));
    browser.goto(&unknown).await.unwrap();
    let text = page_text(&browser).await;
    assert!(text.contains("does not know this connect link"), "{text}");
    assert!(!text.to_lowercase().contains("expired"), "{text}");
    assert!(text.contains("invalid_session"), "{text}");

    // A direct login (the README's `open .../auth/google/login`), denied: a page that says
    // so and offers to try again (not the way back to the earlier session's app).
    let direct = format!("{}/auth/google/login", hub.url);
    browser.goto(&direct).await.unwrap();
    click(&browser, Locator::Css("button.deny")).await;
    landed_at(&browser, &format!("{}/auth/google/callback", hub.url)).await;
    let text = page_text(&browser).await;
    assert!(text.contains("Access was not allowed"), "{text}");
    assert_eq!(href(&browser, "a.provider").await, direct);
    assert!(browser.find(Locator::Css("a.back")).await.is_err());
    screenshot(&browser, "direct-login-denied").await;

    // Try again, and allow: the page says the account is connected, with its id, and that
    // no app user owns it.
    click(&browser, Locator::Css("a.provider")).await;
    click(&browser, Locator::Css("button.allow")).await;
    landed_at(&browser, &format!("{}/auth/google/callback", hub.url)).await;
    let text = page_text(&browser).await;
    assert!(text.contains("Google Drive connected"), "{text}");
    assert!(text.contains(hub_testkit::DEFAULT_GOOGLE_EMAIL), "{text}");
    let shown_id = browser
        .find(Locator::Css("code.account-id"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, all) = hub.json(hub.authed(Method::GET, "/users")).await;
    let ownerless: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|account| account["owner"].is_null())
        .collect();
    assert_eq!(ownerless.len(), 1, "{all}");
    assert_eq!(ownerless[0]["id"], shown_id.as_str());
    screenshot(&browser, "direct-login-connected").await;
    browser.close().await.unwrap();
}
