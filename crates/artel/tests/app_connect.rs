//! `App::connect(url)`: the one-line way to a client of any broker artel speaks.

use artel::core::Signature;
use artel::{App, ConnectError, connect};
use artel_broker_tests::ScratchDb;

#[tokio::test]
async fn an_app_connected_by_url_publishes_to_that_broker() {
    let db = ScratchDb::new("app-connect");
    let url = format!("sqlite://{}", db.path().display());
    let app = App::connect(&url).await.expect("connect");
    let id = app.send(Signature::new("echo").queue("q")).await.expect("send");
    let connection = connect(&url).await.expect("a second connection to the same file");
    assert_eq!(connection.backend.broker().len("q").await.expect("len"), 1, "{id} waits on the broker the URL named");
}

#[tokio::test]
async fn an_unknown_scheme_is_refused_with_the_ones_artel_speaks() {
    let err = App::connect("kafka://localhost").await.expect_err("unsupported");
    assert!(matches!(err, ConnectError::Unsupported { .. }), "{err}");
}
