//! Aligned plain-text tables for command output.

/// Renders rows under a header with every column padded to its widest cell; a column
/// whose cells all start with a digit holds numbers and is right-aligned.
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_align_right_and_text_left() {
        let rows =
            [vec!["async".into(), "120".into(), "fast".into()], vec!["threads".into(), "4500".into(), "ok".into()]];
        let out = super::render(&["name", "ns", "note"], &rows);
        assert_eq!(out, "name       ns  note\n-------  ----  ----\nasync     120  fast\nthreads  4500  ok");
    }
}
