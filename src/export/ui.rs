//! The debugging web UI: static assets compiled into the binary (no CDN, no fetch of any
//! kind). The page reads the JSON API; nothing here touches the model.

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Every embedded file, by the name it is served under.
pub const FILES: &[&str] = &["index.html", "login.html", "app.js", "chart.js", "app.css"];

/// The asset served at `/ui/<name>`, or at `/` for `index.html`.
pub fn asset(name: &str) -> Option<Asset> {
    let (content_type, body): (&'static str, &'static [u8]) = match name {
        "index.html" => ("text/html; charset=utf-8", include_bytes!("ui/index.html")),
        // Served by `GET /login` (see security), with an error line when a token was refused.
        "login.html" => ("text/html; charset=utf-8", include_bytes!("ui/login.html")),
        // Module scripts: browsers insist on a JavaScript MIME type.
        "app.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("ui/app.js"),
        ),
        "chart.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("ui/chart.js"),
        ),
        "app.css" => ("text/css; charset=utf-8", include_bytes!("ui/app.css")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_file_is_served_and_nothing_else() {
        for name in FILES {
            let a = asset(name).unwrap_or_else(|| panic!("{name} is listed but not served"));
            assert!(!a.body.is_empty(), "{name} is empty");
        }
        assert!(asset("../ui.rs").is_none());
        assert!(asset("").is_none());
    }
}
