//! Celery's headers as an AMQP field table and back (docs/wire-format.md §c.2: null → void, lists →
//! arrays, objects → tables).

use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Number, Value};

/// A JSON object as a field table.
pub(crate) fn to_table(object: &Map<String, Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in object {
        table.insert(ShortString::from(key.as_str()), to_amqp(value));
    }
    table
}

fn to_amqp(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            (None, Some(f)) => AMQPValue::Double(f),
            (None, None) => AMQPValue::LongString(LongString::from(n.to_string())),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(items.iter().map(to_amqp).collect::<Vec<_>>())),
        Value::Object(object) => AMQPValue::FieldTable(to_table(object)),
    }
}

/// A field table as a JSON object.
pub(crate) fn from_table(table: &FieldTable) -> Map<String, Value> {
    table.inner().iter().map(|(key, value)| (key.as_str().to_owned(), from_amqp(value))).collect()
}

fn from_amqp(value: &AMQPValue) -> Value {
    let float = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
    match value {
        AMQPValue::Void => Value::Null,
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(f) => float(f64::from(*f)),
        AMQPValue::Double(f) => float(*f),
        AMQPValue::DecimalValue(d) => float(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => Value::from(s.as_str()),
        AMQPValue::LongString(s) => Value::from(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ByteArray(bytes) => Value::from(String::from_utf8_lossy(bytes.as_slice()).into_owned()),
        AMQPValue::FieldArray(items) => Value::Array(items.as_slice().iter().map(from_amqp).collect()),
        AMQPValue::FieldTable(table) => Value::Object(from_table(table)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn celery_headers_survive_the_round_trip() {
        let headers = json!({
            "task": "app.add", "id": "x", "eta": null, "retries": 0, "timelimit": [null, 2.5],
            "ignore_result": false, "stamps": {}, "group_index": 3,
        });
        let Value::Object(object) = headers.clone() else { panic!("an object") };
        assert_eq!(Value::Object(from_table(&to_table(&object))), headers);
    }
}
