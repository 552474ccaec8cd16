//! A real headless Chromium driven over WebDriver: `chromedriver` (Debian package
//! `chromium-driver`, installed by `scripts/test`) started by the test on a free loopback
//! port, and a fantoccini session to it. Both end when the [`Browser`] is closed or dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// How long any one wait for the browser may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// A chromedriver process and a browser session in it.
pub struct Browser {
    pub client: Client,
    driver: Driver,
}

/// Kills chromedriver (and with it the browser) when dropped, also on a failed assertion.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (root needs `--no-sandbox`).
    pub async fn start() -> Browser {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start chromedriver ({err}): install the Debian packages chromium \
                     and chromium-driver (scripts/test does)"
                )
            });
        let driver = Driver(child);
        let url = format!("http://127.0.0.1:{port}");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,900", "--no-first-run", "--disable-extensions",
            ]}),
        );
        // Chromium's first start on a busy machine can take a while.
        let deadline = Instant::now() + 2 * WAIT;
        let client = loop {
            let attempt = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match attempt {
                Ok(client) => break client,
                Err(err) if Instant::now() > deadline => {
                    panic!("no WebDriver session from chromedriver at {url}: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser { client, driver }
    }

    /// Opens `url` and waits for `css` to be on the page.
    pub async fn open(&self, url: &str, css: &str) -> fantoccini::elements::Element {
        self.client.goto(url).await.expect("goto");
        self.find(css).await
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(err) => {
                let page = self.client.source().await.unwrap_or_default();
                panic!("no {css} on the page ({err}):\n{page}")
            }
        }
    }

    /// The text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// Waits until the browser's URL satisfies `ready` (after a click that navigates).
    pub async fn wait_for_url(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let current = self.client.current_url().await.expect("current url");
            if ready(current.as_str()) {
                return current.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "never reached {what}: at {current}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session, then chromedriver.
    pub async fn close(self) {
        let _ = self.client.close().await;
        drop(self.driver);
    }
}

/// A port nobody listens on right now (the kernel's pick, released again).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}
