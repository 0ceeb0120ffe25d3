//! Headless Chromium driven through ChromeDriver's W3C WebDriver API (Debian's `chromium` and
//! `chromium-driver`), for the dashboard's end-to-end tests: open pages, read and click
//! elements, run a script, take screenshots. A small client over `reqwest`; one browser per
//! test, ended on drop.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The WebDriver element key in JSON answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Set to `1` to fail (instead of skip) when Chromium or ChromeDriver is missing.
pub const REQUIRE_ENV: &str = "KICI_TEST_REQUIRE_CHROMIUM";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium's processes outlive ChromeDriver when only it is killed: end the whole
        // process group the driver leads.
        // SAFETY: plain syscall on our own child's group; ESRCH when it is gone is fine.
        #[allow(unsafe_code)]
        unsafe {
            libc::killpg(self.driver.id() as i32, libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

fn find(names: &[&str]) -> Option<std::path::PathBuf> {
    names.iter().map(Path::new).find(|p| p.exists()).map(Path::to_path_buf)
}

impl Browser {
    /// A headless Chromium, or `None` (the caller skips) when it is not installed and
    /// [`REQUIRE_ENV`] is not `1`.
    pub async fn start() -> Option<Browser> {
        let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert_ne!(
                std::env::var(REQUIRE_ENV).as_deref(),
                Ok("1"),
                "Chromium or ChromeDriver is missing but {REQUIRE_ENV}=1 (hint: apt-get install chromium chromium-driver)"
            );
            eprintln!("note: Chromium/ChromeDriver not installed; browser test skipped");
            return None;
        };
        let port = crate::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer on {base}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1000"]
                }
            }}
        });
        let mut browser = Browser {
            driver: child,
            base,
            session: String::new(),
            client,
        };
        let answer = browser
            .call(reqwest::Method::POST, "/session", Some(capabilities))
            .await;
        browser.session = answer["sessionId"].as_str().expect("a WebDriver session").to_string();
        Some(browser)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path} failed with {status}: {answer}"
        );
        answer["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, &self.path("/url"), Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, &self.path("/url"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.path("/execute/sync"),
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Signs in to the dashboard at `platform_url` through its form with `token`, then waits
    /// for the runs list.
    pub async fn sign_in(&self, platform_url: &str, token: &str) {
        self.goto(&format!("{platform_url}/runs")).await;
        self.wait_for(
            "the sign-in form",
            "return document.querySelector('input[name=token]') !== null;",
            json!([]),
        )
        .await;
        self.type_into("input[name=token]", token).await;
        self.click("form[action='/login'] button[type=submit]").await;
        self.wait_for(
            "the runs list",
            "return document.querySelector('table.runs') !== null;",
            json!([]),
        )
        .await;
    }

    /// Runs `script` as an asynchronous script: it calls its last argument with the result.
    pub async fn eval_async(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.path("/execute/async"),
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The serious and critical accessibility violations axe-core (npm, its `axe.min.js` at
    /// `KICI_TEST_AXE`, installed by `scripts/axe.sh`) finds on the page, each as `rule:
    /// elements`; `None` (the caller skips) when it is not installed and
    /// `KICI_TEST_REQUIRE_AXE` is not `1`.
    pub async fn accessibility_violations(&self) -> Option<Vec<String>> {
        let source = match std::env::var("KICI_TEST_AXE").map(std::fs::read_to_string) {
            Ok(Ok(source)) => source,
            _ => {
                assert_ne!(
                    std::env::var("KICI_TEST_REQUIRE_AXE").as_deref(),
                    Ok("1"),
                    "KICI_TEST_AXE does not name axe.min.js but KICI_TEST_REQUIRE_AXE=1 (hint: scripts/axe.sh)"
                );
                eprintln!("note: axe-core not installed (scripts/axe.sh); accessibility check skipped");
                return None;
            }
        };
        self.eval(&format!("{source}\nreturn true;"), json!([])).await;
        let found = self
            .eval_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then((result) => done(result.violations
                   .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                   .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)));",
                json!([]),
            )
            .await;
        Some(serde_json::from_value(found).unwrap_or_default())
    }

    /// The visible text of the first element matching `selector`, `None` if there is none.
    pub async fn text(&self, selector: &str) -> Option<String> {
        let value = self
            .eval(
                "const el = document.querySelector(arguments[0]); return el ? el.innerText : null;",
                json!([selector]),
            )
            .await;
        value.as_str().map(str::to_string)
    }

    /// Waits until `check` (a script returning a value; `null`/`false` means not yet) is truthy;
    /// returns its value. Panics with `what` after 20 s.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.eval(script, args.clone()).await;
            if !(value.is_null() || value == Value::Bool(false)) {
                return value;
            }
            if Instant::now() > deadline {
                let body = self.text("body").await.unwrap_or_default();
                panic!("timed out waiting for {what}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn element(&self, selector: &str) -> String {
        let value = self
            .call(
                reqwest::Method::POST,
                &self.path("/element"),
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await;
        value[ELEMENT].as_str().expect("an element").to_string()
    }

    pub async fn click(&self, selector: &str) {
        let id = self.element(selector).await;
        self.call(
            reqwest::Method::POST,
            &self.path(&format!("/element/{id}/click")),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, selector: &str, text: &str) {
        let id = self.element(selector).await;
        self.call(
            reqwest::Method::POST,
            &self.path(&format!("/element/{id}/value")),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let data = self.call(reqwest::Method::GET, &self.path("/screenshot"), None).await;
        let png = decode_base64(data.as_str().expect("base64 screenshot"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("screenshot written");
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::decode_base64("aGVsbG8="), b"hello");
        assert_eq!(super::decode_base64("aGk="), b"hi");
    }
}
