//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! against a real `aegis serve`, with transactions streamed in while the page is open.
//! `scripts/test.sh` installs Debian's `chromium` and `chromium-driver`.

use super::server::{Server, bundles, pan};
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INJECTED: &str = "<img src=x onerror=\"document.title='pwned'\">";

/// chromedriver on a free port, killed on drop.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromedriver ({e}); ./scripts/test.sh installs it (apt-get install chromium chromium-driver)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::blocking::get(format!("{url}/status")).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver's browser log (console messages and page errors).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &reqwest::Url, session: Option<&str>) -> Result<reqwest::Url, url_error::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

mod url_error {
    pub use reqwest::Url;
    pub type ParseError = <Url as std::str::FromStr>::Err;
}

async fn text(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

/// A headless Chromium session with its profile in `profile`, keeping the browser log.
async fn session(driver: &Chromedriver, profile: &std::path::Path) -> Client {
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
            format!("--user-data-dir={}", profile.display())]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// Waits until `check` holds, failing with `what` after 30 s.
async fn eventually(client: &Client, what: &str, check: impl AsyncFn(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check(client).await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn dashboard_counts_up_and_shows_values_as_text_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    // Bundle b flags about 40% of traffic, so flagged tables and the country chart fill up.
    let server = Server::start(dir.path(), &bundles().b, &[], &[]);
    let driver = Chromedriver::start();
    let profile = tempfile::tempdir().unwrap();
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = session(&driver, profile.path()).await;

        client.goto(&server.url).await.unwrap();
        eventually(&client, "the empty state", async |c| text(c, "#empty").await.contains("No transactions yet")).await;
        assert_eq!(text(&client, "#t-processed").await, "0");

        // Stream 40 transactions while the page is open, one with markup as its merchant.
        let http = reqwest::Client::new();
        let countries = ["FR", "BR", "US", "NG", "GB"];
        for i in 0..40u64 {
            let merchant = if i == 7 { INJECTED.to_owned() } else { format!("M{:06}", i % 9) };
            let amount = if i % 4 == 0 { 2500.0 } else { 12.0 + i as f64 };
            let body = json!({"txn_id": format!("ui-{i}"), "timestamp": "2025-01-09T03:00:00Z", "amount": amount,
                "country": countries[i as usize % 5], "merchant": merchant, "card_num": pan(300 + i % 6)});
            let r = http.post(format!("{}/predict", server.url)).json(&body).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }

        eventually(&client, "the processed tile to reach 40", async |c| text(c, "#t-processed").await == "40").await;
        eventually(&client, "40 rows in recent transactions", async |c| count(c, "#recent tbody tr").await == 40).await;
        assert!(text(&client, "#empty").await.is_empty(), "the empty state is hidden once there is data");
        let flagged: usize = text(&client, "#t-flagged").await.parse().unwrap();
        assert!(flagged > 0, "bundle b flags some of these");
        eventually(&client, "flagged rows", async |c| count(c, "#flagged tbody tr").await == flagged.min(20)).await;
        assert!(count(&client, "#countries .bar-row").await >= 1, "the country chart has bars");
        assert!(count(&client, "#series rect").await >= 1, "the time series has bars");
        assert!(text(&client, "#t-p99").await.ends_with(" ms"));

        // The injected merchant is shown as text: no element was created from it.
        let cells = client.find_all(Locator::Css("#recent tbody td")).await.unwrap();
        let mut shown = false;
        for cell in cells {
            shown |= cell.text().await.unwrap() == INJECTED;
        }
        assert!(shown, "the merchant's markup is displayed literally");
        assert_eq!(count(&client, "main img").await, 0);
        assert_ne!(client.title().await.unwrap(), "pwned");
        // No card number anywhere on the page.
        let page = client.source().await.unwrap();
        assert!(!page.contains(&pan(300)), "a raw card number is on the page");

        std::fs::write(artifacts.join("dashboard.png"), client.screenshot().await.unwrap()).unwrap();
        // A narrow screen: no sideways scrolling of the page (wide tables scroll in their panel).
        client.set_window_size(420, 900).await.unwrap();
        let overflow =
            client.execute("return document.documentElement.scrollWidth - window.innerWidth;", vec![]).await.unwrap();
        assert!(overflow.as_i64().unwrap() <= 0, "the page overflows a narrow window by {overflow}px");
        std::fs::write(artifacts.join("dashboard-narrow.png"), client.screenshot().await.unwrap()).unwrap();

        let log = client.issue_cmd(BrowserLog).await.expect("the browser log");
        let errors: Vec<&Value> = log.as_array().into_iter().flatten().filter(|e| e["level"] == "SEVERE").collect();
        assert!(errors.is_empty(), "console errors: {errors:?}");
        client.close().await.unwrap();
    });
}

#[test]
fn an_analyst_labels_a_queued_transaction_and_reads_its_case_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().b, &["--api-token", "analyst-token"], &[]);
    let mut flagged = Vec::new();
    for i in 0..30u64 {
        let body = json!({"txn_id": format!("b-{i}"), "timestamp": format!("2025-01-09T10:{:02}:00Z", i),
            "amount": 50.0 + 97.0 * i as f64, "country": "BR", "merchant": "M000001", "card_num": pan(700 + i % 3)});
        let (_, answer) = server.post("/predict", &body, Some("analyst-token"));
        if answer["action"] != "allow" {
            flagged.push(answer["txn_id"].as_str().unwrap().to_owned());
        }
    }
    assert!(flagged.len() >= 2, "bundle b flags some: {flagged:?}");
    let first = flagged[0].clone();
    let driver = Chromedriver::start();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = session(&driver, profile.path()).await;
        client.goto(&server.url).await.unwrap();
        let row = format!("#review tbody tr[data-txn='{first}']");
        eventually(&client, "the queue lists the first flag", async |c| count(c, &row).await == 1).await;
        assert_eq!(count(&client, "#review tbody tr[data-txn]").await, flagged.len().min(20));

        // The case view, as text: reasons and the card's history.
        client.find(Locator::Css(&format!("{row} a"))).await.unwrap().click().await.unwrap();
        eventually(&client, "the case view", async |c| text(c, "#case-id").await == first).await;
        assert!(!text(&client, "#case-reasons").await.trim().is_empty());
        let history = text(&client, "#case-history").await;
        assert!(history.contains(&first) && history.contains("411111******"), "{history}");

        // "Fraud": the page asks for the token once, keeps it for the tab, and the row leaves.
        client.find(Locator::Css(&format!("{row} button.fraud"))).await.unwrap().click().await.unwrap();
        eventually(&client, "the token prompt", async |c| c.get_alert_text().await.is_ok()).await;
        client.send_alert_text("analyst-token").await.unwrap();
        client.accept_alert().await.unwrap();
        eventually(&client, "the row leaves the queue", async |c| count(c, &row).await == 0).await;
        eventually(&client, "the verdict in the case view", async |c| text(c, "#case-facts").await.contains("fraud"))
            .await;
        eventually(&client, "the confirmed-fraud tile", async |c| text(c, "#t-confirmed").await == "1").await;
        // The one expected failure: the first POST, sent before the page knew the token.
        let log = client.issue_cmd(BrowserLog).await.expect("the browser log");
        let expected = |e: &Value| e["source"] == "network" && e["message"].as_str().is_some_and(|m| m.contains("401"));
        let errors: Vec<&Value> =
            log.as_array().into_iter().flatten().filter(|e| e["level"] == "SEVERE" && !expected(e)).collect();
        assert!(errors.is_empty(), "console errors: {errors:?}");
        client.close().await.unwrap();
    });
    let verdict: String = rusqlite::Connection::open(&server.db)
        .unwrap()
        .query_row("SELECT label || '/' || source FROM labels WHERE txn_id = ?1", [&first], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "fraud/analyst");
}
