//! `rediss://` and `celery+rediss://` against a TLS-only `redis-server` on loopback, with
//! certificates made by the test: a round trip through a worker on both layouts, a
//! client certificate where the server asks for one, and a clear error, naming the
//! option that fixes it, for an unknown CA, a wrong host name and an expired certificate.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artel::{App, Registry, Signature, WorkerConfig, connect};
use common::certs::{Ca, Scratch, refused};
use serde_json::json;

/// A `redis-server` speaking only TLS on a free loopback port, stopped at the end.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    /// Serves with `cert`/`key`; asks clients for a certificate signed by `ca` when `mutual`.
    /// `None` when there is no redis-server here (allowed unless services are required).
    fn start(dir: &Path, name: &str, (cert, key): &(String, String), ca: &Ca, mutual: bool) -> Option<Self> {
        let file = |suffix: &str, text: &str| {
            let path = dir.join(format!("{name}.{suffix}"));
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        };
        let (cert, key, ca) = (file("crt", cert), file("key", key), file("ca", &ca.pem()));
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let spawned = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-ca-cert-file", &ca])
            .args(["--tls-auth-clients", if mutual { "yes" } else { "no" }])
            .args(["--save", "", "--appendonly", "no", "--dir", &dir.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "redis-server is required: {e}");
                eprintln!("skipped: no redis-server: {e}");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { port, child })
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[artel::task]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

/// A task sent through `url` comes back from a worker on the same connection.
async fn round_trip(url: &str) {
    let connection = connect(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let config = WorkerConfig { concurrency: 4, ..WorkerConfig::default() };
    let app = App::with_worker(connection.backend, Registry::new().with(shout), config).expect("app");
    let sent = app.send_task(Signature::new("shout").with_args(vec![json!("over tls")])).await.expect("sent");
    assert_eq!(sent.get(Duration::from_secs(20)).await.expect("result"), json!("OVER TLS"), "{url}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_round_trip_over_rediss_on_both_layouts() {
    let scratch = Scratch::new();
    let ca = Ca::new("artel test CA");
    let Some(server) = TlsRedis::start(&scratch.0, "ok", &ca.issue("localhost", false), &ca, false) else { return };
    let ca_file = scratch.write("ca.pem", &ca.pem());
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    round_trip(&format!("rediss://localhost:{}/0?prefix={prefix}&ca={ca_file}&poll_ms=10", server.port)).await;
    round_trip(&format!("celery+rediss://localhost:{}/0?prefix={prefix}:&ca={ca_file}&poll_ms=10", server.port)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_asking_for_a_client_certificate_gets_the_one_given() {
    let scratch = Scratch::new();
    let ca = Ca::new("artel test CA");
    let Some(server) = TlsRedis::start(&scratch.0, "mutual", &ca.issue("localhost", false), &ca, true) else {
        return;
    };
    let ca_file = scratch.write("ca.pem", &ca.pem());
    let (cert, key) = ca.issue("artel-worker", false);
    let (cert, key) = (scratch.write("client.crt", &cert), scratch.write("client.key", &key));
    let base = format!("rediss://localhost:{}/0?prefix=artel-test-{}&ca={ca_file}", server.port, uuid::Uuid::new_v4());
    round_trip(&format!("{base}&cert={cert}&key={key}")).await;
    let error = refused(&format!("{base}&cert={cert}")).await;
    assert!(error.contains("give both ?cert= and ?key="), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_a_wrong_name_and_an_expired_certificate_each_say_what_to_fix() {
    let scratch = Scratch::new();
    let ca = Ca::new("artel test CA");
    let ca_file = scratch.write("ca.pem", &ca.pem());
    let other_ca = scratch.write("other-ca.pem", &Ca::new("someone else's CA").pem());
    let Some(good) = TlsRedis::start(&scratch.0, "good", &ca.issue("localhost", false), &ca, false) else { return };
    let Some(misnamed) = TlsRedis::start(&scratch.0, "misnamed", &ca.issue("db.example.com", false), &ca, false) else {
        return;
    };
    let Some(expired) = TlsRedis::start(&scratch.0, "expired", &ca.issue("localhost", true), &ca, false) else {
        return;
    };

    let error = refused(&format!("rediss://localhost:{}/0?ca={other_ca}", good.port)).await;
    assert!(error.contains("signed by a CA this client does not trust") && error.contains("?ca=PATH"), "{error}");
    let error = refused(&format!("rediss://localhost:{}/0", good.port)).await;
    assert!(error.contains("does not trust"), "the system's CAs do not know the test's either: {error}");
    let error = refused(&format!("rediss://localhost:{}/0?ca={ca_file}", misnamed.port)).await;
    assert!(error.contains("not issued for this host name"), "{error}");
    let error = refused(&format!("celery+rediss://localhost:{}/0?ca={ca_file}", expired.port)).await;
    assert!(error.contains("has expired"), "{error}");
    let error = refused(&format!("redis://localhost:{}/0?ca={ca_file}", good.port)).await;
    assert!(error.contains("unknown parameter `ca`"), "certificate files on a plain URL are refused: {error}");
}
