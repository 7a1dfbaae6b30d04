//! Aligned plain-text tables for command output (also for a binary's own commands).

/// Renders rows under a header with every column padded to its widest cell; a column
/// whose cells all start with a digit holds numbers and is right-aligned.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    let mut numeric = vec![!rows.is_empty(); header.len()];
    for row in rows {
        for (column, cell) in row.iter().enumerate().take(header.len()) {
            widths[column] = widths[column].max(cell.chars().count());
            numeric[column] &= cell.starts_with(|c: char| c.is_ascii_digit());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((cell, w), right)| if *right { format!("{cell:>w$}") } else { format!("{cell:<w$}") })
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.push(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// `1 message`, `2 messages`: a count with its noun.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `text` on one line, cut to `most` characters with `…`.
pub(crate) fn shorten(text: &str, most: usize) -> String {
    let line = text.replace('\n', " ");
    match line.char_indices().nth(most) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// A unix-millisecond time as `2026-11-29 19:53:59` (UTC).
pub(crate) fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_say_message_or_messages() {
        assert_eq!(super::count(1, "message"), "1 message");
        assert_eq!(super::count(0, "message"), "0 messages");
        assert_eq!(super::count(2, "failed task"), "2 failed tasks");
    }

    #[test]
    fn numbers_align_right_and_text_left() {
        let rows =
            [vec!["async".into(), "120".into(), "fast".into()], vec!["threads".into(), "4500".into(), "ok".into()]];
        let out = super::render(&["name", "ns", "note"], &rows);
        assert_eq!(out, "name       ns  note\n-------  ----  ----\nasync     120  fast\nthreads  4500  ok");
    }
}
