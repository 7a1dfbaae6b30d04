//! [`Queues`]: what a consumer reads, checked once where it is built.

use std::ops::Deref;

use crate::error::{BrokerError, BrokerErrorKind};

/// The queues a consumer reads, most important first; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Queues(Vec<String>);

impl Queues {
    /// The queues named, in order; an error when there are none.
    pub fn new<I, S>(names: I) -> Result<Self, BrokerError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Err(BrokerError::new(
                BrokerErrorKind::Other,
                "no queue to consume: name at least one (the default is `celery`)",
            ));
        }
        Ok(Self(names))
    }

    /// Just `name`.
    pub fn one(name: impl Into<String>) -> Self {
        Self(vec![name.into()])
    }
}

impl Deref for Queues {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl From<Queues> for Vec<String> {
    fn from(queues: Queues) -> Self {
        queues.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_keep_their_order_and_refuse_to_be_empty() {
        let queues = Queues::new(["high", "low"]).expect("two names");
        assert_eq!(&*queues, ["high".to_owned(), "low".to_owned()]);
        let empty = Queues::new(Vec::<String>::new()).expect_err("no names");
        assert!(empty.to_string().contains("at least one"), "{empty}");
    }
}
