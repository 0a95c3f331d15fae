//! `display=text`: listings as plain-text tables for terminals.

/// Column widths, from the rows seen when the table starts.
pub struct Layout {
    widths: Vec<usize>,
}

fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

impl Layout {
    /// Widths fitting `headers` and `rows` (a later, wider cell just pushes its line out).
    pub fn new(headers: &[&str], rows: &[Vec<String>]) -> Self {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for r in rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(clean(c).chars().count());
            }
        }
        Self { widths }
    }

    /// One line of cells padded to the widths, without trailing blanks, and its newline.
    pub fn line<S: AsRef<str>>(&self, cells: &[S]) -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&self.widths).enumerate() {
            let c = clean(c.as_ref());
            if i > 0 {
                s.push_str("  ");
            }
            let n = c.chars().count();
            s.push_str(&c);
            s.extend(std::iter::repeat_n(' ', w.saturating_sub(n)));
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    }

    /// The header line and its underline.
    pub fn head(&self, headers: &[&str]) -> String {
        let rule: Vec<String> = self.widths.iter().map(|w| "-".repeat(*w)).collect();
        self.line(headers) + &self.line(&rule)
    }
}

/// The closing line.
pub fn total_line(total: u64) -> String {
    format!("total: {total}\n")
}

/// Renders `rows` under `headers` with columns padded to their widest cell, then a total line.
pub fn table(headers: &[&str], rows: &[Vec<String>], total: u64) -> String {
    let layout = Layout::new(headers, rows);
    let mut out = layout.head(headers);
    for r in rows {
        out.push_str(&layout.line(r));
    }
    out.push_str(&total_line(total));
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
