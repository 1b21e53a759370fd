//! s3db.js's number encoding (`concerns/base62.js`): integer parts in base62,
//! fractions as decimal digits. Arithmetic is done in f64 exactly as the JS
//! does, so large values round the same way on both sides.

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `encode(n)` for a non-negative integer-valued f64.
fn encode_int(mut n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    while n > 0.0 {
        digits.push(ALPHABET[(n % 62.0) as usize]);
        n = (n / 62.0).floor();
    }
    digits.reverse();
    String::from_utf8(digits).expect("alphabet is ASCII")
}

/// `decode(s)`: `NaN` on a character outside the alphabet, `0` for `""`.
fn decode_int(s: &str) -> f64 {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut r = 0.0_f64;
    for c in digits.bytes() {
        match ALPHABET.iter().position(|&a| a == c) {
            Some(i) => r = r * 62.0 + i as f64,
            None => return f64::NAN,
        }
    }
    if neg {
        -r
    } else {
        r
    }
}

/// Writes a finite number so that s3db.js's `decodeDecimal` reads it back
/// exactly. Integers below 2^53 and ordinary decimals come out byte-identical
/// to s3db.js; very large or tiny values use `d.ddde±x`, which JS parses
/// exactly (s3db.js itself writes `""` for `1e-7`).
pub fn encode_decimal(v: f64) -> String {
    debug_assert!(v.is_finite());
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if a.fract() == 0.0 && a < 9_007_199_254_740_992.0 {
        return format!("{sign}{}", encode_int(a));
    }
    if !(1e-6..1e21).contains(&a) {
        // Leading digit is the same in base 10 and base 62.
        let sci = format!("{a:e}"); // e.g. "1.5e-7", "1e21"
        let (mantissa, exp) = sci.split_once('e').expect("exponent form");
        let (lead, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        return format!("{sign}{lead}.{rest}e{exp}");
    }
    let positional = format!("{a}");
    match positional.split_once('.') {
        Some((int, frac)) => format!("{sign}{}.{frac}", encode_int(int.parse::<f64>().unwrap_or(0.0))),
        None => format!("{sign}{}", encode_int(a)),
    }
}

/// s3db.js's `decodeDecimal`. `None` where JS would produce `NaN`.
pub fn decode_decimal(s: &str) -> Option<f64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let i = decode_int(int);
    if i.is_nan() {
        return None;
    }
    let n = match frac {
        None => i,
        Some(f) => format!("{i}.{f}").parse::<f64>().ok().or_else(|| (f.is_empty()).then_some(i))?,
    };
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_what_s3db_writes() {
        // Observed s3db.js 21.6.2 output (notes/s3db-codec.md §4).
        for (v, s) in [
            (0.0, "0"),
            (1.0, "1"),
            (10.0, "a"),
            (61.0, "Z"),
            (62.0, "10"),
            (-5.0, "-5"),
            (9_007_199_254_740_992.0_f64.next_down(), "FfGNdXsE7"),
            (1e15 + 7.0, "4zXyLE1GD"),
            (0.1, "0.1"),
            (-0.5, "-0.5"),
            (-12.5, "-c.5"),
            (123.456, "1Z.456"),
            (123456789.125, "8m0Kx.125"),
            (1e-6, "0.000001"),
        ] {
            assert_eq!(encode_decimal(v), s, "{v}");
            assert_eq!(decode_decimal(s), Some(v), "{s}");
        }
    }

    #[test]
    fn reads_what_s3db_writes_for_large_and_tiny() {
        assert_eq!(decode_decimal("FfGNdXsE8"), Some(9_007_199_254_740_992.0));
        assert_eq!(decode_decimal("jdt8BLTpPG02"), Some(1e21));
        assert_eq!(decode_decimal("1.5e-7"), Some(1.5e-7));
        assert_eq!(decode_decimal("1.5e+21"), Some(1.5e21));
        assert_eq!(decode_decimal("c.5"), Some(12.5));
        assert_eq!(decode_decimal("10"), Some(62.0), "integer parts are base62");
        assert_eq!(decode_decimal("x!"), None);
    }

    #[test]
    fn every_value_round_trips() {
        for v in [1e-7, -1e-7, 1.5e-7, 1e21, 1.5e21, -2.5e300, 5e-324, f64::MAX, 0.30000000000000004, 2f64.powi(53), 2f64.powi(60) + 2048.0] {
            let s = encode_decimal(v);
            assert_eq!(decode_decimal(&s), Some(v), "{v} -> {s}");
        }
        assert_eq!(encode_decimal(1e-7), "1.e-7");
        assert_eq!(encode_decimal(-0.0), "0");
    }
}
