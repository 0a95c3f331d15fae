//! `display=text`: listings as plain-text tables for terminals.

/// Renders `rows` under `headers` with columns padded to their widest cell, then a total line.
pub fn table(headers: &[&str], rows: &[Vec<String>], total: u64) -> String {
    let clean = |s: &str| -> String { s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect() };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s
    };
    let mut out = String::new();
    out.push_str(&line(headers.to_vec()));
    out.push('\n');
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect()));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out.push_str(&format!("total: {total}\n"));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligned_columns() {
        let t = super::table(&["id", "name"], &[vec!["a".into(), "x\ny".into()], vec!["long".into(), "".into()]], 2);
        assert_eq!(t, "id    name\n----  ----\na     x y\nlong\ntotal: 2\n");
    }
}
