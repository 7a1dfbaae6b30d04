//! `postgres://…?sslmode=verify-full` against a private cluster with `ssl=on` and
//! certificates made by the test: a round trip through a worker, and a clear error,
//! naming the fix, for an unknown CA, a wrong host name and an expired certificate.

mod common;

use std::time::Duration;

use artel::postgres::sqlx;
use artel::{App, Registry, Signature, WorkerConfig, connect};
use artel_broker_tests::cluster::Cluster;
use common::certs::{Ca, Scratch, refused};
use serde_json::json;

#[artel::task]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

/// Serves `(certificate, key)` from now on (files rewritten, configuration reloaded).
async fn serve(cluster: &Cluster, (cert, key): &(String, String)) {
    let (cert, key) = (cluster.write("server.crt", cert), cluster.write("server.key", key));
    let pool = sqlx::PgPool::connect(&format!("{}?sslmode=disable", cluster.url("127.0.0.1"))).await.expect("admin");
    for setting in [format!("ssl_cert_file = '{}'", cert.display()), format!("ssl_key_file = '{}'", key.display())] {
        sqlx::raw_sql(&format!("ALTER SYSTEM SET {setting}")).execute(&pool).await.expect("alter system");
    }
    sqlx::raw_sql("ALTER SYSTEM SET ssl = on").execute(&pool).await.expect("ssl on");
    sqlx::raw_sql("SELECT pg_reload_conf()").execute(&pool).await.expect("reload");
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_round_trip_with_verify_full_and_bad_certificates_say_what_to_fix() {
    let Some(cluster) = Cluster::start(&[]) else { return };
    let scratch = Scratch::new();
    let ca = Ca::new("artel test CA");
    let ca_file = scratch.write("ca.pem", &ca.pem());
    let tls = |host: &str, root: &str| {
        format!("{}?sslmode=verify-full&sslrootcert={root}&schema=artel&poll_ms=50", cluster.url(host))
    };

    serve(&cluster, &ca.issue("localhost", false)).await;
    let url = tls("localhost", &ca_file);
    let connection = connect(&url).await.unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail()));
    let config = WorkerConfig { concurrency: 4, ..WorkerConfig::default() };
    let app = App::with_worker(connection.backend, Registry::new().with(shout), config).expect("app");
    let sent = app.send_task(Signature::new("shout").with_args(vec![json!("over tls")])).await.expect("sent");
    assert_eq!(sent.get(Duration::from_secs(20)).await.expect("result"), json!("OVER TLS"));
    app.shutdown().await;

    let other_ca = scratch.write("other-ca.pem", &Ca::new("someone else's CA").pem());
    let error = refused(&tls("localhost", &other_ca)).await;
    assert!(error.contains("does not trust") && error.contains("?sslrootcert=PATH"), "{error}");
    serve(&cluster, &ca.issue("db.example.com", false)).await;
    let error = refused(&tls("localhost", &ca_file)).await;
    assert!(error.contains("not issued for this host name"), "{error}");
    serve(&cluster, &ca.issue("localhost", true)).await;
    let error = refused(&tls("localhost", &ca_file)).await;
    assert!(error.contains("has expired"), "{error}");
}
