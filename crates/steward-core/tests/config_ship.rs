//! `[[ship]]` and `[programs.NAME.log] format`: what valid tables resolve to, and every
//! mistake at its line:col with a hint (header values never shown).

use crate::support::{errors_with, hint, parse, parse_with, single_error, FakeEnv};
use std::time::Duration;
use steward_core::config::{defaults, LogFormat, ShipEncoding, ShipEndpoint, SinkKind};

/// Two programs (lines 1-4), then `[[ship]]` on line 5 with `body` from line 6.
fn ship(body: &str) -> String {
    format!("[programs.web]\ncommand = \"x\"\n[programs.worker]\ncommand = \"y\"\n[[ship]]\n{body}")
}

#[test]
fn no_ship_table_ships_nothing() {
    assert!(parse("[programs.web]\ncommand = \"x\"\n").ship.is_empty());
}

#[test]
fn a_loki_sink_takes_its_defaults() {
    let config = parse(&ship("kind = \"loki\"\nurl = \"http://127.0.0.1:3100\"\n"));
    let s = &config.ship[0];
    assert_eq!(s.name, "loki", "named after its kind");
    assert_eq!(s.kind, SinkKind::Loki);
    assert_eq!(
        s.endpoint,
        ShipEndpoint { tls: false, host: "127.0.0.1".into(), port: 3100, path: "/loki/api/v1/push".into() }
    );
    assert_eq!(s.encoding, ShipEncoding::Protobuf);
    assert!(s.gzip && s.programs.is_empty() && s.covers("web") && s.covers("anything:3"));
    assert_eq!((s.max_bytes, s.max_lines, s.linger), (1 << 20, 5000, Duration::from_secs(1)));
    assert_eq!(s.index, defaults::SHIP_INDEX);
}

#[test]
fn every_key_of_a_sink() {
    let config = parse(&ship(
        "name = \"es-eu\"\nkind = \"elasticsearch\"\nurl = \"https://[::1]:9200/custom/_bulk?pipeline=x\"\n\
         programs = [\"web\", \"web\"]\ngzip = false\nheaders = { X-Team = \"a\" }\ntoken_file = \"tok\"\n\
         ca_file = \"ca.pem\"\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"\nlabels = { env = \"prod\" }\n\
         parse = \"json\"\nindex = \"logs-web-prod\"\nmax_bytes = \"4MiB\"\nmax_lines = 10\nlinger = \"200ms\"\n\
         max_unshipped = \"2GiB\"\n",
    ));
    let s = &config.ship[0];
    assert_eq!(s.name, "es-eu");
    assert_eq!(
        s.endpoint,
        ShipEndpoint { tls: true, host: "::1".into(), port: 9200, path: "/custom/_bulk?pipeline=x".into() }
    );
    assert_eq!(s.endpoint.authority(), "[::1]:9200");
    assert_eq!(s.programs, ["web"], "listed once");
    assert!(s.covers("web") && !s.covers("worker"));
    assert!(!s.gzip && s.parse_json);
    assert_eq!(s.headers["X-Team"], "a");
    assert!(s.token_file.as_ref().unwrap().is_absolute());
    assert!(s.client_cert.is_some() && s.ca_file.is_some());
    assert_eq!(s.labels["env"], "prod");
    assert_eq!((s.index.as_str(), s.max_bytes, s.max_lines), ("logs-web-prod", 4 << 20, 10));
    assert_eq!((s.linger, s.max_unshipped), (Duration::from_millis(200), 2 << 30));
    assert!(!format!("{s:?}").contains("\"a\""), "header values are not shown: {s:?}");
}

#[test]
fn syslog_and_otlp_urls() {
    let config = parse(&ship(
        "kind = \"syslog\"\nurl = \"tls://logs.example.com\"\n[[ship]]\nkind = \"otlp\"\nurl = \"http://c:4318?x=1\"\nencoding = \"json\"\n",
    ));
    assert_eq!(
        config.ship[0].endpoint,
        ShipEndpoint { tls: true, host: "logs.example.com".into(), port: 6514, path: String::new() }
    );
    assert_eq!(config.ship[1].endpoint.path, "/v1/logs?x=1");
    assert_eq!(config.ship[1].encoding, ShipEncoding::Json);
}

#[test]
fn the_timestamped_log_format() {
    let config = parse("[programs.web]\ncommand = \"x\"\n[programs.web.log]\nformat = \"cri\"\n");
    assert_eq!(config.programs["web"].log.format, LogFormat::Cri);
    let d = single_error(
        "[programs.web]\ncommand = \"x\"\n[programs.web.log]\nformat = \"json\"\n",
        &FakeEnv::new(),
        4,
        10,
        "must be one of",
    );
    assert!(hint(&d).contains("plain") || d.message.contains("\"plain\""), "{d}");
}

#[test]
fn mistakes_are_located() {
    let env = FakeEnv::new();
    let cases: &[(&str, usize, usize, &str)] = &[
        ("url = \"http://x\"\n", 5, 1, "no `kind`"),
        ("kind = \"loki\"\n", 5, 1, "no `url`"),
        ("kind = \"lokki\"\nurl = \"http://x\"\n", 6, 8, "must be one of"),
        ("kind = \"loki\"\nurl = \"ftp://x\"\n", 7, 7, "http:// or https://"),
        ("kind = \"syslog\"\nurl = \"http://x\"\n", 7, 7, "tcp:// or tls://"),
        ("kind = \"loki\"\nurl = \"http://user:pw@x\"\n", 7, 7, "credentials"),
        ("kind = \"loki\"\nurl = \"http://x:0\"\n", 7, 7, "not a port"),
        ("kind = \"loki\"\nurl = \"http://x\"\nca_file = \"ca.pem\"\n", 8, 11, "is for TLS"),
        ("kind = \"loki\"\nurl = \"https://x\"\nclient_cert = \"c.pem\"\n", 8, 15, "needs `client_key`"),
        ("kind = \"syslog\"\nurl = \"tcp://x\"\nencoding = \"json\"\n", 8, 12, "one encoding"),
        ("kind = \"loki\"\nurl = \"http://x\"\ngzip = true\n", 8, 8, "snappy"),
        ("kind = \"otlp\"\nurl = \"http://x\"\nindex = \"i\"\n", 8, 9, "for elasticsearch"),
        ("kind = \"loki\"\nurl = \"http://x\"\nprograms = [\"wbe\"]\n", 8, 13, "unknown program"),
        ("kind = \"loki\"\nurl = \"http://x\"\nlabels = { program = \"x\" }\n", 8, 10, "already carries"),
        ("kind = \"loki\"\nurl = \"http://x\"\nlabels = { \"a-b\" = \"x\" }\n", 8, 10, "not a label name"),
        ("kind = \"loki\"\nurl = \"http://x\"\nname = \"a/b\"\n", 8, 8, "`name` must be"),
        ("kind = \"loki\"\nurl = \"http://x\"\nmax_bytes = 10\n", 8, 13, "at least 1KiB"),
        (
            "kind = \"loki\"\nurl = \"http://x\"\nheaders = { Content-Type = \"x\" }\n",
            8,
            11,
            "sets the `Content-Type`",
        ),
    ];
    for (body, line, col, fragment) in cases {
        single_error(&ship(body), &env, *line, *col, fragment);
    }
}

#[test]
fn two_sinks_of_one_kind_need_names() {
    let src = ship("kind = \"loki\"\nurl = \"http://a\"\n[[ship]]\nkind = \"loki\"\nurl = \"http://b\"\n");
    let d = errors_with(&src, &FakeEnv::new());
    assert!(d.to_string().contains("two [[ship]] entries are named `loki`"), "{d}");
    let ok = ship(
        "kind = \"loki\"\nurl = \"http://a\"\n[[ship]]\nname = \"b\"\nkind = \"loki\"\nurl = \"http://b\"\n",
    );
    assert_eq!(parse_with(&ok, &FakeEnv::new()).unwrap().ship.len(), 2);
}

#[test]
fn a_secret_header_value_is_never_echoed() {
    let src =
        ship("kind = \"loki\"\nurl = \"http://a\"\nheaders = { Authorization = \"Bearer s3cret\\nx\" }\n");
    let d = single_error(&src, &FakeEnv::new(), 8, 11, "line break");
    assert!(!d.message.contains("s3cret") && !hint(&d).contains("s3cret"), "{d}");
}

#[test]
fn multi_line_grouping_of_a_programs_log() {
    let config = parse(
        "[programs.web]\ncommand = \"x\"\n[programs.web.log]\nmultiline_start = '^\\d{4}-'\nmultiline_timeout = \"250ms\"\n",
    );
    let m = config.programs["web"].log.multiline.clone().expect("grouping set");
    assert_eq!((m.start.as_str(), m.timeout, m.max_lines), ("^\\d{4}-", Duration::from_millis(250), 500));
    assert!(parse("[programs.web]\ncommand = \"x\"\n").programs["web"].log.multiline.is_none());
    let env = FakeEnv::new();
    single_error(
        "[programs.web]\ncommand = \"x\"\n[programs.web.log]\nmultiline_start = \"(\"\n",
        &env,
        4,
        19,
        "not a valid regular expression",
    );
    single_error(
        "[programs.web]\ncommand = \"x\"\n[programs.web.log]\nmultiline_timeout = \"1s\"\n",
        &env,
        1,
        11,
        "without multiline_start",
    );
}
