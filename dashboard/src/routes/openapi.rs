//! The API's description: the JSON twin of every page, from the registry of pages.

use super::*;

pub(super) async fn openapi() -> Json<Value> {
    let mut paths = serde_json::Map::new();
    let described =
        PAGES.iter().flat_map(|p| std::iter::once((p.api, p.summary)).chain(p.more.iter().copied()));
    for (path, summary) in described {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        paths.insert(
            (*path).to_owned(),
            json!({"get": {
                "summary": summary,
                "parameters": params,
                "security": [{"session": []}],
                "responses": {
                    "200": {"description": "the data the viewer may see", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": {"description": "no session: log in at /login"},
                    "403": {"description": "the viewer's role may not see this (decided by the Cedar view policies)"},
                }
            }}),
        );
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "Custos supervision API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The JSON twin of every dashboard page. Every route needs a session cookie from /login; what a route returns is cut to what the viewer's role may see."},
        "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": session::COOKIE}}},
        "paths": paths,
    }))
}
