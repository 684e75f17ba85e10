//! A minimal W3C WebDriver client for the console's browser tests: Debian's
//! `chromedriver` started on a free port, driving headless Debian `chromium`.
//! Nothing is downloaded; a missing driver fails the test with what to install.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{eventually, free_port};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a find or a condition may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// One headless Chromium, driven through its own chromedriver process.
pub struct Browser {
    driver: tokio::process::Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    profile: PathBuf,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

fn chromium_binary() -> String {
    if let Ok(path) = std::env::var("PAYMIRROR_CHROMIUM") {
        return path;
    }
    // Debian's /usr/bin/chromium is a shell wrapper; the browser itself lives here.
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("/usr/lib/chromium/chromium")
        .to_owned()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a fresh profile.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver ({e}): install Debian's `chromium` and `chromium-driver` (.ci/run does)")
            });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let status = format!("http://127.0.0.1:{port}/status");
        eventually(WAIT, || async {
            let answer = http.get(&status).send().await.ok()?;
            let body: Value = answer.json().await.ok()?;
            body["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        let profile =
            std::env::temp_dir().join(format!("paymirror-chromium-{}", uuid::Uuid::new_v4()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_binary(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let answer: Value = http
            .post(format!("http://127.0.0.1:{port}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("session JSON");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver could not start Chromium: {answer}"))
            .to_owned();
        Browser {
            driver,
            port,
            session,
            http,
            profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.port, self.session
        );
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("WebDriver JSON");
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page's address contains `part` (a navigation has completed:
    /// elements found before it could be the previous page's).
    pub async fn wait_for_url(&self, part: &str) {
        eventually(WAIT, || async {
            self.current_url().await.contains(part).then_some(())
        })
        .await
    }

    /// Returns the elements matching `css` now (possibly none).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits for an element matching `css` and returns it.
    pub async fn find(&self, css: &str) -> Element {
        eventually(WAIT, || async {
            self.find_all(css).await.into_iter().next()
        })
        .await
    }

    pub async fn text(&self, element: &Element) -> String {
        let text = self.get(&format!("/element/{}/text", element.0)).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits for an element matching `css` and returns its text.
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.text(&element).await
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self
            .get(&format!("/element/{}/attribute/{name}", element.0))
            .await;
        value.as_str().map(str::to_owned)
    }

    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    /// Runs `script` in the page (as a function body) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs `script` with a `done` callback as its last argument; returns what it passes.
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// Saves a PNG of the window as `name` in `$PAYMIRROR_SCREENSHOTS` (a directory
    /// relative to the crate), when that is set; does nothing otherwise.
    pub async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("PAYMIRROR_SCREENSHOTS") else {
            return;
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let encoded = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(name), png).expect("screenshot written");
    }
}

impl Drop for Browser {
    /// Ends the session (Chromium exits), then chromedriver is killed with its handle.
    fn drop(&mut self) {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
            }
        }
        let _ = self.driver.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
