//! What `artel map` reads: items from lines, JSON Lines or CSV, one at a time (the input
//! is never held whole), and the templates that turn an item into a call's arguments.

use std::io::BufRead;

use serde_json::{Map, Value};

/// How the input is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One item per line, as a string (`{}` or `{0}` in templates).
    Lines,
    /// One JSON value per line (`{field}` of an object, `{0}` of an array).
    Jsonl,
    /// CSV with a header row: each row an object of its columns (`{column}`).
    Csv,
}

impl Format {
    /// The format a file's name suggests: `.jsonl`/`.ndjson`, `.csv`, else lines.
    pub(crate) fn of_path(path: &str) -> Self {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Format::Jsonl
        } else if lower.ends_with(".csv") {
            Format::Csv
        } else {
            Format::Lines
        }
    }
}

/// Items in input order, each `Ok(value)` or the reason its line could not be read (the
/// item then fails, the others go on).
pub(crate) fn items(
    reader: Box<dyn BufRead + Send>,
    format: Format,
) -> Box<dyn Iterator<Item = Result<Value, String>> + Send> {
    match format {
        Format::Lines => Box::new(reader.lines().map(|line| line.map(Value::String).map_err(|e| e.to_string()))),
        Format::Jsonl => Box::new(reader.lines().map(|line| {
            let line = line.map_err(|e| e.to_string())?;
            serde_json::from_str(&line).map_err(|e| format!("not JSON ({e}): {}", shorten(&line)))
        })),
        Format::Csv => {
            let mut rows = csv::Reader::from_reader(reader);
            let headers = rows.headers().cloned();
            let records = rows.into_records();
            match headers {
                Ok(headers) => Box::new(records.map(move |row| {
                    let row = row.map_err(|e| e.to_string())?;
                    Ok(Value::Object(
                        headers.iter().zip(row.iter()).map(|(h, v)| (h.to_owned(), Value::from(v))).collect(),
                    ))
                })),
                Err(error) => Box::new(std::iter::once(Err(format!("cannot read the CSV header: {error}")))),
            }
        }
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A call's arguments made from an item: JSON whose strings may name the item's parts,
/// `"{url}"` (an object's field), `"{0}"` (an array's element) or `"{}"` (the item). A
/// string that is exactly one placeholder takes the part's value, with its type; inside
/// a longer string the part is written as text.
#[derive(Debug, Clone)]
pub(crate) struct Template(Value);

impl Template {
    /// Parses `text` (JSON); `what` names the flag in errors.
    pub(crate) fn parse(text: &str, what: &str) -> Result<Self, String> {
        serde_json::from_str(text).map(Template).map_err(|e| format!("{what} is not valid JSON: {e}"))
    }

    /// The template filled in from `item`; an error names a placeholder the item lacks.
    pub(crate) fn fill(&self, item: &Value) -> Result<Value, String> {
        fill(&self.0, item)
    }
}

fn fill(template: &Value, item: &Value) -> Result<Value, String> {
    Ok(match template {
        Value::String(text) => fill_text(text, item)?,
        Value::Array(values) => Value::Array(values.iter().map(|v| fill(v, item)).collect::<Result<_, _>>()?),
        Value::Object(fields) => Value::Object(
            fields.iter().map(|(k, v)| Ok((k.clone(), fill(v, item)?))).collect::<Result<Map<_, _>, String>>()?,
        ),
        other => other.clone(),
    })
}

fn part<'a>(item: &'a Value, name: &str) -> Result<&'a Value, String> {
    let found = match (name, item) {
        ("", _) => Some(item),
        (_, Value::Object(fields)) => fields.get(name),
        ("0", Value::String(_)) => Some(item),
        (_, Value::Array(values)) => name.parse::<usize>().ok().and_then(|i| values.get(i)),
        _ => None,
    };
    found.ok_or_else(|| format!("the item has no {{{name}}}: {}", shorten(&item.to_string())))
}

fn fill_text(text: &str, item: &Value) -> Result<Value, String> {
    if let Some(name) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'))
        && !name.contains(['{', '}'])
    {
        return part(item, name).cloned();
    }
    let mut filled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        filled.push_str(&rest[..open]);
        match part(item, &rest[open + 1..open + close])? {
            Value::String(s) => filled.push_str(s),
            other => filled.push_str(&other.to_string()),
        }
        rest = &rest[open + close + 1..];
    }
    filled.push_str(rest);
    Ok(Value::String(filled))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(text: &str, format: Format) -> Vec<Result<Value, String>> {
        items(Box::new(std::io::Cursor::new(text.to_owned())), format).collect()
    }

    #[test]
    fn lines_jsonl_and_csv_become_items_one_at_a_time() {
        assert_eq!(read("a\nb\n", Format::Lines), [Ok(json!("a")), Ok(json!("b"))]);
        let jsonl = read("{\"n\": 1}\nnope\n[2]\n", Format::Jsonl);
        assert_eq!((&jsonl[0], &jsonl[2]), (&Ok(json!({"n": 1})), &Ok(json!([2]))));
        assert!(jsonl[1].as_ref().is_err_and(|e| e.contains("not JSON")), "{jsonl:?}");
        let csv = read("url,n\nhttp://a,1\n\"http://b,c\",2\n", Format::Csv);
        assert_eq!(csv, [Ok(json!({"url": "http://a", "n": "1"})), Ok(json!({"url": "http://b,c", "n": "2"}))]);
        assert_eq!(
            (Format::of_path("x.CSV"), Format::of_path("y.ndjson"), Format::of_path("z")),
            (Format::Csv, Format::Jsonl, Format::Lines)
        );
    }

    #[test]
    fn templates_take_parts_with_their_types_or_as_text() {
        let item = json!({"url": "http://a", "n": 3, "tags": ["x"]});
        let args = Template::parse(r#"["{url}", "{n}", "id-{n}", {"tags": "{tags}"}, 7]"#, "--args").expect("json");
        assert_eq!(args.fill(&item), Ok(json!(["http://a", 3, "id-3", {"tags": ["x"]}, 7])));
        assert_eq!(
            Template::parse(r#"["{}", "{0}"]"#, "--args").expect("json").fill(&json!("line")),
            Ok(json!(["line", "line"]))
        );
        assert_eq!(Template::parse(r#"["{1}"]"#, "--args").expect("json").fill(&json!([1, 2])), Ok(json!([2])));
        let missing = Template::parse(r#"["{nope}"]"#, "--args").expect("json").fill(&item);
        assert!(missing.is_err_and(|e| e.contains("{nope}")));
        assert!(Template::parse("[", "--args").is_err_and(|e| e.contains("--args")));
    }
}
