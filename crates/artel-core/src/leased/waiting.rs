//! [`Waiting`]: messages a consumer holds until their ETA, as Celery's transports need
//! (neither kombu's Redis layout nor RabbitMQ delays delivery).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use crate::time::now_ms;

/// Items by due time (unix ms), earliest first; equal times keep arrival order.
#[derive(Debug)]
pub struct Waiting<T> {
    order: BinaryHeap<Reverse<(i64, u64)>>,
    items: HashMap<u64, T>,
    arrivals: u64,
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Self { order: BinaryHeap::new(), items: HashMap::new(), arrivals: 0 }
    }
}

impl<T> Waiting<T> {
    /// Holds `item` until `due_ms`.
    pub fn hold(&mut self, due_ms: i64, item: T) {
        self.arrivals += 1;
        self.order.push(Reverse((due_ms, self.arrivals)));
        self.items.insert(self.arrivals, item);
    }

    /// The earliest item whose time has come.
    pub fn pop_due(&mut self) -> Option<T> {
        let Reverse((due, arrival)) = *self.order.peek()?;
        if due > now_ms() {
            return None;
        }
        self.order.pop();
        self.items.remove(&arrival)
    }

    /// How long until the earliest item is due (`None`: nothing held).
    pub fn next_in(&self) -> Option<Duration> {
        let Reverse((due, _)) = self.order.peek()?;
        Some(Duration::from_millis(u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0)))
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Everything held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.values()
    }

    /// Everything held, to hand back.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.order.clear();
        self.items.drain().map(|(_, item)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_when_due_in_time_order() {
        let mut waiting = Waiting::default();
        waiting.hold(now_ms() + 60_000, "later");
        waiting.hold(now_ms() - 5, "due second");
        waiting.hold(now_ms() - 10, "due first");
        assert_eq!(
            (waiting.pop_due(), waiting.pop_due(), waiting.pop_due()),
            (Some("due first"), Some("due second"), None)
        );
        assert!(waiting.next_in().is_some_and(|d| d > Duration::from_secs(50)));
        assert_eq!(waiting.drain().collect::<Vec<_>>(), vec!["later"]);
        assert_eq!(waiting.len(), 0);
    }
}
