//! s3db.js's client-level escaping of metadata values
//! (`concerns/metadata-encoding.js`, `concerns/dictionary-encoding.js`).

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// `encodeURIComponent`'s unreserved set.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Node's `Buffer.from(s, 'base64')` does not insist on padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const ESCAPE_PREFIXES: [&str; 5] = ["d:", "u:", "b:", "z:", "z85:"];

/// A string as a metadata value both s3db.js versions decode to the same
/// string. Plain printable ASCII goes raw; anything HTTP or the decoder would
/// alter (non-ASCII, edge spaces, `null`, escape prefixes) goes `u:`-escaped.
pub fn encode_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && s != "null"
        && s != "undefined"
        && !ESCAPE_PREFIXES.iter().any(|p| s.starts_with(p));
    if plain {
        s.to_string()
    } else if s.is_empty() {
        String::new()
    } else {
        format!("u:{}", utf8_percent_encode(s, URI_COMPONENT))
    }
}

/// What `metadataDecode` returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Null,
    Undefined,
    Text(String),
}

pub fn decode(raw: &str) -> Decoded {
    match raw {
        "null" => return Decoded::Null,
        "undefined" => return Decoded::Undefined,
        _ => {}
    }
    if let Some(code) = raw.strip_prefix("d:") {
        if let Some(s) = dictionary_decode(code) {
            return Decoded::Text(s);
        }
    }
    let bytes = raw.as_bytes();
    if raw.len() > 2 && bytes[1] == b':' {
        match bytes[0] {
            b'u' => {
                if let Ok(s) = percent_decode_str(&raw[2..]).decode_utf8() {
                    return Decoded::Text(s.into_owned());
                }
            }
            b'b' => {
                if let Ok(v) = LENIENT_BASE64.decode(raw[2..].trim()) {
                    return Decoded::Text(String::from_utf8_lossy(&v).into_owned());
                }
            }
            _ => {}
        }
    }
    Decoded::Text(raw.to_string())
}

/// Whether s3db.js's JS clients (MemoryClient, FileSystemClient), which
/// escape every metadata value with their own `metadataEncode`, store `s` so
/// that it reads back as `s`. They do not for the literals `null` and
/// `undefined` (stored bare, read as null / absent) nor for a dictionary
/// entry whose code decodes to something else (`font/woff2` -> `d:f` -> `failed`).
pub fn js_client_keeps(s: &str) -> bool {
    if s == "null" || s == "undefined" {
        return false;
    }
    CONTENT_TYPES
        .iter()
        .chain(STATUSES.iter())
        .filter(|(_, text)| *text == s)
        .all(|(code, _)| dictionary_decode(code).as_deref() == Some(s))
}

const CONTENT_TYPES: [(&str, &str); 20] = [
    ("j", "application/json"),
    ("X", "application/xml"),
    ("J", "application/ld+json"),
    ("H", "text/html"),
    ("T", "text/plain"),
    ("C", "text/css"),
    ("V", "text/javascript"),
    ("v", "text/csv"),
    ("P", "image/png"),
    ("I", "image/jpeg"),
    ("G", "image/gif"),
    ("S", "image/svg+xml"),
    ("W", "image/webp"),
    ("Q", "application/pdf"),
    ("z", "application/zip"),
    ("o", "application/octet-stream"),
    ("u", "application/x-www-form-urlencoded"),
    ("F", "multipart/form-data"),
    ("w", "font/woff"),
    ("f", "font/woff2"),
];

/// Statuses override content types on decode, as in s3db.js (`d:f` is `failed`).
const STATUSES: [(&str, &str); 17] = [
    ("p", "processing"),
    ("c", "completed"),
    ("s", "succeeded"),
    ("f", "failed"),
    ("x", "cancelled"),
    ("t", "timeout"),
    ("r", "retrying"),
    ("a", "authorized"),
    ("K", "captured"),
    ("R", "refunded"),
    ("d", "declined"),
    ("h", "shipped"),
    ("D", "delivered"),
    ("e", "returned"),
    ("i", "in_transit"),
    ("n", "initialized"),
    ("m", "terminated"),
];

const URL_PREFIXES: [(&str, &str); 16] = [
    ("@1", "/api/v1/"),
    ("@2", "/api/v2/"),
    ("@3", "/api/v3/"),
    ("@a", "/api/"),
    ("@A", "https://api.example.com/"),
    ("@H", "https://api."),
    ("@W", "https://www."),
    ("@h", "https://"),
    ("@t", "http://"),
    ("@s", "https://s3.amazonaws.com/"),
    ("@S", "https://s3-"),
    ("@L", "http://localhost:"),
    ("@l", "http://localhost"),
    ("@v", "/v1/"),
    ("@u", "/users/"),
    ("@p", "/products/"),
];

fn dictionary_decode(code: &str) -> Option<String> {
    if let Some((_, s)) = STATUSES.iter().find(|(c, _)| *c == code) {
        return Some(s.to_string());
    }
    if let Some((_, s)) = CONTENT_TYPES.iter().find(|(c, _)| *c == code) {
        return Some(s.to_string());
    }
    if code.starts_with('@') && code.len() >= 2 {
        let (tag, rest) = code.split_at(2);
        if let Some((_, prefix)) = URL_PREFIXES.iter().find(|(c, _)| *c == tag) {
            return Some(format!("{prefix}{rest}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_s3db_writes() {
        for (stored, text) in [
            ("hello world", "hello world"),
            ("u:p%C3%A3o%20%C3%A7%C3%A3o%20%E6%97%A5%E6%9C%AC", "pão ção 日本"),
            ("b:5pel5pys6Kqe44OG44Kt44K544OI", "日本語テキスト"),
            ("b:cMOjby3ml6XmnKw=", "pão-日本"),
            ("b:YQpi", "a\nb"),
            ("b:dTphYmM=", "u:abc"),
            ("d:c", "completed"),
            ("d:j", "application/json"),
            ("d:f", "failed"),
            ("d:@hexample.com/x", "https://example.com/x"),
            ("d:@L8080/x", "http://localhost:8080/x"),
            ("", ""),
        ] {
            assert_eq!(decode(stored), Decoded::Text(text.into()), "{stored}");
        }
        assert_eq!(decode("null"), Decoded::Null);
        assert_eq!(decode("undefined"), Decoded::Undefined);
    }

    #[test]
    fn encoded_strings_decode_back() {
        for s in ["api", "pão ção 日本", " padded ", "null", "undefined", "u:x", "d:c", "z85:q", "a\nb", "100% a:b=c/d", "~'()!*"] {
            let e = encode_string(s);
            assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{e}");
            assert!(!e.starts_with(' ') && !e.ends_with(' '));
            assert_eq!(decode(&e), Decoded::Text(s.into()), "{s} -> {e}");
        }
        assert_eq!(encode_string("wallet-1"), "wallet-1");
    }

    #[test]
    fn strings_s3db_js_clients_cannot_keep_in_metadata() {
        for s in ["null", "undefined", "font/woff2"] {
            assert!(!js_client_keeps(s), "{s}");
        }
        for s in ["api", "", "Null", "null ", "failed", "font/woff", "application/json", "completed", "u:null", "pão", "https://x.io/a"] {
            assert!(js_client_keeps(s), "{s}");
        }
    }
}
