//! The shape of every page: a title and sections (figures, tables, charts, texts), rendered
//! as HTML by one askama template and, for the `/api/` twin, as JSON.
//!
//! Tables are sorted and paginated here, by the query string (`?sort=2&dir=desc&page=3`), so
//! every list is sortable and paginated without JavaScript.

use std::collections::BTreeMap;

use askama::Template;
use serde::Serialize;
use serde_json::Value;

use crate::text;

/// Rows per page of a table.
pub const PAGE_SIZE: usize = 50;

/// A page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The heading and `<title>`.
    pub title: String,
    /// A sentence under the heading.
    pub intro: String,
    /// The content.
    pub sections: Vec<Section>,
    /// The data of the `/api/` twin.
    #[serde(skip)]
    pub json: Value,
    /// What the page shows about natural persons, if anything: each answer with it is
    /// written to Custos's own access log.
    #[serde(skip)]
    pub trail: Option<Shown>,
}

/// What an answer shows about natural persons: the kind of item (`event`, `finding`, `list`,
/// `trail`), which (an identifier, or for a list the filter that selected it), and whose
/// records they are (member state and actor; empty for a list: the viewer's own scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub kind: &'static str,
    pub item: String,
    pub member_state: String,
    pub controller: String,
}

impl Shown {
    /// A list of records in the viewer's own scope, selected by `filter`.
    pub fn list(kind: &'static str, filter: impl Into<String>) -> Option<Shown> {
        Some(Shown { kind, item: filter.into(), member_state: String::new(), controller: String::new() })
    }

    /// One item of `kind`, a record of `controller` of `member_state`.
    pub fn item(
        kind: &'static str,
        item: impl Into<String>,
        member_state: &str,
        controller: &str,
    ) -> Option<Shown> {
        Some(Shown {
            kind,
            item: item.into(),
            member_state: member_state.into(),
            controller: controller.into(),
        })
    }
}

/// One part of a page.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Section {
    /// Headline figures.
    Figures { heading: String, figures: Vec<Figure> },
    /// A table.
    Table(Table),
    /// A chart with its data beside it.
    Chart { heading: String, svg: String, table: Table },
    /// Preformatted text (a policy, facts).
    Text { heading: String, text: String },
    /// Filters: a GET form.
    Filters { fields: Vec<Field> },
    /// A paragraph.
    Note { text: String },
    /// A POST form that produces something, with its CSRF token.
    Produce { fields: Vec<Field>, csrf: String },
    /// A POST form that changes something (a review), with its CSRF token: works without
    /// JavaScript.
    Form { heading: String, action: String, submit: String, inputs: Vec<Input>, csrf: String },
}

/// A field of a [`Section::Form`].
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub name: String,
    pub label: String,
    /// `text`, `date`, `textarea`, `select` or `hidden`.
    pub kind: &'static str,
    pub value: String,
    /// A `select`'s choices: value and label.
    pub options: Vec<(String, String)>,
}

impl Input {
    /// A field of `kind` with its present `value`.
    pub fn new(name: &str, label: &str, kind: &'static str, value: impl Into<String>) -> Input {
        Input { name: name.into(), label: label.into(), kind, value: value.into(), options: Vec::new() }
    }

    /// A choice among `options` (value, label), `value` chosen.
    pub fn select(name: &str, label: &str, value: &str, options: Vec<(String, String)>) -> Input {
        Input { options, ..Input::new(name, label, "select", value) }
    }
}

/// A headline figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub label: String,
    pub value: String,
    pub link: Option<String>,
}

/// A filter field.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub value: String,
}

/// A table cell: its text, and optionally a link, a machine-readable time, a colour class.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cell {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// RFC 3339 UTC, shown on hover; `text` is then the viewer's local time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// How the cell sorts (numbers sort as numbers).
    #[serde(skip)]
    pub key: SortKey,
}

/// A cell's sort key.
#[derive(Debug, Clone, PartialEq, PartialOrd, Default)]
pub enum SortKey {
    #[default]
    None,
    Number(f64),
    Text(String),
}

impl Cell {
    /// Plain text.
    pub fn text(s: impl Into<String>) -> Cell {
        let text = s.into();
        Cell { key: SortKey::Text(text.clone()), text, ..Cell::default() }
    }

    /// A number (sorts numerically).
    pub fn number(v: f64, shown: impl Into<String>) -> Cell {
        Cell { text: shown.into(), key: SortKey::Number(v), ..Cell::default() }
    }

    /// A count.
    pub fn count(n: u64) -> Cell {
        Cell::number(n as f64, n.to_string())
    }

    /// An instant (RFC 3339), shown in `zone` with UTC on hover.
    pub fn time(rfc3339: &str, zone: chrono_tz::Tz) -> Cell {
        match chrono::DateTime::parse_from_rfc3339(rfc3339) {
            Ok(t) => {
                let utc = t.with_timezone(&chrono::Utc);
                Cell {
                    text: utc.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z").to_string(),
                    utc: Some(utc.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                    key: SortKey::Number(utc.timestamp() as f64),
                    ..Cell::default()
                }
            }
            Err(_) => Cell::text(rfc3339),
        }
    }

    /// With a link.
    pub fn link(mut self, href: impl Into<String>) -> Cell {
        self.link = Some(href.into());
        self
    }

    /// With a class (`green`, `yellow`, `red`, `overdue`).
    pub fn class(mut self, c: impl Into<String>) -> Cell {
        self.class = Some(c.into());
        self
    }
}

/// A column.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub label: String,
    /// The link that sorts by this column (set by [`Table::arrange`]).
    pub sort_link: Option<String>,
    /// `ascending` or `descending` when the table is sorted by it (for `aria-sort`).
    pub sorted: Option<String>,
}

/// A table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub caption: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Rows in all pages.
    pub total: usize,
    /// Pagination, when there is more than one page.
    pub pager: Option<Pager>,
}

/// Links to the neighbouring pages of a table.
#[derive(Debug, Clone, Serialize)]
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Table {
    /// A table of `columns` and `rows`, unsorted, unpaginated.
    pub fn new(caption: impl Into<String>, columns: &[&str], rows: Vec<Vec<Cell>>) -> Table {
        Table {
            caption: caption.into(),
            columns: columns
                .iter()
                .map(|c| Column { label: (*c).to_owned(), sort_link: None, sorted: None })
                .collect(),
            total: rows.len(),
            rows,
            pager: None,
        }
    }

    /// Sorts by the query's `sort` and `dir` and cuts out the query's `page`; `path` is the
    /// page's path, `query` its whole query string (other parameters are kept in the links).
    pub fn arrange(mut self, path: &str, query: &BTreeMap<String, String>) -> Table {
        let sort: Option<usize> =
            query.get("sort").and_then(|s| s.parse().ok()).filter(|&i| i < self.columns.len());
        let descending = query.get("dir").is_some_and(|d| d == "desc");
        if let Some(i) = sort {
            self.rows.sort_by(|a, b| {
                let o = a[i].key.partial_cmp(&b[i].key).unwrap_or(std::cmp::Ordering::Equal);
                if descending { o.reverse() } else { o }
            });
        }
        let link = |changes: &[(&str, String)]| {
            let mut q = query.clone();
            for (k, v) in changes {
                q.insert((*k).to_owned(), v.clone());
            }
            let encoded: Vec<String> =
                q.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            format!("{path}?{}", encoded.join("&"))
        };
        for (i, c) in self.columns.iter_mut().enumerate() {
            let next_dir = if sort == Some(i) && !descending { "desc" } else { "asc" };
            c.sort_link =
                Some(link(&[("sort", i.to_string()), ("dir", next_dir.into()), ("page", "1".into())]));
            c.sorted =
                (sort == Some(i)).then(|| if descending { "descending" } else { "ascending" }.to_owned());
        }
        self.total = self.rows.len();
        let pages = self.total.div_ceil(PAGE_SIZE).max(1);
        let page = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1usize).clamp(1, pages);
        if pages > 1 {
            self.rows = self.rows.into_iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
            self.pager = Some(Pager {
                page,
                pages,
                previous: (page > 1).then(|| link(&[("page", (page - 1).to_string())])),
                next: (page < pages).then(|| link(&[("page", (page + 1).to_string())])),
            });
        }
        self
    }
}

/// Percent-encodes a query-string component.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The HTML document of a page.
#[derive(Template)]
#[template(path = "page.html")]
struct Html<'a> {
    page: &'a Page,
    nav: Vec<(&'static str, &'static str, bool)>,
    viewer: &'a str,
    role: &'a str,
    csrf: &'a str,
    t: &'static text::Text,
}

/// Renders `page` for `viewer` (shown in the header) with the logout form's `csrf`.
pub fn html(page: &Page, current: &str, viewer: &str, role: &str, csrf: &str) -> crate::Result<String> {
    let nav = crate::routes::PAGES
        .iter()
        .map(|p| {
            (
                p.path,
                text::EN.label(p.path),
                p.path == current || (current.starts_with(p.path) && p.path != "/"),
            )
        })
        .collect();
    let doc = Html { page, nav, viewer, role, csrf, t: &text::EN };
    doc.render().map_err(|e| crate::Error::Internal(format!("rendering the page `{current}`: {e}")))
}

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    token: &'a str,
    message: &'a str,
    t: &'static text::Text,
}

/// Renders the login form with its CSRF `token` and an optional `message`.
pub fn login(token: &str, message: &str) -> crate::Result<String> {
    Login { token, message, t: &text::EN }
        .render()
        .map_err(|e| crate::Error::Internal(format!("rendering the login page: {e}")))
}
