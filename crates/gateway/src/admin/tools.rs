//! Pinned tool definitions in the admin API, the same operations as `portcullis tools`:
//!
//! `GET /admin/tools` (`?server=S&waiting=true`), `GET /admin/tools/{server}/diff`
//! (`?item=NAME`, `?identity=true`), `POST /admin/tools/{server}/approve` and `.../reject`
//! (`{items: [...], identity: bool, expect: "hash prefix"}`; no items: everything waiting).

use super::{require_admin, Caller, Problem};
use crate::door::Door;
use crate::pins::review::{self, ItemRef};
use crate::pins::Pins;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use portcullis_store::{Review, Store, StoreError};
use serde::Deserialize;
use std::sync::Arc;

type ToolsState = (Arc<Door>, Arc<Pins>);

pub fn routes(door: Arc<Door>, pins: Arc<Pins>) -> axum::Router {
    axum::Router::new()
        .route("/admin/tools", get(list))
        .route("/admin/tools/{server}/diff", get(diff))
        .route("/admin/tools/{server}/approve", post(approve))
        .route("/admin/tools/{server}/reject", post(reject))
        .with_state((door, pins))
}

/// The pins' store, if `caller` may administer it and something is pinned.
fn store_of<'s>(state: &'s ToolsState, caller: &Caller) -> Result<&'s Store, Problem> {
    require_admin(&state.0, caller)?;
    state.1.store().ok_or_else(|| {
        Problem(StatusCode::NOT_FOUND, "pinning is off for every server (`pinning: { enabled: false }`)".into())
    })
}

fn conflict(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict(message) => Problem(StatusCode::CONFLICT, message),
        other => other.into(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    server: Option<String>,
    #[serde(default)]
    waiting: bool,
}

async fn list(
    State(state): State<ToolsState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let store = store_of(&state, &caller)?;
    let pins = review::list(store, query.server.as_deref(), query.waiting).await.map_err(conflict)?;
    Ok(Json(pins).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    item: Option<String>,
    #[serde(default)]
    identity: bool,
}

async fn diff(
    State(state): State<ToolsState>,
    caller: Caller,
    Path(server): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Response, Problem> {
    let store = store_of(&state, &caller)?;
    let items = items_of(query.item.iter().cloned().collect(), query.identity);
    Ok(Json(review::diff(store, &server, &items).await.map_err(conflict)?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    items: Vec<String>,
    #[serde(default)]
    identity: bool,
    /// The prefix of the hash the caller reviewed (with one item).
    expect: Option<String>,
}

fn items_of(items: Vec<String>, identity: bool) -> Vec<ItemRef> {
    let mut items: Vec<ItemRef> = items.iter().map(|i| ItemRef::parse(i)).collect();
    if identity {
        items.push(ItemRef::identity());
    }
    items
}

async fn decide(
    state: ToolsState,
    caller: Caller,
    server: String,
    body: Option<Json<DecisionBody>>,
    decision: Review,
) -> Result<Response, Problem> {
    let store = store_of(&state, &caller)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let actor =
        caller.as_ref().map_or_else(|| "admin API".to_owned(), |Extension(p)| format!("admin API: {}", p.subject()));
    let items = items_of(body.items, body.identity);
    let done =
        review::decide(store, &server, &items, body.expect.as_deref(), decision, &actor).await.map_err(conflict)?;
    // This gateway follows at once; the others within their poll.
    if let Err(e) = state.1.refresh().await {
        tracing::warn!(error = %e, "could not read the pins after a review");
    }
    tracing::info!(server = %server, by = %actor, decision = ?decision, items = done.len(), "pinned definitions reviewed");
    Ok(Json(done).into_response())
}

async fn approve(
    State(state): State<ToolsState>,
    caller: Caller,
    Path(server): Path<String>,
    body: Option<Json<DecisionBody>>,
) -> Result<Response, Problem> {
    decide(state, caller, server, body, Review::Approve).await
}

async fn reject(
    State(state): State<ToolsState>,
    caller: Caller,
    Path(server): Path<String>,
    body: Option<Json<DecisionBody>>,
) -> Result<Response, Problem> {
    decide(state, caller, server, body, Review::Reject).await
}
