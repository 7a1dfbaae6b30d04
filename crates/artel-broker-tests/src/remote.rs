//! Remote control on brokers without Celery's pidbox (`artel inspect`, `artel control`).

use artel_core::worker::remote::ControlBoard;

use crate::{Fixture, skip};

/// The requests in `bodies` that this test posted (tests share a board).
fn ours(bodies: Vec<Vec<u8>>, prefix: &str) -> Vec<String> {
    bodies.into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).filter(|b| b.contains(prefix)).collect()
}

/// Every request posted after a reader's cursor reaches it once, in order; a reader that
/// starts later sees none of the earlier ones (an old `shutdown` never stops a new
/// worker); replies are kept apart by ticket, in the order posted.
pub async fn remote_control_requests_reach_readers_after_their_cursor_and_replies_are_kept_by_ticket(f: &Fixture) {
    let Some(board) = f.backend.control_board() else {
        return skip(f, "its workers answer remote control over Celery's pidbox");
    };
    let board: &dyn ControlBoard = board.as_ref();
    let (start, none) = board.requests_after(None).await.expect("where the board stands");
    assert!(none.is_empty(), "a new reader starts at the end");
    let request = |n: u32| format!(r#"{{"method":"ping","ticket":"{}-{n}"}}"#, f.prefix);
    for n in 1..=3 {
        board.post_request(request(n).as_bytes()).await.expect("post");
    }
    let (cursor, seen) = board.requests_after(Some(&start)).await.expect("read");
    assert_eq!(ours(seen, &f.prefix), [request(1), request(2), request(3)], "each once, in order");
    let (late, none) = board.requests_after(None).await.expect("a later reader");
    assert!(ours(none, &f.prefix).is_empty(), "a later reader sees none of the earlier requests");
    board.post_request(request(4).as_bytes()).await.expect("post");
    let (_, seen) = board.requests_after(Some(&cursor)).await.expect("read on");
    assert_eq!(ours(seen, &f.prefix), [request(4)], "only what came after the cursor");
    let (_, seen) = board.requests_after(Some(&late)).await.expect("the later reader reads on");
    assert_eq!(ours(seen, &f.prefix), [request(4)]);

    let (ticket, other) = (format!("{}-ticket", f.prefix), format!("{}-other", f.prefix));
    assert!(board.replies(&ticket).await.expect("replies").is_empty(), "none yet");
    board.post_reply(&ticket, br#"{"a@x": {"ok": "pong"}}"#).await.expect("reply");
    board.post_reply(&other, br#"{"c@x": {"ok": "pong"}}"#).await.expect("reply");
    board.post_reply(&ticket, br#"{"b@x": {"ok": "pong"}}"#).await.expect("reply");
    let replies = board.replies(&ticket).await.expect("replies");
    assert_eq!(replies, [br#"{"a@x": {"ok": "pong"}}"#.to_vec(), br#"{"b@x": {"ok": "pong"}}"#.to_vec()]);
    let refused = board.requests_after(Some("not-a-cursor")).await;
    assert!(refused.is_err(), "a cursor the board never gave is refused, never read from the start");
}
