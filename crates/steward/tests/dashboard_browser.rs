//! The dashboard (`[dashboard] listen`) in a real headless Chromium, driven through
//! chromedriver (`testkit::browser`): sign-in, the live program table, the buttons and what the
//! API says after them, roles and CSRF, the log panel, text that must stay text, a lost
//! connection and an ended session, phone and wide screens, the keyboard.
//!
//! Each test runs its own steward and its own browser, and waits on the page's DOM (the ids of
//! docs/dashboard.md), never a fixed time. Screenshots of the main views go to
//! `$STEWARD_ARTIFACTS/dashboard/` (else `target/artifacts/dashboard/`) for a person to look at.
//!
//! Skipped when Chromium or chromedriver is missing, unless `STEWARD_TEST_REQUIRE` names
//! `chromium` (as in CI).

use std::path::Path;

use serde_json::{json, Value};
use testkit::browser::{self, Browser};
use testkit::tempfile::TempDir;

use crate::common::*;

const OPERATOR_TOKEN: &str = "operator-token-3f9a1c77e2b4";
const VIEWER_TOKEN: &str = "viewer-token-8d2e6b51c0f9";
const ADMIN_TOKEN: &str = "admin-token-51e0a7c3d96b";

/// What an injected script would set: it must never run.
const XSS_IMG: &str = r#"<img src=x onerror="window.__xss=1">"#;
const XSS_SCRIPT: &str = "<script>window.__xss=1</script>";

/// A steward serving the dashboard on a port of its own, with three tokens (`ops` operator,
/// `watcher` viewer, `boss` admin) in files of the test's temp dir.
struct Dashboard {
    steward: Steward,
    /// `http://127.0.0.1:PORT/ui/`
    url: String,
    /// The token files (and anything else the test needs), kept until the end.
    dir: TempDir,
}

impl Dashboard {
    /// `programs` (TOML tables) under a `[dashboard]` on 127.0.0.1:0 and `extra` (more of
    /// `[dashboard]`, such as `session_timeout`).
    #[track_caller]
    fn start(programs: &str, extra: &str) -> Dashboard {
        let dir = testkit::tempfile::tempdir().unwrap();
        let config = config(dir.path(), programs, extra, true);
        let steward = start(&config);
        let url = dashboard_url(&steward);
        steward.wait_api();
        Dashboard { steward, url, dir }
    }

    fn port(&self) -> u16 {
        port_of(&self.url)
    }
}

/// The config: `programs`, the dashboard's table with `listen`, and the tokens (without the
/// operator's when `with_operator` is false, as after its removal).
fn config(dir: &Path, programs: &str, dashboard: &str, with_operator: bool) -> String {
    let mut tokens = String::new();
    for (name, role, token) in [
        ("ops", "operator", OPERATOR_TOKEN),
        ("watcher", "viewer", VIEWER_TOKEN),
        ("boss", "admin", ADMIN_TOKEN),
    ] {
        if name == "ops" && !with_operator {
            continue;
        }
        let file = dir.join(format!("{name}.token"));
        std::fs::write(&file, format!("{token}\n")).unwrap();
        tokens += &format!(
            "[[api.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_file = {}\n\n",
            q(file.to_string_lossy())
        );
    }
    let dashboard = if dashboard.contains("listen") {
        dashboard.to_owned()
    } else {
        format!("listen = \"127.0.0.1:0\"\n{dashboard}")
    };
    format!("{programs}\n[dashboard]\n{dashboard}\n{tokens}")
}

/// The dashboard's URL, from steward's `dashboard` event ("dashboard on http://ADDR/ui/").
#[track_caller]
fn dashboard_url(s: &Steward) -> String {
    let listening = s.wait_for_event("the dashboard's listener", |e| e.is_daemon("dashboard"));
    let url = url_in(&listening).unwrap_or_else(|| panic!("no URL in {listening:?}"));
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/ui/"), "{url}");
    url
}

fn port_of(url: &str) -> u16 {
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

/// A program that runs until stopped.
fn steady(name: &str) -> String {
    format!("[programs.{name}]\ncommand = {}\n", child_cmd(&["--sleep", "1h"]))
}

/// A program run by `sh -c SCRIPT` (these tests run on Linux only).
fn shell(name: &str, script: &str) -> String {
    format!("[programs.{name}]\ncommand = [\"/bin/sh\", \"-c\", {}]\n", q(script))
}

/// The JavaScript of "the element `sel` is shown": present, not `hidden`, laid out.
fn shown(sel: &str) -> String {
    format!(
        "const e = document.querySelector({sel:?}); \
         return !!e && !e.hidden && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';"
    )
}

/// The selector of program `name`'s row.
fn row(name: &str) -> String {
    format!("tr[data-program=\"{name}\"]")
}

fn skip() -> bool {
    !browser::available()
}

/// Opens the dashboard and signs in with `token`; waits for the main view and `#whoami` to
/// name `who`.
#[track_caller]
fn sign_in(b: &Browser, url: &str, token: &str, who: &str) {
    if !b.eval("return location.href.includes('/ui/')").as_bool().unwrap_or(false) {
        b.goto(url);
    }
    b.wait_for("the sign-in form", &shown("form#signin"));
    b.type_into("#token", token);
    b.click("form#signin [type=submit]");
    b.wait_for("the main view", &shown("#main"));
    b.wait_for(
        &format!("#whoami to name {who}"),
        &format!(
            "const w = document.querySelector('#whoami'); return !!w && w.textContent.includes({who:?});"
        ),
    );
    assert!(!b.eval(&shown("form#signin")).as_bool().unwrap(), "the sign-in form is still shown");
}

/// Checks that the sign-in form says the session ended.
#[track_caller]
fn assert_says_ended(b: &Browser) {
    let message = b.text("#signin-error").unwrap_or_default();
    assert!(message.to_lowercase().contains("session has ended"), "#signin-error: {message:?}");
}

/// Waits until program `name`'s row has `data-state="state"`.
#[track_caller]
fn wait_state(b: &Browser, name: &str, state: &str) {
    b.wait_for(
        &format!("{name}'s row to say {state}"),
        &format!(
            "const r = document.querySelector({:?}); return !!r && r.dataset.state === {state:?};",
            row(name)
        ),
    );
}

/// The text of cell `cell` (`state`, `restarts`...) in `name`'s row.
#[track_caller]
fn cell(b: &Browser, name: &str, cell: &str) -> String {
    b.text(&format!("{} td.{cell}", row(name))).unwrap_or_else(|| panic!("no td.{cell} in {name}'s row"))
}

/// Fails on script errors and Content-Security-Policy violations in the page's console.
#[track_caller]
fn assert_clean_console(b: &Browser) {
    let bad: Vec<String> = b
        .console()
        .into_iter()
        .filter(|m| {
            m.contains("Content Security Policy") || m.contains("Uncaught") || m.contains("TypeError")
        })
        .collect();
    assert!(bad.is_empty(), "the page's console has errors:\n{}", bad.join("\n"));
}

/// `None` if the page is no wider than the viewport (no horizontal scroll bar); else the
/// widths and the elements that stick out on the right, for the failure message.
fn overflow(b: &Browser) -> Option<String> {
    let found = b.eval(
        "const d = document.documentElement, w = window.innerWidth; \
         if (d.scrollWidth <= w && document.body.scrollWidth <= w) return null; \
         const out = [...document.querySelectorAll('body *')] \
           .filter(e => e.getClientRects().length > 0 && e.getBoundingClientRect().right > w + 0.5) \
           .slice(0, 12) \
           .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') \
                + ' right=' + Math.round(e.getBoundingClientRect().right)); \
         return `document ${d.scrollWidth} px, body ${document.body.scrollWidth} px, viewport ${w} px; sticking out: ${out.join(', ')}`;",
    );
    found.as_str().map(str::to_owned)
}

#[test]
fn sign_in_then_programs_live_and_a_crash_watched() {
    if skip() {
        return;
    }
    let crashy = format!(
        "[programs.crashy]\ncommand = {}\nrestart = \"on-failure\"\nrestart_delay = \"1s\"\n",
        child_cmd(&["--sleep", "2s", "--exit", "1"])
    );
    let web = format!("[programs.web]\ncommand = {}\ninstances = 2\n", child_cmd(&["--sleep", "1h"]));
    let d = Dashboard::start(&format!("{}\n{crashy}\n{web}", steady("steady")), "");
    let b = Browser::start();

    // A wrong token: an error, and no main view.
    b.goto(&d.url);
    b.wait_for("the sign-in form", &shown("form#signin"));
    assert!(!b.eval(&shown("#main")).as_bool().unwrap(), "#main is shown before sign-in");
    b.screenshot("dashboard", "sign-in");
    b.type_into("#token", "not-a-token-of-this-steward");
    b.click("form#signin [type=submit]");
    let error = b.wait_for(
        "#signin-error",
        "const e = document.querySelector('#signin-error'); return !!e && !e.hidden && e.textContent.trim();",
    );
    assert!(!error.as_str().unwrap().contains("not-a-token"), "the error echoes the token: {error}");
    assert!(!b.eval(&shown("#main")).as_bool().unwrap(), "#main is shown after a wrong token");

    sign_in(&b, &d.url, OPERATOR_TOKEN, "ops");
    let whoami = b.text("#whoami").unwrap();
    assert!(whoami.contains("operator"), "#whoami: {whoami}");
    assert!(!whoami.contains(OPERATOR_TOKEN), "#whoami shows the token: {whoami}");

    // Every program and instance has a row, with its state in words (not color alone).
    for name in ["steady", "crashy", "web:0", "web:1"] {
        wait_state(&b, name, "running");
        let state = cell(&b, name, "state");
        assert!(state.contains("running"), "{name}'s state cell: {state:?}");
        for c in ["pid", "uptime", "restarts", "exit", "health", "mem", "cpu"] {
            cell(&b, name, c);
        }
        for action in ["start", "stop", "restart"] {
            let sel = format!("{} button[data-action=\"{action}\"]", row(name));
            assert!(b.text(&sel).is_some(), "no {sel}");
        }
    }
    let pid = d.steward.program("steady")["pid"].as_u64().unwrap();
    assert_eq!(cell(&b, "steady", "pid").trim(), pid.to_string());
    // The group of instances gets a rolling restart and a scale control.
    assert!(
        b.eval("return !!document.querySelector('button[data-action=\"roll\"]') && !!document.querySelector('input.scale')")
            .as_bool()
            .unwrap(),
        "no rolling restart button or scale input for the group web"
    );

    // crashy exits after 2 s and comes back: watched live, without reloading the page (a
    // marker on the window shows it is the same page at the end). From now on, every state
    // its row shows is recorded, starting with the one it shows now: if crashy is already
    // waiting out its restart_delay here, the page's next change is back to running.
    // A number half typed into the scale field, and the buttons, outlive the updates: rows
    // are changed in place, so a click or a keystroke is never lost to a redraw.
    b.type_into("input.scale", "3");
    let before = b.eval(
        "window.__samePage = true; \
         window.__crashyStop = document.querySelector('tr[data-program=\"crashy\"] button[data-action=\"stop\"]'); \
         window.__crashyStates = [document.querySelector('tr[data-program=\"crashy\"]').dataset.state]; \
         new MutationObserver(() => { const r = document.querySelector('tr[data-program=\"crashy\"]'); \
           if (r) window.__crashyStates.push(r.dataset.state); }) \
           .observe(document.querySelector('table#programs'), {subtree: true, attributes: true, childList: true, characterData: true}); \
         return parseInt(document.querySelector('tr[data-program=\"crashy\"] td.restarts').textContent, 10);",
    );
    let before = before.as_u64().unwrap_or_else(|| panic!("crashy's restarts are not a number: {before}"));
    b.wait_for(
        "crashy's restarts to go up and crashy to run again",
        &format!(
            "const r = document.querySelector('tr[data-program=\"crashy\"]'); \
             return !!r && parseInt(r.querySelector('td.restarts').textContent, 10) > {before} && r.dataset.state === 'running';"
        ),
    );
    let seen = b.eval("return window.__crashyStates;");
    assert!(
        seen.as_array().unwrap().iter().any(|s| s != "running"),
        "the page never showed crashy out of running: {seen}"
    );
    assert_eq!(b.eval("return window.__samePage === true"), json!(true), "the page was reloaded");
    assert_eq!(
        b.eval("return window.__crashyStop === document.querySelector('tr[data-program=\"crashy\"] button[data-action=\"stop\"]')"),
        json!(true),
        "crashy's stop button was replaced by an update"
    );
    assert_eq!(
        b.eval("return document.querySelector('input.scale').value"),
        json!("3"),
        "the typed scale was reset"
    );
    assert!(d.steward.program("crashy")["restarts"].as_u64().unwrap() > before);
    // Its exit is in the recent events, newest first.
    b.wait_for(
        "crashy's exit in #events",
        "return [...document.querySelectorAll('ol#events li')].some(li => li.textContent.includes('crashy'));",
    );
    b.screenshot("dashboard", "signed-in-wide");
    assert_clean_console(&b);
}

#[test]
fn stop_and_start_with_the_buttons() {
    if skip() {
        return;
    }
    let d = Dashboard::start(&format!("{}\n{}", steady("steady"), steady("other")), "");
    let b = Browser::start();
    sign_in(&b, &d.url, OPERATOR_TOKEN, "ops");
    wait_state(&b, "steady", "running");
    wait_state(&b, "other", "running");

    b.click(&format!("{} button[data-action=\"stop\"]", row("steady")));
    wait_state(&b, "steady", "stopped");
    assert!(cell(&b, "steady", "state").contains("stopped"));
    assert_eq!(d.steward.program("steady")["state"], "stopped");
    assert_eq!(d.steward.program("other")["state"], "running", "stop touched another program");

    let before = d.steward.program("other")["pid"].clone();
    b.click(&format!("{} button[data-action=\"start\"]", row("steady")));
    wait_state(&b, "steady", "running");
    assert_eq!(d.steward.program("steady")["state"], "running");

    b.click(&format!("{} button[data-action=\"restart\"]", row("other")));
    wait_until(DEADLINE, "other to run with a new pid", || {
        let p = d.steward.program("other");
        (p["state"] == "running" && p["pid"] != before).then_some(())
    });
    let pid = d.steward.program("other")["pid"].as_u64().unwrap().to_string();
    b.wait_for(
        "other's new pid in its row",
        &format!(
            "const c = document.querySelector('{} td.pid'); return !!c && c.textContent.trim() === {pid:?};",
            row("other")
        ),
    );
    // The audit log has the clicks, as the dashboard's, by the token's name.
    let audit = std::fs::read_to_string(d.steward.path(".steward/audit.log")).unwrap_or_default();
    let entries: Vec<Value> = audit.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for (action, target) in [("stop", "steady"), ("start", "steady"), ("restart", "other")] {
        assert!(
            entries.iter().any(|e| e["who"] == "ops"
                && e["transport"] == "dashboard"
                && e["action"] == action
                && e["targets"] == json!([target])
                && e["result"] == "ok"),
            "no audit entry for {action} {target} by ops through the dashboard:\n{audit}"
        );
    }
    assert_clean_console(&b);
}

#[test]
fn a_viewer_cannot_act_and_a_forged_request_is_refused() {
    if skip() {
        return;
    }
    let d = Dashboard::start(&steady("steady"), "");
    let b = Browser::start();

    sign_in(&b, &d.url, VIEWER_TOKEN, "watcher");
    wait_state(&b, "steady", "running");
    for action in ["start", "stop", "restart"] {
        let sel = format!("{} button[data-action=\"{action}\"]", row("steady"));
        let button = b.eval(&format!(
            "const e = document.querySelector({sel:?}); return e && [e.hasAttribute('disabled'), e.title];"
        ));
        assert_eq!(button[0], json!(true), "{sel} is not disabled for a viewer: {button}");
        assert!(button[1].as_str().unwrap().contains("operator"), "{sel}'s title: {button}");
    }
    assert_eq!(b.eval("return document.querySelector('#reload').hasAttribute('disabled')"), json!(true));
    b.screenshot("dashboard", "viewer");
    // The viewer's session cannot act even with its CSRF token: the role decides.
    let session = b.eval_async(
        "const done = arguments[arguments.length - 1]; \
         fetch('/ui/session').then(r => r.json()).then(done, e => done(String(e)));",
        vec![],
    );
    let csrf = session["csrf"].as_str().unwrap_or_else(|| panic!("GET /ui/session: {session}")).to_owned();
    let forged = forge(&b, Some(&csrf));
    assert_eq!(forged[0], 403, "a viewer's stop: {forged}");

    // Sign out, and in as the operator.
    b.click("#signout");
    b.wait_for("the sign-in form after signing out", &shown("form#signin"));
    sign_in(&b, &d.url, OPERATOR_TOKEN, "ops");
    wait_state(&b, "steady", "running");
    let enabled = b.eval(&format!(
        "return !document.querySelector('{} button[data-action=\"stop\"]').disabled",
        row("steady")
    ));
    assert_eq!(enabled, json!(true), "the operator's stop button is disabled");

    // A request the page did not make: the session cookie alone (no CSRF header) is refused.
    let forged = forge(&b, None);
    assert_eq!(forged[0], 403, "a stop without the CSRF header: {forged}");
    assert!(forged[1].as_str().unwrap().contains("CSRF"), "{forged}");
    let forged = forge(&b, Some("not-the-csrf-token"));
    assert_eq!(forged[0], 403, "a stop with a wrong CSRF header: {forged}");
    assert_eq!(d.steward.program("steady")["state"], "running", "a forged stop stopped the program");
    assert_eq!(
        b.eval(&format!("return document.querySelector('{}').dataset.state", row("steady"))),
        json!("running")
    );
    assert_clean_console(&b);
}

/// `POST /ui/api/v1/stop` of `steady` from the page with its cookie, with `csrf` as the
/// header if given: `[status, body]`.
fn forge(b: &Browser, csrf: Option<&str>) -> Value {
    b.eval_async(
        "const [csrf, done] = arguments; \
         const headers = {'Content-Type': 'application/json'}; \
         if (csrf !== null) headers['X-Steward-CSRF'] = csrf; \
         fetch('/ui/api/v1/stop', {method: 'POST', headers, body: JSON.stringify({names: ['steady']})}) \
           .then(async r => done([r.status, await r.text()]), e => done([0, String(e)]));",
        vec![json!(csrf)],
    )
}

#[test]
fn the_log_panel_follows_filters_and_switches_streams() {
    if skip() {
        return;
    }
    let dir = testkit::tempfile::tempdir().unwrap();
    let trigger = dir.path().join("go");
    let script = format!(
        "echo first line; echo apple one; echo banana two; echo apple three; echo on stderr 1>&2; \
         while [ ! -e {0} ]; do sleep 0.05; done; echo fresh-line-7q2w; exec sleep 3600",
        shell_words_quote(&trigger.to_string_lossy())
    );
    let d = Dashboard::start(&format!("{}\n{}", shell("talker", &script), steady("quiet")), "");
    let b = Browser::start();
    sign_in(&b, &d.url, VIEWER_TOKEN, "watcher");
    wait_state(&b, "talker", "running");

    b.click(&format!("{} button.name", row("talker")));
    b.wait_for("the log panel", &shown("#log"));
    b.wait_for(
        "talker's tail in #log-lines",
        "return [...document.querySelectorAll('#log-lines > *')].some(e => e.textContent.includes('banana two'));",
    );
    // Written after the panel is open: it comes in live.
    std::fs::write(&trigger, "").unwrap();
    b.wait_for(
        "the fresh line in #log-lines",
        "return [...document.querySelectorAll('#log-lines > *')].some(e => e.textContent.includes('fresh-line-7q2w'));",
    );

    // The search shows only the lines that match.
    b.type_into("#log-search", "apple");
    let shown_lines = "return [...document.querySelectorAll('#log-lines > *')] \
                       .filter(e => !e.hidden && e.getClientRects().length > 0).map(e => e.textContent);";
    let lines = b.wait_for(
        "only the apple lines",
        &format!("const l = (() => {{ {shown_lines} }})(); return l.length === 2 && l.every(t => t.includes('apple')) ? l : null;"),
    );
    assert_eq!(lines.as_array().unwrap().len(), 2);
    b.screenshot("dashboard", "log-search");
    b.type_into("#log-search", "");

    // stderr instead of stdout.
    b.click("#log-stderr");
    b.wait_for(
        "the stderr line",
        "const l = [...document.querySelectorAll('#log-lines > *')].map(e => e.textContent); \
         return l.some(t => t.includes('on stderr')) && !l.some(t => t.includes('banana two'));",
    );
    // Charts are inline SVG.
    b.wait_for("the charts", "return !!document.querySelector('#charts svg');");
    assert_clean_console(&b);
}

/// `s` quoted for sh.
fn shell_words_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn text_from_programs_stays_text() {
    if skip() {
        return;
    }
    // A log line with markup, one with escape codes and invalid UTF-8, and a spawn error whose
    // message holds markup (the command's path).
    let script = format!(
        "printf '%s\\n' {} {}; printf 'colour \\033[31mRED\\033[0m \\033]0;title\\007 bad \\377\\376 end\\n'; exec sleep 3600",
        shell_words_quote(XSS_IMG),
        shell_words_quote(XSS_SCRIPT)
    );
    let broken = format!(
        "[programs.broken]\ncommand = [{}]\nrestart = \"never\"\n",
        q(format!("/nonexistent/{XSS_IMG}{XSS_SCRIPT}"))
    );
    let d = Dashboard::start(&format!("{}\n{broken}", shell("marked", &script)), "");
    let b = Browser::start();
    sign_in(&b, &d.url, VIEWER_TOKEN, "watcher");
    wait_state(&b, "marked", "running");
    b.wait_for(
        "broken's spawn failure in #events",
        "return [...document.querySelectorAll('ol#events li')].some(li => li.textContent.includes('/nonexistent/'));",
    );
    b.click(&format!("{} button.name", row("marked")));
    let lines = b.wait_for(
        "marked's lines",
        "const l = [...document.querySelectorAll('#log-lines > *')].map(e => e.textContent); \
         return l.some(t => t.includes('end')) ? l : null;",
    );
    let lines: Vec<&str> = lines.as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(lines.contains(&XSS_IMG), "the img line is not shown as text: {lines:?}");
    assert!(lines.contains(&XSS_SCRIPT), "the script line is not shown as text: {lines:?}");
    let colour = lines.iter().find(|l| l.contains("RED")).unwrap();
    assert!(!colour.chars().any(|c| c.is_control()), "control characters in {colour:?}");
    assert!(colour.contains('\u{FFFD}'), "invalid UTF-8 not shown as U+FFFD: {colour:?}");
    assert!(colour.contains("colour") && colour.contains("bad") && colour.contains("end"), "{colour:?}");

    let events = b
        .eval("return [...document.querySelectorAll('ol#events li')].map(li => li.textContent).join('\\n');");
    assert!(events.as_str().unwrap().contains(XSS_IMG), "the spawn error is not shown as text: {events}");
    // Nothing of it became markup, nor ran.
    assert_eq!(
        b.eval("return document.querySelectorAll('#log-lines img, #log-lines script, #events img, #events script, #programs img').length"),
        json!(0)
    );
    assert_eq!(b.eval("return typeof window.__xss"), json!("undefined"), "an injected script ran");
    assert_clean_console(&b);
}

#[test]
fn a_lost_connection_shows_and_an_ended_session_signs_out() {
    if skip() {
        return;
    }
    let d = Dashboard::start(&steady("steady"), "");
    let port = d.port();
    let b = Browser::start();
    sign_in(&b, &d.url, OPERATOR_TOKEN, "ops");
    wait_state(&b, "steady", "running");
    assert!(!b.eval(&shown("#offline")).as_bool().unwrap(), "#offline is shown while connected");

    // steward goes away: the banner says so and that the page is reconnecting.
    d.steward.shutdown();
    b.wait_for("the #offline banner", &shown("#offline"));
    let banner = b.text("#offline").unwrap();
    assert!(banner.to_lowercase().contains("reconnecting"), "#offline: {banner:?}");
    b.screenshot("dashboard", "offline");

    // A new steward on the same port: the page reconnects, its session is gone (sessions
    // live in memory), so it asks to sign in again.
    let programs = steady("steady");
    std::fs::write(
        d.steward.config_path(),
        config(d.dir.path(), &programs, &format!("listen = \"127.0.0.1:{port}\"\n"), true),
    )
    .unwrap();
    let again = d.steward.run_again();
    b.wait_for_within(DEADLINE * 2, "the sign-in form after steward came back", &shown("form#signin"));
    assert!(!b.eval(&shown("#offline")).as_bool().unwrap(), "#offline is still shown");
    assert_says_ended(&b);
    sign_in(&b, &d.url, OPERATOR_TOKEN, "ops");
    wait_state(&b, "steady", "running");

    // A reload that removes the operator's token ends its session at once.
    std::fs::write(
        d.steward.config_path(),
        config(d.dir.path(), &programs, &format!("listen = \"127.0.0.1:{port}\"\n"), false),
    )
    .unwrap();
    let out = d.steward.cli(["reload"]);
    assert!(out.status.success(), "{}\n{}", testkit::describe(&out), again.dump());
    b.wait_for("the sign-in form after the token was removed", &shown("form#signin"));
    assert!(!b.eval(&shown("#main")).as_bool().unwrap(), "#main is still shown");
    assert_says_ended(&b);
    // The old token no longer signs in (another message); the viewer's still does.
    b.type_into("#token", OPERATOR_TOKEN);
    b.click("form#signin [type=submit]");
    let refused = b.wait_for(
        "#signin-error to refuse the removed token",
        "const t = document.querySelector('#signin-error').textContent.trim(); \
         return t && !t.includes('session has ended') ? t : null;",
    );
    assert!(!b.eval(&shown("#main")).as_bool().unwrap(), "the removed token signed in: {refused}");
    sign_in(&b, &d.url, VIEWER_TOKEN, "watcher");
    let out = d.steward.cli(["shutdown"]);
    assert!(out.status.success(), "{}", testkit::describe(&out));
    again.wait_exit(DEADLINE);
}

#[test]
fn an_idle_session_times_out() {
    if skip() {
        return;
    }
    let d = Dashboard::start(&steady("steady"), "session_timeout = \"3s\"\n");
    let b = Browser::start();
    // Signed in (not with `sign_in`, whose last check could race the timeout on a slow machine).
    b.goto(&d.url);
    b.wait_for("the sign-in form", &shown("form#signin"));
    b.type_into("#token", OPERATOR_TOKEN);
    b.click("form#signin [type=submit]");
    b.wait_for("the main view", &shown("#main"));
    // Unused for 3 s (the live stream is not use): the page goes back to sign-in by itself.
    b.wait_for("the sign-in form after the session timed out", &shown("form#signin"));
    assert!(!b.eval(&shown("#main")).as_bool().unwrap(), "#main is still shown");
    assert_says_ended(&b);
    assert_clean_console(&b);
}

/// A steward with a long program name and a group, signed in at 375x800.
fn on_a_phone() -> (Dashboard, Browser) {
    let web = format!("[programs.web]\ncommand = {}\ninstances = 2\n", child_cmd(&["--sleep", "1h"]));
    let long = steady("a-program-with-a-rather-long-name-for-a-phone");
    let d = Dashboard::start(&format!("{}\n{web}\n{long}", steady("steady")), "");
    let b = Browser::start();
    b.set_viewport(375, 800);
    sign_in(&b, &d.url, OPERATOR_TOKEN, "ops");
    wait_state(&b, "steady", "running");
    wait_state(&b, "web:1", "running");
    (d, b)
}

/// Selects `steady` and brings the log panel into view.
fn open_log_on_a_phone(b: &Browser) {
    b.click(&format!("{} button.name", row("steady")));
    b.wait_for("the log panel", &shown("#log"));
    // Instantly: the page may scroll smoothly.
    b.eval("document.querySelector('#log').scrollIntoView({block: 'start', behavior: 'instant'});");
    b.wait_for(
        "the log panel in view",
        "return document.querySelector('#log').getBoundingClientRect().top < window.innerHeight / 2;",
    );
}

#[test]
fn a_phone_screen() {
    if skip() {
        return;
    }
    let (d, b) = on_a_phone();
    b.screenshot("dashboard", "phone");
    // The buttons work at this width too.
    b.click(&format!("{} button[data-action=\"stop\"]", row("steady")));
    wait_state(&b, "steady", "stopped");
    assert_eq!(d.steward.program("steady")["state"], "stopped");
    open_log_on_a_phone(&b);
    b.screenshot("dashboard", "phone-log");
    assert_clean_console(&b);
}

#[test]
fn no_horizontal_overflow_on_a_phone() {
    if skip() {
        return;
    }
    let (_d, b) = on_a_phone();
    let table = overflow(&b);
    open_log_on_a_phone(&b);
    let log = overflow(&b);
    assert_eq!(
        (table, log),
        (None, None),
        "horizontal overflow at 375 px (the table, then with the log panel)"
    );
}

#[test]
fn a_wide_screen_and_the_keyboard() {
    if skip() {
        return;
    }
    let web = format!("[programs.web]\ncommand = {}\ninstances = 2\n", child_cmd(&["--sleep", "1h"]));
    let d = Dashboard::start(&format!("{}\n{web}", steady("steady")), "");
    let b = Browser::start();
    sign_in(&b, &d.url, OPERATOR_TOKEN, "ops");
    wait_state(&b, "steady", "running");
    wait_state(&b, "web:1", "running");
    b.click(&format!("{} button.name", row("steady")));
    b.wait_for("the log panel", &shown("#log"));
    assert_eq!(overflow(&b), None, "horizontal overflow at 1440 px");

    // Tab from the top of the page reaches a row's Stop button; Enter on it stops the program.
    b.eval("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);");
    let mut reached = None;
    for _ in 0..80 {
        b.press_tab();
        let at = b.eval(
            "const e = document.activeElement; \
             return e && e.matches('tr[data-program] button[data-action=\"stop\"]') ? e.closest('tr').dataset.program : null;",
        );
        if let Some(name) = at.as_str() {
            reached = Some(name.to_owned());
            break;
        }
    }
    let name = reached.expect("Tab never reached a row's Stop button in 80 presses");
    // The focus can be seen.
    let ring = b.eval(
        "const s = getComputedStyle(document.activeElement); \
         return [s.outlineStyle, s.outlineWidth, s.boxShadow];",
    );
    assert!(
        ring[0] != "none" || ring[2] != "none",
        "{name}'s focused Stop button has no visible focus (outline, box-shadow): {ring}"
    );
    b.screenshot("dashboard", "keyboard-focus");
    let client = b.client();
    b.block_on(async { client.active_element().await?.send_keys("\u{E007}").await })
        .unwrap_or_else(|e| panic!("cannot press Enter: {e}"));
    wait_state(&b, &name, "stopped");
    assert_eq!(d.steward.program(&name)["state"], "stopped");
    assert_clean_console(&b);
}
