//! Content negotiation of `/metrics`: whether a client's `Accept-Encoding` takes gzip, by its
//! q-values. Pure functions over request headers; knows nothing of bodies or routes.

use axum::http::{header, HeaderMap};

/// Whether the client's `Accept-Encoding` takes gzip (RFC 9110 12.5.3): `gzip` (or `x-gzip`)
/// with a q-value above 0, or, when gzip is not named, `*` above 0; and not below an
/// explicitly listed `identity`. Otherwise, or without the header, the identity body (always
/// acceptable here: nothing else is served).
pub(super) fn wants_gzip(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (mut gzip, mut star, mut identity) = (None, None, None);
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(QVALUE_ONE), |(_, v)| qvalue(v.trim()));
        // A malformed q-value makes its coding unacceptable: plain text is always safe.
        let q = q.unwrap_or(0);
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding == "*" {
            &mut star
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else {
            continue;
        };
        *slot = Some(q.max(slot.unwrap_or(0)));
    }
    let q = gzip.or(star).unwrap_or(0);
    q > 0 && identity.is_none_or(|identity| q >= identity)
}

/// A q-value of 1, in thousandths.
const QVALUE_ONE: u16 = 1000;

/// An RFC 9110 q-value (`0`, `0.5`, `1.000`, up to three decimals) in thousandths; `None` when
/// malformed.
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => QVALUE_ONE,
        _ => return None,
    };
    let thousandths: u16 = frac
        .bytes()
        .zip([100, 10, 1])
        .map(|(digit, weight)| u16::from(digit - b'0') * weight)
        .sum();
    let q = whole + thousandths;
    (q <= QVALUE_ONE).then_some(q)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn gzip_is_chosen_by_q_value() {
        let wants = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            wants_gzip(&headers)
        };
        assert!(!wants_gzip(&HeaderMap::new()), "no header: identity");
        for yes in [
            "gzip",
            "GZIP",
            "x-gzip",
            "deflate, gzip",
            "gzip;q=0.001",
            "gzip; q=1.000",
            "*",
            "*;q=0.5",
            "br;q=1, gzip;q=0.8",
            "identity;q=0.5, gzip",
            "gzip, identity",
        ] {
            assert!(wants(yes), "{yes}");
        }
        for no in [
            "gzip;q=0",
            "gzip;q=0.000",
            "gzip;q=0, *",
            "*;q=0",
            "identity",
            "deflate, br",
            "",
            "gzipped",
            "gzip;q=2",
            "gzip;q=0.0001",
            "gzip;q=abc",
            "identity;q=1, gzip;q=0.5",
        ] {
            assert!(!wants(no), "{no}");
        }
    }
}
