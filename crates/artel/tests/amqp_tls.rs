//! `amqps://` with rustls against the machine's RabbitMQ behind a TLS listener the test
//! runs on loopback, with certificates it makes: a round trip through a worker, and a
//! clear error, naming the fix, for an unknown CA, a wrong host name and an expired
//! certificate.

mod common;

use std::time::Duration;

use artel::{App, Registry, Signature, WorkerConfig, connect};
use common::certs::{Ca, Scratch, refused, tls_front};
use serde_json::json;

fn rabbitmq() -> String {
    std::env::var("ARTEL_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".to_owned())
}

fn results() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Whether RabbitMQ answers (required when `ARTEL_REQUIRE_SERVICES=1`).
fn rabbitmq_answers() -> bool {
    let up = std::net::TcpStream::connect(rabbitmq()).is_ok();
    if !up {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "RabbitMQ is required");
        eprintln!("skipped: no RabbitMQ at {}", rabbitmq());
    }
    up
}

/// Deletes the test's queue and its results at the end.
struct DeletedAtEnd {
    queue: String,
    prefix: String,
}

impl Drop for DeletedAtEnd {
    fn drop(&mut self) {
        let quiet = |command: &mut std::process::Command| {
            let _ = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
        };
        quiet(std::process::Command::new("rabbitmqctl").args(["delete_queue", &self.queue]));
        let script = format!(
            "redis-cli -u '{0}' --scan --pattern '{1}*' | xargs -r redis-cli -u '{0}' del",
            results(),
            self.prefix
        );
        quiet(std::process::Command::new("sh").args(["-c", &script]));
    }
}

#[artel::task]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_round_trip_over_amqps_and_bad_certificates_say_what_to_fix() {
    if !rabbitmq_answers() {
        return;
    }
    let scratch = Scratch::new();
    let ca = Ca::new("artel test CA");
    let ca_file = scratch.write("ca.pem", &ca.pem());
    let good = tls_front(&ca.issue("localhost", false), &rabbitmq()).await;
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let queue = format!("{prefix}-q");
    let _cleanup = DeletedAtEnd { queue: queue.clone(), prefix: prefix.clone() };
    let url = format!("amqps://guest:guest@localhost:{good}//?results={}&prefix={prefix}:&ca={ca_file}", results());
    let connection = connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let config = WorkerConfig { queues: vec![queue.clone()], concurrency: 4, ..WorkerConfig::default() };
    let app = App::with_worker(connection.backend, Registry::new().with(shout), config).expect("app");
    let call = Signature::new("shout").with_args(vec![json!("over amqps")]).queue(&queue);
    let sent = app.send_task(call).await.expect("sent");
    assert_eq!(sent.get(Duration::from_secs(20)).await.expect("result"), json!("OVER AMQPS"));
    app.shutdown().await;

    let other_ca = scratch.write("other-ca.pem", &Ca::new("someone else's CA").pem());
    let error = refused(&format!("amqps://guest:guest@localhost:{good}//?results={}&ca={other_ca}", results())).await;
    assert!(error.contains("does not trust") && error.contains("?ca=PATH"), "{error}");
    assert!(!error.contains("guest:guest"), "the password is not shown: {error}");
    let misnamed = tls_front(&ca.issue("mq.example.com", false), &rabbitmq()).await;
    let error =
        refused(&format!("amqps://guest:guest@localhost:{misnamed}//?results={}&ca={ca_file}", results())).await;
    assert!(error.contains("not issued for this host name"), "{error}");
    let expired = tls_front(&ca.issue("localhost", true), &rabbitmq()).await;
    let error = refused(&format!("amqps://guest:guest@localhost:{expired}//?results={}&ca={ca_file}", results())).await;
    assert!(error.contains("has expired"), "{error}");
}
