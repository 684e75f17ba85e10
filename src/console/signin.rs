//! `GET /console` (the overview, or the sign-in form), `POST /console/sign-in` and
//! `POST /console/sign-out`.
//!
//! The sign-in form has no session to tie a CSRF token to: it is protected by a
//! double-submit cookie (a random value in an `HttpOnly; SameSite=Strict` cookie and
//! in the form, which must match) and the same-origin check.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::error::ConsoleError;
use super::layout::document;
use super::session::{
    cookie, end_session, find_session, is_secure, new_secret, open_session, set_cookie, Session,
    BASE, SESSION_COOKIE, SIGN_IN_COOKIE,
};
use super::{csrf, overview, session};
use crate::http::AppState;
use crate::tokens::{identify, Presented};

/// How long a sign-in form stays usable.
const SIGN_IN_FORM_LASTS: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
pub struct HomeQuery {
    #[serde(default)]
    refused: Option<String>,
}

/// `GET /console`: the overview when signed in, otherwise the sign-in form.
#[utoipa::path(get, path = "/console", tag = "console", operation_id = "showConsole",
    responses((status = 200, content_type = "text/html",
        description = "The overview with a session cookie, else the sign-in form (its input is named `token`)")))]
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HomeQuery>,
) -> Result<Response, ConsoleError> {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if let Some(session) = find_session(&state.pool, &state.merchants, id).await? {
            return overview::render(&state, &session).await;
        }
    }
    Ok(sign_in_form(&state, &headers, query.refused.is_some()))
}

/// Renders the sign-in form with a fresh double-submit token in a cookie and the form.
fn sign_in_form(state: &AppState, headers: &HeaderMap, refused: bool) -> Response {
    let token = new_secret();
    let secure = is_secure(headers, state.console.settings.secure_cookie);
    let page = document(
        "Sign in",
        html! {
            main.signin {
                h1 { "paymirror console" }
                @if refused {
                    p.problem #refused { "That token was not accepted: it is unknown, revoked or replaced by a newer one." }
                }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="csrf" value=(token);
                    label for="token" { "API token" }
                    input #token type="password" name="token" autocomplete="off" required autofocus;
                    button type="submit" { "Sign in" }
                }
                p.muted { "A read token shows everything; a write token also lets you retry and refresh syncs." }
            }
        },
    );
    let mut response = page.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &token, SIGN_IN_FORM_LASTS, secure),
    );
    response
}

/// The sign-in form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignInForm {
    /// An API token (`paymirror tokens create`).
    #[serde(default)]
    token: String,
    /// The sign-in form's CSRF token.
    #[serde(default)]
    csrf: String,
}

/// `POST /console/sign-in`: checks the token as the API does and opens a session;
/// a token that is not accepted is sent back to the form with a message.
#[utoipa::path(post, path = "/console/sign-in", tag = "console", operation_id = "signInToConsole",
    request_body(content = SignInForm, content_type = "application/x-www-form-urlencoded",
        description = "`token` (an API token) and `csrf` (the sign-in form's token)"),
    responses(
        (status = 303, description = "Signed in (session cookie set, to `/console`) or refused (to `/console?refused=1`)"),
        (status = 403, description = "The form's CSRF token is missing or wrong, or it came from another site")))]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    csrf::check(&headers, expected, &form.csrf)?;
    let identity = match Presented::parse(form.token.trim()) {
        Some(token) => identify(&state.pool, &state.token_use, &token).await?,
        None => None,
    };
    let Some(identity) = identity else {
        tracing::info!("console sign-in refused: unknown or inactive token");
        return Ok(Redirect::to("/console?refused=1").into_response());
    };
    let lasts = state.console.settings.session_length;
    let id = open_session(&state.pool, identity.token_id, lasts).await?;
    tracing::info!(account = %identity.account, "console session opened");
    let secure = is_secure(&headers, state.console.settings.secure_cookie);
    let mut response = Redirect::to(BASE).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, lasts, secure),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, "", Duration::ZERO, secure),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/sign-out`: ends the session and clears its cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Result<Response, ConsoleError> {
    csrf::check(&headers, &session.csrf, &form.csrf)?;
    end_session(&state.pool, &session).await?;
    tracing::info!(account = %session.account, "console session ended by sign-out");
    let secure = is_secure(&headers, state.console.settings.secure_cookie);
    let mut response = Redirect::to(BASE).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Duration::ZERO, secure),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct MerchantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    merchant: String,
}

/// `POST /console/merchant`: the merchant every page of this session shows, among
/// those its token sees; another code is a 404, as if it were not served.
pub async fn choose_merchant(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<MerchantForm>,
) -> Result<Response, ConsoleError> {
    csrf::check(&headers, &session.csrf, &form.csrf)?;
    if !session::choose_merchant(&state.pool, &session, &form.merchant).await? {
        return Err(ConsoleError::NotFound(
            "no merchant with this code is served here".into(),
        ));
    }
    Ok(Redirect::to(BASE).into_response())
}
