//! A batch: the lines one request carries, with where each came from. The sink task fills
//! it from the files ([`super::source`]); the encoders of each protocol (`loki.rs`,
//! `otlp.rs`, `elastic.rs`, `syslog.rs`) turn a part of it into a request body.

/// Which of a program's two streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    /// `stdout` / `stderr`: the label value, the CRI stream and OTLP's `log.iostream`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Out => "stdout",
            Stream::Err => "stderr",
        }
    }

    /// `out` / `err`: the part of the log file's name (`web.out.log`).
    pub fn suffix(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
}

/// Where the lines of one stream come from: the labels every line of it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// This machine's name.
    pub host: String,
    /// The program as configured (`web`, also for its instance `web:3`).
    pub program: String,
    /// The instance number, for a program with `instances`.
    pub instance: Option<u32>,
    pub stream: Stream,
    /// The live log file's path (OTLP's `log.file.path`).
    pub path: String,
    /// The pid of the process that wrote the stream last, when it still runs (syslog's
    /// PROCID; `-` when unknown).
    pub pid: Option<u32>,
}

/// One line to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Index into [`Batch::origins`].
    pub origin: usize,
    /// When steward captured the line (a `format = "cri"` file keeps it), else when the
    /// sink read it: nanoseconds since the Unix epoch.
    pub at: i64,
    /// When the sink read it.
    pub observed: i64,
    /// The line, without its `\n` (and without the CRI prefix; the pieces of a long line
    /// joined). Not always UTF-8: encoders that need text replace invalid bytes.
    pub text: Vec<u8>,
    /// The same every time this line is sent (`steward_core::ship::line_id`): Elasticsearch's
    /// `_id`, OTLP's `log.record.uid`.
    pub id: String,
}

/// The lines of one request and their origins. Lines of one origin are in the order they
/// were written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub origins: Vec<Origin>,
    pub lines: Vec<Line>,
}

/// A request body, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    /// `Some("gzip")` when the bytes are gzipped.
    pub content_encoding: Option<&'static str>,
}

impl Body {
    /// The body gzipped. Writing to memory cannot fail; if it ever did, the body goes as it
    /// was.
    pub fn gzipped(self) -> Body {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        match encoder.write_all(&self.bytes).and_then(|()| encoder.finish()) {
            Ok(bytes) => Body { bytes, content_encoding: Some("gzip"), ..self },
            Err(_) => self,
        }
    }
}

/// A sink's spec for the encoders' tests: `labels = { env = "prod" }`, everything else at
/// its default (protobuf, no gzip, no JSON parsing).
#[cfg(test)]
pub(crate) fn test_spec(kind: steward_core::config::SinkKind, url: &str) -> steward_core::config::ShipSpec {
    use steward_core::config::{defaults, ShipEncoding, ShipEndpoint, ShipSpec};
    ShipSpec {
        name: kind.name().to_owned(),
        kind,
        endpoint: ShipEndpoint::parse(kind, url).expect("a test URL"),
        programs: Vec::new(),
        encoding: ShipEncoding::Protobuf,
        gzip: false,
        headers: Default::default(),
        token_file: None,
        ca_file: None,
        client_cert: None,
        labels: [("env".to_owned(), "prod".to_owned())].into(),
        parse_json: false,
        index: defaults::SHIP_INDEX.to_owned(),
        max_bytes: defaults::SHIP_MAX_BYTES,
        max_lines: defaults::SHIP_MAX_LINES,
        linger: defaults::SHIP_LINGER,
        max_unshipped: defaults::SHIP_MAX_UNSHIPPED,
    }
}
