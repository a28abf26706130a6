//! [`Browser`]: a real, headless Chromium driven through chromedriver (WebDriver), for the
//! dashboard's tests.
//!
//! - [`available`] says whether Chromium and chromedriver are installed; when they are not, it
//!   prints a note and the test skips, unless `STEWARD_TEST_REQUIRE` names `chromium` (as in
//!   CI), which makes it a failure.
//! - [`Browser::start`] runs `chromedriver --port=0` (it picks a free port itself and says which,
//!   so two tests cannot race for one) as a [`Daemon`], waits for its `/status` to say ready,
//!   and opens a session in a headless Chromium with a fresh profile in the browser's own temp
//!   dir. `Drop` closes the session and kills chromedriver with every browser process it
//!   started, and reaps them.
//! - The methods are blocking, like the rest of the kit, so that a test waits on the page with
//!   [`Browser::wait_for`] (or [`wait_until`](crate::wait_until)) exactly as it waits on
//!   steward; [`Browser::block_on`] and [`Browser::client`] reach the rest of the `fantoccini`
//!   client.
//! - [`Browser::screenshot`] saves PNGs under [`artifacts_dir`]: `$STEWARD_ARTIFACTS/<sub>/`,
//!   or `target/artifacts/<sub>/` in the workspace.

use std::env;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{wait, Daemon, DEADLINE};

/// The WebDriver client [`Browser::client`] is, for the tests that reach past this module.
pub use fantoccini;

/// What `STEWARD_TEST_REQUIRE` says to make a missing browser a failure.
const REQUIRE_NAME: &str = "chromium";

/// The flags Chromium needs to run headless as root in a container, without a GPU, and
/// without reaching for the network on its own (updates, sync, field trials, QUIC probes).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--password-store=basic",
    "--force-device-scale-factor=1",
    "--lang=en-US",
    "--window-size=1440,900",
    // A screen larger than any window asked for: headless's screen is otherwise the size of
    // --window-size, and a window grown past it (for its frame) is clamped back.
    "--screen-info={0,0 2560x1600}",
];

/// The Chromium and chromedriver executables, if both are on `PATH`.
fn find_tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| on_path(name))?;
    let driver = on_path("chromedriver")?;
    Some((chromium, driver))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Whether Chromium and chromedriver are installed. When they are not, prints a note saying the
/// test is skipped (the caller returns); when `STEWARD_TEST_REQUIRE` names `chromium`, panics
/// instead.
#[track_caller]
pub fn available() -> bool {
    if find_tools().is_some() {
        return true;
    }
    let required =
        env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t.trim() == REQUIRE_NAME));
    let install = "apt-get install chromium chromium-driver";
    assert!(
        !required,
        "Chromium and chromedriver are required (STEWARD_TEST_REQUIRE) but not on PATH: {install}"
    );
    eprintln!("SKIPPED: Chromium or chromedriver is not on PATH ({install})");
    false
}

/// Where the tests' screenshots go: `$STEWARD_ARTIFACTS/<sub>` when that is set, else
/// `target/artifacts/<sub>` in the workspace. Created if need be.
///
/// # Panics
/// If the folder cannot be created.
#[track_caller]
pub fn artifacts_dir(sub: &str) -> PathBuf {
    let base = match env::var_os("STEWARD_ARTIFACTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // This crate is crates/testkit in the workspace.
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("crates/testkit has a workspace two levels up")
            .join("target/artifacts"),
    };
    let dir = base.join(sub);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A headless Chromium session and the chromedriver that runs it; see the module doc.
pub struct Browser {
    // Fields drop in order: the session is closed (in `Drop`) first, then the runtime, then
    // chromedriver and its browsers are killed, then the profile is removed.
    client: Option<Client>,
    rt: tokio::runtime::Runtime,
    driver: Daemon,
    driver_addr: SocketAddr,
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a 1440x900 viewport.
    ///
    /// # Panics
    /// If Chromium or chromedriver is missing (call [`available`] first) or does not start;
    /// the message has chromedriver's output.
    #[track_caller]
    pub fn start() -> Browser {
        let (chromium, chromedriver) = find_tools()
            .expect("Chromium and chromedriver on PATH (check testkit::browser::available() first)");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let port_line = "started successfully on port ";
        // With --port=0 chromedriver takes a free port on one address family and then wants
        // the same number on the other, which another test may hold: it says so and exits.
        // A new one picks another port.
        let mut attempts = 0;
        let (driver, out) = loop {
            let driver = Daemon::start(&chromedriver, ["--port=0"], dir.path());
            let out = driver.wait_for_output(
                &format!("{port_line:?} in the output"),
                |out| out.contains(port_line) || out.contains("port not available"),
                DEADLINE,
            );
            attempts += 1;
            if out.contains(port_line) || attempts == 5 {
                break (driver, out);
            }
        };
        let port: u16 = out
            .split(port_line)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in chromedriver's output:\n{}", driver.dump()));
        let driver_addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait::wait_until_or_dump(
            DEADLINE,
            "chromedriver's /status to say ready",
            || driver.dump(),
            || {
                let (_, body) = http(driver_addr, "GET", "/status", None).ok()?;
                let status: Value = serde_json::from_str(&body).ok()?;
                (status["value"]["ready"] == true).then_some(())
            },
        );

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"));
        let profile = dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            // The page's console (errors, CSP violations), read by `console`.
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else { unreachable!("an object literal") };
        let url = format!("http://{driver_addr}");
        let connect = async {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            builder.capabilities(caps);
            builder.connect(&url).await
        };
        let client = rt
            .block_on(connect)
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}\n{}", driver.dump()));
        let browser = Browser { client: Some(client), rt, driver, driver_addr, dir };
        // --window-size is the window's; the page gets less (headless has a frame too).
        browser.set_viewport(1440, 900);
        browser
    }

    /// The WebDriver client, for what this type does not wrap; run its futures with
    /// [`Browser::block_on`].
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open until Drop")
    }

    /// Runs a future (of [`Browser::client`]) to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// chromedriver's process (its output says what went wrong with a session).
    pub fn driver(&self) -> &Daemon {
        &self.driver
    }

    /// The browser's temp dir (its profile is `profile/` in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens `url` and waits for it to load.
    #[track_caller]
    pub fn goto(&self, url: &str) {
        self.block_on(self.client().goto(url)).unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Runs `script` (a function body: `return ...` gives the value) in the page with `args`
    /// (`arguments[0]`...), and returns its value.
    #[track_caller]
    pub fn eval_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.block_on(self.client().execute(script, args))
            .unwrap_or_else(|e| panic!("script failed: {e}\nscript: {script}"))
    }

    /// [`Browser::eval_with`] without arguments.
    #[track_caller]
    pub fn eval(&self, script: &str) -> Value {
        self.eval_with(script, Vec::new())
    }

    /// Runs `script` as an asynchronous script: it ends by calling its last argument
    /// (`arguments[arguments.length - 1]`) with the value to return.
    #[track_caller]
    pub fn eval_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.block_on(self.client().execute_async(script, args))
            .unwrap_or_else(|e| panic!("async script failed: {e}\nscript: {script}"))
    }

    /// Waits until `script` (as for [`Browser::eval`]) returns something truthy (not null,
    /// false, 0 or ""), and returns it. Checks again and again, never sleeping a fixed time.
    ///
    /// # Panics
    /// After [`DEADLINE`]; the message names `what` and shows the page's text.
    #[track_caller]
    pub fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_for_within(DEADLINE, what, script)
    }

    /// [`Browser::wait_for`] with its own deadline.
    #[track_caller]
    pub fn wait_for_within(&self, deadline: Duration, what: &str, script: &str) -> Value {
        wait::wait_until_or_dump(
            deadline,
            what,
            || self.describe_page(),
            || {
                // A script error (the page is reloading, say) is a "not yet".
                let value = self.block_on(self.client().execute(script, Vec::new())).ok()?;
                truthy(&value).then_some(value)
            },
        )
    }

    /// The text content of the first element matching `css` (`None` if there is none).
    #[track_caller]
    pub fn text(&self, css: &str) -> Option<String> {
        let value = self.eval_with(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(css)],
        );
        value.as_str().map(str::to_owned)
    }

    /// Clicks the element matching `css`, as a user would (WebDriver's element click: it must
    /// be visible and enabled).
    #[track_caller]
    pub fn click(&self, css: &str) {
        let client = self.client();
        self.block_on(async { client.find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}\n{}", self.describe_page()));
    }

    /// Clears the field matching `css` and types `text` into it.
    #[track_caller]
    pub fn type_into(&self, css: &str, text: &str) {
        let client = self.client();
        self.block_on(async {
            let field = client.find(Locator::Css(css)).await?;
            field.clear().await?;
            field.send_keys(text).await
        })
        .unwrap_or_else(|e| panic!("cannot type into {css}: {e}\n{}", self.describe_page()));
    }

    /// Presses Tab with the focus wherever it is.
    #[track_caller]
    pub fn press_tab(&self) {
        let client = self.client();
        self.block_on(async { client.active_element().await?.send_keys("\u{E004}").await })
            .unwrap_or_else(|e| panic!("cannot press Tab: {e}"));
    }

    /// Resizes the window so that the page's viewport is `width` x `height` CSS pixels.
    #[track_caller]
    pub fn set_viewport(&self, width: u32, height: u32) {
        let client = self.client();
        self.block_on(client.set_window_size(width, height))
            .unwrap_or_else(|e| panic!("cannot resize the window: {e}"));
        // The window may be larger than its viewport: grow it by the difference.
        let inner = self.eval("return [window.innerWidth, window.innerHeight];");
        let (w, h) = (inner[0].as_u64().unwrap_or(0) as u32, inner[1].as_u64().unwrap_or(0) as u32);
        if (w, h) != (width, height) {
            self.block_on(
                client.set_window_size(width + width.saturating_sub(w), height + height.saturating_sub(h)),
            )
            .unwrap_or_else(|e| panic!("cannot resize the window: {e}"));
        }
        self.wait_for(
            &format!("a {width}x{height} viewport"),
            &format!("return window.innerWidth === {width} && window.innerHeight === {height};"),
        );
    }

    /// Saves a PNG of the viewport as `<artifacts_dir(sub)>/<name>.png` and returns its path.
    #[track_caller]
    pub fn screenshot(&self, sub: &str, name: &str) -> PathBuf {
        let png = self
            .block_on(self.client().screenshot())
            .unwrap_or_else(|e| panic!("cannot take a screenshot: {e}"));
        let path = artifacts_dir(sub).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// The page's console messages since the last call (chromedriver's log of type
    /// `browser`), each as `LEVEL message`: script errors and Content-Security-Policy
    /// violations show here.
    #[track_caller]
    pub fn console(&self) -> Vec<String> {
        let session = self
            .block_on(self.client().session_id())
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the session has no id"));
        let path = format!("/session/{session}/se/log");
        let (status, body) = http(self.driver_addr, "POST", &path, Some(r#"{"type":"browser"}"#))
            .unwrap_or_else(|e| panic!("cannot read the browser's log from chromedriver: {e}"));
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let Some(entries) = value["value"].as_array().filter(|_| status == 200) else {
            panic!("chromedriver's log answered {status}: {body}");
        };
        entries
            .iter()
            .map(|e| {
                format!("{} {}", e["level"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or(""))
            })
            .collect()
    }

    /// The page's address and visible text, for failure messages.
    pub fn describe_page(&self) -> String {
        let script = "return location.href + '\\n' + (document.body ? document.body.innerText : '');";
        match self.block_on(self.client().execute(script, Vec::new())) {
            Ok(Value::String(text)) => {
                let text: String = text.chars().take(4000).collect();
                format!("--- page ---\n{text}\n--- end of page ---")
            }
            Ok(other) => format!("--- page: {other} ---"),
            Err(e) => format!("--- page: cannot read it: {e} ---"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Close the session so that Chromium leaves cleanly; chromedriver's Drop (a Daemon)
        // then kills whatever is left. Bounded: a hung browser must not hang the test.
        if let Some(client) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), client.close()).await });
        }
    }
}

/// JavaScript's truthiness of a WebDriver result.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// One HTTP/1.1 request to chromedriver, on a connection of its own (for what the WebDriver
/// client does not cover): the status code and the body. chromedriver keeps the connection
/// open whatever the request says, so the body is read by its length.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let bad = |what: &str| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad HTTP response: {what}"))
    };
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(&line))?;
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("no end of headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| bad(header))?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
