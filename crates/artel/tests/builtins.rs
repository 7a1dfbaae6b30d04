//! The built-in tasks against real processes and a real local HTTP server.

use std::io::{Read, Write};
use std::net::TcpListener;

use artel::TaskErrorKind;
use artel::builtins::{ExecOutput, exec, http};
use serde_json::json;

/// Serves one request on a local port with `response`; returns the URL and what was received.
fn one_shot_server(response: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/path?q=1", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Read headers, then the body announced by content-length.
        loop {
            let n = stream.read(&mut buf).expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0usize);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        stream.write_all(response.as_bytes()).expect("write");
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, server)
}

#[tokio::test]
async fn http_get_returns_status_headers_and_body() {
    let (url, server) =
        one_shot_server("HTTP/1.1 201 Created\r\nx-test: yes\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
    let out = http::call(url, None, None, None, None, None, None).await.expect("response");
    assert_eq!((out.status, out.body.as_str()), (201, "hello"));
    assert_eq!(out.headers.get("x-test").map(String::as_str), Some("yes"));
    assert!(server.join().expect("server").starts_with("GET /path?q=1 HTTP/1.1"));
}

#[tokio::test]
async fn http_post_sends_json() {
    let (url, server) = one_shot_server("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let out = http::call(url, Some("post".into()), Some(json!({"a": 1})), None, Some(5.0), None, None)
        .await
        .expect("response");
    assert_eq!(out.status, 200);
    let request = server.join().expect("server");
    assert!(request.starts_with("POST /path?q=1"), "{request}");
    assert!(request.to_ascii_lowercase().contains("content-type: application/json"), "{request}");
    assert!(request.ends_with(r#"{"a":1}"#), "{request}");
}

#[tokio::test]
async fn http_to_a_closed_port_fails_naming_the_url() {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}/");
    let err = http::call(url.clone(), None, None, None, Some(2.0), Some(0), None).await.expect_err("refused");
    assert!(err.message().contains(&url), "{err}");
    let err = http::call(url, Some("NOT A METHOD".into()), None, None, None, None, None).await.expect_err("bad method");
    assert_eq!(err.kind(), TaskErrorKind::InvalidArguments);
}

#[tokio::test]
async fn exec_captures_exit_code_and_output_and_tells_the_program_its_task_id() {
    let ctx = || artel::Context::detached("id-42", "exec");
    let script = "echo out $ARTEL_TASK_ID; echo err >&2; exit 3";
    let out = exec::call(ctx(), "sh".into(), Some(vec!["-c".into(), script.into()])).await.expect("ran");
    assert_eq!(out, ExecOutput { code: Some(3), stdout: "out id-42\n".into(), stderr: "err\n".into() });
    let err = exec::call(ctx(), "/no/such/program".into(), None).await.expect_err("cannot run");
    assert!(err.message().contains("/no/such/program"), "{err}");
}
