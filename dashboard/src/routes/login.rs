//! Login and logout: a new session at every login, the login limit per account and address,
//! password hashing off the async workers.

use super::*;

pub(super) async fn login_form(State(state): Shared) -> Response {
    login_page(&state, "", StatusCode::OK)
}

pub(super) fn login_page(state: &AppState, message: &str, status: StatusCode) -> Response {
    let token = session::token();
    let cookie = format!(
        "{}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=600{}",
        session::LOGIN_COOKIE,
        if state.secure_cookies { "; Secure" } else { "" }
    );
    match crate::page::login(&token, message) {
        Ok(html) => (status, [(header::SET_COOKIE, cookie)], Html(html)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    name: String,
    password: String,
    csrf: String,
}

pub(super) async fn login(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookies = headers.get(header::COOKIE).and_then(|h| h.to_str().ok()).unwrap_or("");
    let expected = session::cookie(cookies, session::LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same(expected, &form.csrf) {
        tracing::warn!(client = %client.ip(), "refused: login without a valid CSRF token");
        return login_page(&state, "The form expired: please log in again.", StatusCode::FORBIDDEN);
    }
    // The accounts as they are now: an operator's unlock counts before the limit is asked.
    let accounts = state.accounts.now(&state.sessions);
    let key = session::limit_key(&form.name, client.ip());
    if let Err(secs) = state.sessions.attempt(&key) {
        tracing::warn!(client = %client.ip(), name = %form.name, "refused: too many failed logins");
        return AppError::TooMany(secs).into_response();
    }
    // argon2id takes tens of milliseconds of a core: off the async workers, one at a time,
    // at most one start per `LOGIN_SPACING`; past `LOGIN_QUEUE` waiting, refused at once.
    use std::sync::atomic::Ordering;
    if state.logins_waiting.fetch_add(1, Ordering::SeqCst) >= crate::LOGIN_QUEUE {
        state.logins_waiting.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(client = %client.ip(), "refused: too many logins waiting");
        return AppError::Busy.into_response();
    }
    let permit = state.hashing.acquire().await;
    state.logins_waiting.fetch_sub(1, Ordering::SeqCst);
    let account = match permit {
        Ok(_permit) => {
            let started = std::time::Instant::now();
            let (name, password) = (form.name.clone(), form.password);
            let found = tokio::task::spawn_blocking(move || accounts.verify(&name, &password).cloned())
                .await
                .ok()
                .flatten();
            if let Some(rest) = crate::LOGIN_SPACING.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
            found
        }
        Err(_) => None,
    };
    let Some(account) = account else {
        state.sessions.failed(&key);
        tracing::warn!(client = %client.ip(), name = %form.name, "refused: wrong name or password");
        return login_page(&state, "Wrong account name or password.", StatusCode::UNAUTHORIZED);
    };
    state.sessions.succeeded(&key);
    // A new session id at every login: one planted before it is worthless.
    let id = state.sessions.start(Viewer::of(&account), account.stamp());
    tracing::info!(name = %account.name, role = %account.role, "logged in");
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        session::COOKIE,
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let clear = format!("{}=; Path=/login; Max-Age=0", session::LOGIN_COOKIE);
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, cookie.parse().unwrap_or_else(|_| header::HeaderValue::from_static("")));
    r.headers_mut()
        .append(header::SET_COOKIE, clear.parse().unwrap_or_else(|_| header::HeaderValue::from_static("")));
    r
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn logout(
    State(state): Shared,
    Extension(current): Extension<Current>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session::same(&current.session.csrf, &form.csrf) {
        tracing::warn!(name = %current.session.viewer.name, "refused: logout without a valid CSRF token");
        return AppError::Forbidden.into_response();
    }
    state.sessions.end(&current.id);
    let clear = format!("{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict", session::COOKIE);
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}
