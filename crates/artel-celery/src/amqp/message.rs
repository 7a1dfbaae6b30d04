//! A RabbitMQ delivery as a task message: Celery's headers from the AMQP application
//! headers, transport fields from the basic properties, the body raw. Nothing a delivery
//! carries can make this fail: headers that are not Celery's give a message whose body
//! never decodes ([`Message::undecodable`]), so the worker dead-letters it with the
//! reason and, when its `id` header is readable, stores a FAILURE under it.

use artel_core::{DeliveryInfo, Headers, Message, Properties};
use lapin::BasicProperties;
use serde_json::{Map, Value};

use super::table;

/// Where RabbitMQ says a delivery came from.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// Exchange it was published to.
    pub exchange: &'a str,
    /// Routing key it was published with (the queue, on the default exchange).
    pub routing_key: &'a str,
    /// RabbitMQ delivered it before.
    pub redelivered: bool,
    /// The channel's tag for it.
    pub delivery_tag: u64,
}

impl<'a> Arrival<'a> {
    pub(crate) fn of(delivery: &'a lapin::message::Delivery) -> Self {
        Arrival {
            exchange: delivery.exchange.as_str(),
            routing_key: delivery.routing_key.as_str(),
            redelivered: delivery.redelivered,
            delivery_tag: delivery.delivery_tag,
        }
    }
}

/// The task message a delivery with these `properties` and `body` carries.
pub fn to_message(properties: &BasicProperties, arrival: Arrival<'_>, body: Vec<u8>) -> Message {
    let p = properties;
    let raw: Map<String, Value> = p.headers().as_ref().map(table::from_table).unwrap_or_default();
    let text = |s: &Option<lapin::types::ShortString>| s.as_ref().map(|s| s.as_str().to_owned());
    let headers = match serde_json::from_value::<Headers>(Value::Object(raw.clone())) {
        Ok(headers) => headers,
        Err(e) => {
            let field = |name: &str| raw.get(name).and_then(Value::as_str).unwrap_or_default();
            let reason = format!("the AMQP headers are not Celery's protocol 2 headers: {e}");
            let mut message = Message::undecodable(field("id"), field("task"), arrival.routing_key, &reason);
            message.properties.delivery_tag = Some(arrival.delivery_tag.to_string());
            return message;
        }
    };
    let properties = Properties {
        correlation_id: text(p.correlation_id()).unwrap_or_default(),
        reply_to: text(p.reply_to()).unwrap_or_default(),
        delivery_mode: p.delivery_mode().unwrap_or(2),
        delivery_info: DeliveryInfo {
            exchange: arrival.exchange.to_owned(),
            routing_key: arrival.routing_key.to_owned(),
            extra: Map::from_iter([("redelivered".to_owned(), Value::from(arrival.redelivered))]),
        },
        priority: p.priority().unwrap_or(0),
        expiration: text(p.expiration()),
        delivery_tag: Some(arrival.delivery_tag.to_string()),
        extra: Map::new(),
    };
    Message {
        headers,
        properties,
        body,
        content_type: text(p.content_type()).unwrap_or_else(|| artel_core::message::JSON.to_owned()),
        content_encoding: text(p.content_encoding()).unwrap_or_else(|| "utf-8".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

    fn arrival() -> Arrival<'static> {
        Arrival { exchange: "", routing_key: "q", redelivered: false, delivery_tag: 7 }
    }

    fn with_headers(entries: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut table = FieldTable::default();
        for (key, value) in entries {
            table.insert(ShortString::from(*key), value.clone());
        }
        BasicProperties::default().with_headers(table)
    }

    fn text(s: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(s))
    }

    #[test]
    fn celery_headers_become_the_message_headers() {
        let properties =
            with_headers(&[("id", text("t1")), ("task", text("echo")), ("retries", AMQPValue::LongInt(2))]);
        let message = to_message(&properties, arrival(), b"[[1],{},{}]".to_vec());
        assert_eq!((message.headers.id.as_str(), message.headers.task.as_str()), ("t1", "echo"));
        assert_eq!(message.headers.retries, 2);
        assert_eq!(message.queue(), "q");
        assert!(message.decode_body().is_ok());
    }

    #[test]
    fn unreadable_headers_keep_the_id_and_say_why_the_body_cannot_run() {
        let properties = with_headers(&[("id", text("t2")), ("task", text("echo")), ("eta", text("not a time"))]);
        let message = to_message(&properties, arrival(), b"[[1],{},{}]".to_vec());
        assert_eq!((message.headers.id.as_str(), message.headers.task.as_str()), ("t2", "echo"));
        assert_eq!(message.queue(), "q");
        let error = message.decode_body().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("not Celery's protocol 2 headers"), "{error}");
    }

    #[test]
    fn a_delivery_without_headers_is_undecodable_without_an_id() {
        let message = to_message(&BasicProperties::default(), arrival(), b"junk".to_vec());
        assert_eq!(message.headers.id, "");
        assert!(message.decode_body().is_err());
    }
}
