//! A small W3C WebDriver client over `ureq`, for the tests of `orch serve` in a real browser:
//! Debian's `chromedriver` started on a loopback port of its own per test (killed when the
//! [`Driver`] drops), a headless Chromium session, and the few commands the tests use
//! (navigate, find elements, an element's text, type, click, run a script).
//!
//! Without `chromedriver` the tests skip, saying so, unless `ORCH_REQUIRE_CHROMIUM` is set (CI
//! installs it): then they fail.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const REQUIRE_CHROMIUM: &str = "ORCH_REQUIRE_CHROMIUM";
/// The key of an element reference in W3C WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on its own loopback port.
pub struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

/// Where `chromedriver` is, if installed.
fn chromedriver() -> Option<std::path::PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

impl Driver {
    /// `chromedriver` started and ready; `None` (the test skips) when it is not installed and
    /// `ORCH_REQUIRE_CHROMIUM` is unset.
    pub fn start() -> Option<Driver> {
        let Some(exe) = chromedriver() else {
            assert!(
                std::env::var_os(REQUIRE_CHROMIUM).is_none(),
                "{REQUIRE_CHROMIUM} is set but chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
            return None;
        };
        // The port it chooses itself (`--port=0`), read from the line it prints.
        let mut child = Command::new(exe)
            .args(["--port=0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("chromedriver said no port within 30 s")
            });
            if let Some(p) = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|r| r.trim().trim_end_matches('.').parse::<u16>().ok())
            {
                break p;
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        // Ready when `/status` says so (bounded).
        let deadline = Instant::now() + Duration::from_secs(30);
        while d
            .call("GET", "/status", None)
            .map(|v| v["value"]["ready"] == true)
            != Ok(true)
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(d)
    }

    /// A WebDriver command: its `value`'s whole answer, or the error's JSON.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .content_type("application/json")
                .send(b.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut resp = resp.map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if ok { Ok(v) } else { Err(v.to_string()) }
    }

    /// A new headless Chromium session.
    pub fn session(&self) -> Session<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]}
        }}});
        let v = self
            .call("POST", "/session", Some(caps))
            .unwrap_or_else(|e| panic!("new WebDriver session: {e}"));
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id: {v}"))
            .to_string();
        Session { d: self, id }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session; deleted (the browser closed) when dropped.
pub struct Session<'a> {
    d: &'a Driver,
    id: String,
}

impl Session<'_> {
    fn cmd(&self, method: &str, rest: &str, body: Option<Value>) -> Result<Value, String> {
        self.d
            .call(method, &format!("/session/{}{rest}", self.id), body)
            .map(|v| v["value"].clone())
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})))
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// The elements `css` selects now.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The rendered text of the first element `selector` matches (empty when none does), found
    /// and read in one script: the live page may re-render between a find and a read (CI saw
    /// "stale element reference" when an update came in between).
    pub fn text_at(&self, selector: &str) -> String {
        self.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            serde_json::json!([selector]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// An element's rendered text; empty when the live page replaced it since it was found
    /// ("stale element reference": a caller that waits for a text asks again).
    pub fn text(&self, element: &str) -> String {
        match self.cmd("GET", &format!("/element/{element}/text"), None) {
            Ok(v) => v.as_str().unwrap_or_default().to_string(),
            Err(e) if e.contains("stale element") => String::new(),
            Err(e) => panic!("text: {e}"),
        }
    }

    pub fn click(&self, element: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .unwrap_or_else(|e| panic!("click: {e}"));
    }

    /// Clicks the first element `css` selects, found again while the page replaces it (a
    /// render between the find and the click), at most `timeout`.
    pub fn click_css(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.find_all(css);
            let clicked = found
                .first()
                .map(|e| self.cmd("POST", &format!("/element/{e}/click"), Some(json!({}))));
            match clicked {
                Some(Ok(_)) => return,
                Some(Err(e)) if !e.contains("stale element") => panic!("click {css}: {e}"),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "could not click {css} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into an element.
    pub fn type_text(&self, element: &str, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .unwrap_or_else(|e| panic!("type: {e}"));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page: what it returns.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .unwrap_or_else(|e| panic!("execute: {e}"))
    }

    /// Polls `script` until it returns something truthy (`true`, a non-empty string); fails
    /// the test after `timeout`, with what it returned last and `what`.
    pub fn wait_until(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.execute(script, json!([]));
            let truthy = match &v {
                Value::Bool(b) => *b,
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self
            .d
            .call("DELETE", &format!("/session/{}", self.id), None);
    }
}
