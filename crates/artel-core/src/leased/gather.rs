//! [`Gather`]: batches for the loops that settle many finished tasks in one statement or
//! script. A batch waits for its first item only — a quiet worker's lone completion goes
//! out at once — and takes what queued meanwhile, up to a bound.
//!
//! Invariant: a batch never holds two items with one key (a statement may touch a row
//! once); the later one waits for the next batch, ahead of newer items, so items of one
//! key keep their order.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use tokio::sync::mpsc;

/// What [`Gather::next`] found.
#[derive(Debug)]
pub enum Gathered<T> {
    /// Items to settle together, in arrival order.
    Batch(Vec<T>),
    /// Nothing came within the wait given.
    Quiet,
    /// Every sender is gone and nothing is left.
    Closed,
}

/// Takes batches of at most `max` items off a channel; see the module docs.
#[derive(Debug)]
pub struct Gather<T> {
    incoming: mpsc::UnboundedReceiver<T>,
    held_over: VecDeque<T>,
    max: usize,
    key: fn(&T) -> &str,
}

impl<T> Gather<T> {
    /// Batches of up to `max` items from `incoming`, none sharing a `key`.
    pub fn new(incoming: mpsc::UnboundedReceiver<T>, max: usize, key: fn(&T) -> &str) -> Self {
        Self { incoming, held_over: VecDeque::new(), max: max.max(1), key }
    }

    /// The next batch: waits for its first item (at most `quiet`, when given), then takes
    /// what is already queued.
    pub async fn next(&mut self, quiet: Option<Duration>) -> Gathered<T> {
        let first = match self.held_over.pop_front() {
            Some(item) => item,
            None => {
                let received = match quiet {
                    Some(quiet) => match tokio::time::timeout(quiet, self.incoming.recv()).await {
                        Ok(received) => received,
                        Err(_) => return Gathered::Quiet,
                    },
                    None => self.incoming.recv().await,
                };
                match received {
                    Some(item) => item,
                    None => return Gathered::Closed,
                }
            }
        };
        let mut keys = HashSet::from([(self.key)(&first).to_owned()]);
        let mut batch = vec![first];
        let mut again = VecDeque::new();
        while batch.len() < self.max {
            let Some(next) = self.held_over.pop_front().or_else(|| self.incoming.try_recv().ok()) else { break };
            if keys.insert((self.key)(&next).to_owned()) {
                batch.push(next);
            } else {
                again.push_back(next);
            }
        }
        again.append(&mut self.held_over);
        self.held_over = again;
        Gathered::Batch(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::{Gather, Gathered};
    use std::time::Duration;

    fn key<'a>(item: &'a (&'static str, u32)) -> &'a str {
        item.0
    }

    fn batch(gathered: Gathered<(&'static str, u32)>) -> Vec<(&'static str, u32)> {
        match gathered {
            Gathered::Batch(batch) => batch,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_batch_takes_what_is_queued_up_to_its_bound_and_a_repeated_key_waits_in_order() {
        let (send, receive) = tokio::sync::mpsc::unbounded_channel();
        let mut gather = Gather::new(receive, 3, key);
        for item in [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1), ("d", 1)] {
            send.send(item).expect("the gather is listening");
        }
        assert_eq!(batch(gather.next(None).await), [("a", 1), ("b", 1), ("c", 1)]);
        assert_eq!(batch(gather.next(None).await), [("a", 2), ("d", 1)]);
        assert_eq!(batch(gather.next(None).await), [("a", 3)]);
        assert!(matches!(gather.next(Some(Duration::from_millis(10))).await, Gathered::Quiet));
        send.send(("e", 1)).expect("the gather is listening");
        assert_eq!(batch(gather.next(None).await), [("e", 1)], "a lone item goes out at once");
        drop(send);
        assert!(matches!(gather.next(None).await, Gathered::Closed));
    }
}
