//! The interface's words, one place per language. English is the first; a translation is
//! another [`Text`] with the same fields.

/// The words of the interface.
pub struct Text {
    /// The language code, for `<html lang>`.
    pub lang: &'static str,
    /// The product's name in the header.
    pub product: &'static str,
    /// The label of each page in the navigation, by its path (the pages and their order are
    /// the registry's, `routes::PAGES`).
    pub nav: &'static [(&'static str, &'static str)],
    pub skip: &'static str,
    pub signed_in_as: &'static str,
    pub logout: &'static str,
    pub login_title: &'static str,
    pub login_name: &'static str,
    pub login_password: &'static str,
    pub login_submit: &'static str,
    pub filter: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub page_of: &'static str,
    pub rows: &'static str,
    pub chart_data: &'static str,
    pub nothing: &'static str,
    pub footer: &'static str,
}

/// English.
pub static EN: Text = Text {
    lang: "en",
    product: "Custos: supervision of IMI",
    nav: &[
        ("/", "Overview"),
        ("/findings", "Need-to-know findings"),
        ("/deadlines", "Deadlines"),
        ("/breaches", "Breach register"),
        ("/requests", "Data-subject requests"),
        ("/response-times", "Response times"),
        ("/policies", "Policy explorer"),
        ("/review", "Review"),
        ("/precision", "Precision"),
        ("/reports", "Reports"),
        ("/trail", "Access log"),
    ],
    skip: "Skip to content",
    signed_in_as: "Signed in as",
    logout: "Log out",
    login_title: "Log in to Custos",
    login_name: "Account name",
    login_password: "Password",
    login_submit: "Log in",
    filter: "Filter",
    previous: "Previous page",
    next: "Next page",
    page_of: "Page {page} of {pages}",
    rows: "rows",
    chart_data: "The data of this chart",
    nothing: "Nothing to show.",
    footer: "Dates are shown in your time zone; hover over one for UTC. Counts marked :c are confidential (disclosure control).",
};

impl Text {
    /// The navigation label of the page at `path` (the path itself if it has none).
    pub fn label(&self, path: &'static str) -> &'static str {
        self.nav.iter().find(|(p, _)| *p == path).map_or(path, |(_, l)| *l)
    }
}
