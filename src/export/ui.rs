//! The debugging web UI: static assets compiled into the binary (no CDN, no fetch of any
//! kind). The page reads the JSON API; nothing here touches the model.

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The asset served at `/ui/<name>`, or at `/` for `index.html`.
pub fn asset(name: &str) -> Option<Asset> {
    let (content_type, body): (&'static str, &'static [u8]) = match name {
        "index.html" => ("text/html; charset=utf-8", include_bytes!("ui/index.html")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}
