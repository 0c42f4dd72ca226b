//! The debugging web UI: static assets compiled into the binary (no CDN, no fetch of any
//! kind). The page reads the JSON API; nothing here touches the model.

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Every embedded file, by the name it is served under.
pub const FILES: &[&str] = &[
    "index.html",
    "login.html",
    "app.css",
    "app.js",
    "chart.js",
    "detail.js",
    "dom.js",
    "list.js",
    "live.js",
    "overview.js",
    "processes.js",
];

const HTML: &str = "text/html; charset=utf-8";
// Module scripts: browsers insist on a JavaScript MIME type.
const JS: &str = "text/javascript; charset=utf-8";

/// The asset served at `/ui/<name>`, or at `/` for `index.html`.
pub fn asset(name: &str) -> Option<Asset> {
    let (content_type, body): (&'static str, &'static [u8]) = match name {
        "index.html" => (HTML, include_bytes!("ui/index.html")),
        // Served by `GET /login` (see security), with an error line when a token was refused.
        "login.html" => (HTML, include_bytes!("ui/login.html")),
        "app.css" => ("text/css; charset=utf-8", include_bytes!("ui/app.css")),
        // The page's modules: app.js routes to one module per page, over dom.js (elements,
        // formats), live.js (API and polling) and chart.js.
        "app.js" => (JS, include_bytes!("ui/app.js")),
        "chart.js" => (JS, include_bytes!("ui/chart.js")),
        "detail.js" => (JS, include_bytes!("ui/detail.js")),
        "dom.js" => (JS, include_bytes!("ui/dom.js")),
        "list.js" => (JS, include_bytes!("ui/list.js")),
        "live.js" => (JS, include_bytes!("ui/live.js")),
        "overview.js" => (JS, include_bytes!("ui/overview.js")),
        "processes.js" => (JS, include_bytes!("ui/processes.js")),
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
        // Every module a script imports is served: a missing one breaks the whole page.
        for name in FILES.iter().filter(|n| n.ends_with(".js")) {
            let text = std::str::from_utf8(asset(name).map_or(&[][..], |a| a.body)).unwrap_or("");
            for line in text.lines().filter(|l| l.contains(" from \"./")) {
                let imported = line.split("\"./").nth(1).and_then(|r| r.split('"').next());
                let imported = imported.unwrap_or_default();
                assert!(
                    FILES.contains(&imported),
                    "{name} imports {imported}, not served"
                );
            }
        }
        assert!(asset("").is_none());
    }
}
