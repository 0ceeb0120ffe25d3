//! Plain-text tables: columns separated by two spaces and padded to their widest cell. The last
//! column is never padded nor cut; a multi-line last cell (a provisioning error with the agent's
//! output tail) continues on the following lines, aligned under its column. Other cells are
//! flattened to one line by [`render`]; [`render_multiline`] keeps every cell's lines instead
//! (the diagnose table, whose messages sit before the duration column).

/// Renders `rows` under `headers`, each line prefixed with `indent`, each ending in `\n`.
pub fn render(indent: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let last = headers.len().saturating_sub(1);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(index, cell)| if index == last { cell.clone() } else { flatten(cell) })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in &cells {
        for (index, cell) in row.iter().enumerate().take(last) {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    let last_column_offset: usize = widths.iter().take(last).map(|width| width + 2).sum();
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|header| header.to_string()).collect();
    for row in std::iter::once(&header_cells).chain(cells.iter()) {
        let mut line = String::from(indent);
        for (index, cell) in row.iter().enumerate() {
            if index == last {
                let mut lines = cell.lines();
                line.push_str(lines.next().unwrap_or(""));
                for continuation in lines {
                    push_trimmed(&mut out, &line);
                    line = format!("{indent}{}{continuation}", " ".repeat(last_column_offset));
                }
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[index] - cell.chars().count() + 2));
            }
        }
        push_trimmed(&mut out, &line);
    }
    out
}

/// Renders `rows` under `headers` like [`render`], except that any cell may span several lines:
/// a row is as tall as its tallest cell, a column as wide as its widest line, and each line of a
/// cell stays in its column. Nothing is flattened or cut.
pub fn render_multiline(indent: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let last = headers.len().saturating_sub(1);
    let header_cells: Vec<Vec<&str>> = headers.iter().map(|header| vec![*header]).collect();
    let cells: Vec<Vec<Vec<&str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| cell.lines().collect()).collect())
        .collect();
    let mut widths: Vec<usize> = vec![0; headers.len()];
    for row in std::iter::once(&header_cells).chain(cells.iter()) {
        for (index, lines) in row.iter().enumerate().take(last) {
            for line in lines {
                widths[index] = widths[index].max(line.chars().count());
            }
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header_cells).chain(cells.iter()) {
        let height = row.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for line_index in 0..height {
            let mut line = String::from(indent);
            for (index, lines) in row.iter().enumerate() {
                let text = lines.get(line_index).copied().unwrap_or("");
                line.push_str(text);
                if index < last {
                    line.push_str(&" ".repeat(widths[index] - text.chars().count() + 2));
                }
            }
            push_trimmed(&mut out, &line);
        }
    }
    out
}

fn push_trimmed(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

fn flatten(cell: &str) -> String {
    if cell.contains('\n') {
        cell.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|cell| cell.to_string()).collect()
    }

    #[test]
    fn pads_all_but_the_last_column() {
        let text = render(
            "",
            &["ID", "NAME", "ERROR"],
            &[row(&["a1", "build", ""]), row(&["b", "x", "boom"])],
        );
        assert_eq!(text, "ID  NAME   ERROR\na1  build\nb   x      boom\n");
    }

    #[test]
    fn multi_line_last_cells_continue_under_their_column() {
        let text = render(
            "  ",
            &["#", "ERROR"],
            &[row(&["1", "spawn failed\nline a\nline b"]), row(&["2", "-"])],
        );
        assert_eq!(
            text,
            "  #  ERROR\n  1  spawn failed\n     line a\n     line b\n  2  -\n"
        );
        assert_eq!(render("", &["A", "B"], &[row(&["x\ny", "z"])]), "A    B\nx y  z\n");
    }

    #[test]
    fn multiline_cells_keep_their_lines_in_any_column() {
        let text = render_multiline(
            "",
            &["Status", "Message", "Duration"],
            &[
                row(&["FAIL", "spawn failed\n  stderr: ENOENT", "5ms"]),
                row(&["PASS", "ok", "1ms"]),
            ],
        );
        assert_eq!(
            text,
            "Status  Message           Duration\nFAIL    spawn failed      5ms\n          stderr: ENOENT\nPASS    ok                1ms\n"
        );
    }
}
