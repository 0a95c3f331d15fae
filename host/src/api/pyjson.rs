//! JSON written the way RuQi's Python 2 `json.dumps` writes it: `", "` and `": "`
//! separators, `ensure_ascii` (`\uXXXX` for non-ASCII), floats in Python `repr` form.

use std::io::{self, Write};

use serde_json::ser::Formatter;

/// The formatter; use [`to_string`].
struct PyFormatter;

impl Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(py_float_repr(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Serializes `value` as Python's `json.dumps` would.
pub fn to_string(value: &serde_json::Value) -> String {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    serde::Serialize::serialize(value, &mut ser).expect("a Value always serializes");
    String::from_utf8(out).expect("ensure_ascii output is ASCII")
}

/// Python's `repr(float)`: the shortest round-tripping digits, positional for exponents in
/// -4..16 (always with a `.`), otherwise scientific with a two-digit exponent (`1.1e-05`).
pub fn py_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sci = format!("{:e}", v.abs()); // shortest digits, e.g. "1.941772e0"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let body = if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            let (int, frac) = if digits.len() > int_len {
                (digits[..int_len].to_owned(), digits[int_len..].to_owned())
            } else {
                (format!("{digits:0<int_len$}"), "0".to_owned())
            };
            format!("{int}.{frac}")
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_like_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (1.1e-05, "1.1e-05"),
            (1.941772, "1.941772"),
            (300.0, "300.0"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (5.83369, "5.83369"),
            (1e-7, "1e-07"),
        ];
        for (v, want) in cases {
            assert_eq!(py_float_repr(v), want, "{v}");
        }
    }

    #[test]
    fn dumps_like_python() {
        let v = json!({"stat": "OK", "data": {"list": [1, 2], "name": "如期 é", "cost": 0.5, "none": null, "t": true}});
        assert_eq!(
            to_string(&v),
            r#"{"stat": "OK", "data": {"list": [1, 2], "name": "\u5982\u671f \u00e9", "cost": 0.5, "none": null, "t": true}}"#
        );
        assert_eq!(to_string(&json!({"e": "😀\n\"\u{1}"})), r#"{"e": "\ud83d\ude00\n\"\u0001"}"#);
    }
}
