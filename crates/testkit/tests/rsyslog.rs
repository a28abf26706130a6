//! A real rsyslogd: RFC 5424 messages sent octet-counted over plain TCP and over TLS, read back
//! field by field.

use std::sync::Arc;

use testkit::pki::Pki;
use testkit::rsyslog::{self, Rsyslog};
use testkit::DEADLINE;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

/// RFC 6587 octet counting: `<length> <message>`.
fn framed(messages: &[&str]) -> Vec<u8> {
    messages.iter().flat_map(|m| format!("{} {m}", m.len()).into_bytes()).collect()
}

async fn send(mut stream: impl AsyncWrite + Unpin, messages: &[&str]) {
    stream.write_all(&framed(messages)).await.unwrap();
    // For TLS, this sends close_notify: rsyslogd logs error -110 for a session cut without it.
    stream.shutdown().await.unwrap();
}

const FIRST: &str =
    r#"<165>1 2024-05-01T10:00:00.123456Z host1 api 1234 ID47 [ex@32473 k="v \"q\""] hello "world""#;
const SECOND: &str = "<14>1 2024-05-01T10:00:01Z host1 api - - - two\nlines";

fn check(records: &[rsyslog::SyslogRecord]) {
    assert_eq!(records.len(), 2, "{records:#?}");
    let first = &records[0];
    assert_eq!((first.facility(), first.severity()), (20, 5));
    assert_eq!(first.timestamp, "2024-05-01T10:00:00.123456Z");
    assert_eq!(first.hostname, "host1");
    assert_eq!(first.app_name, "api");
    assert_eq!(first.procid, "1234");
    assert_eq!(first.msgid, "ID47");
    assert_eq!(first.structured_data, r#"[ex@32473 k="v \"q\""]"#);
    assert_eq!(first.msg, r#"hello "world""#);
    let second = &records[1];
    assert_eq!((second.pri, second.procid.as_str(), second.msgid.as_str()), (14, "-", "-"));
    assert_eq!(second.structured_data, "-");
    assert_eq!(second.msg, "two#012lines");
}

#[tokio::test]
async fn octet_counted_messages_over_tcp_arrive_field_by_field() {
    if !rsyslog::available() {
        return;
    }
    let syslog = Rsyslog::start();
    let stream = tokio::net::TcpStream::connect(syslog.plain_addr()).await.unwrap();
    send(stream, &[FIRST, SECOND]).await;
    check(&syslog.wait_for_records(2, DEADLINE));
}

async fn send_tls(
    syslog: &Rsyslog,
    config: Arc<rustls::ClientConfig>,
    messages: &[&str],
) -> std::io::Result<()> {
    let tcp = tokio::net::TcpStream::connect(syslog.tls_addr()).await?;
    let mut tls = tokio_rustls::TlsConnector::from(config).connect(Pki::server_name(), tcp).await?;
    tls.write_all(&framed(messages)).await?;
    tls.shutdown().await
}

#[tokio::test]
async fn octet_counted_messages_over_tls_arrive_field_by_field() {
    if !rsyslog::available() {
        return;
    }
    let syslog = Rsyslog::start();
    send_tls(&syslog, syslog.pki().client_config(None), &[FIRST, SECOND]).await.unwrap();
    check(&syslog.wait_for_records(2, DEADLINE));
}

#[tokio::test]
async fn tls_with_client_auth_takes_only_certificates_of_its_ca() {
    if !rsyslog::available() {
        return;
    }
    let syslog = Rsyslog::start_with_client_auth();
    // A certificate of another CA: refused (at the handshake or just after it, with TLS 1.3),
    // so its message must never show up, whichever way the client sees the refusal.
    let other = Pki::generate();
    let _ = send_tls(&syslog, syslog.pki().client_config(Some(&other)), &["<14>1 - h a - - - refused"]).await;
    send_tls(&syslog, syslog.pki().client_config(Some(syslog.pki())), &[FIRST, SECOND]).await.unwrap();
    check(&syslog.wait_for_records(2, DEADLINE));
}
