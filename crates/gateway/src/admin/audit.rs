//! The audit log in the admin API, the same as `portcullis audit`:
//!
//! `GET /admin/audit` (`?since=1h&until=…&user=alice&tool=create_issue&decision=deny`, paged
//! with `limit` (default 1000) and `after` (the `next` of the previous page)) answers
//! `{events: [...], next}`; `GET /admin/audit/verify` walks the hash chain.

use super::{require_admin, Caller, Problem};
use crate::audit::query::{check_json, event_json, Filter};
use crate::door::Door;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Json;
use portcullis_store::Store;
use serde_json::{json, Value};
use std::sync::Arc;

type AuditState = (Arc<Door>, Option<Store>);

/// Events in one answer, by default and at most.
const PAGE: u32 = 1_000;
const MAX_PAGE: u32 = 10_000;

pub fn routes(door: Arc<Door>, store: Option<Store>) -> axum::Router {
    axum::Router::new()
        .route("/admin/audit", get(list))
        .route("/admin/audit/verify", get(verify))
        .with_state((door, store))
}

fn store_of<'s>(state: &'s AuditState, caller: &Caller) -> Result<&'s Store, Problem> {
    require_admin(&state.0, caller)?;
    state.1.as_ref().ok_or_else(|| {
        Problem(
            StatusCode::NOT_FOUND,
            "the audit log is not kept in the store (`audit.enabled` or `audit.store` is off)".into(),
        )
    })
}

async fn list(
    State(state): State<AuditState>,
    caller: Caller,
    Query(filter): Query<Filter>,
) -> Result<Json<Value>, Problem> {
    let store = store_of(&state, &caller)?;
    let mut query = filter.query().map_err(|e| Problem(StatusCode::BAD_REQUEST, e))?;
    let limit = filter.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    query.limit = Some(limit);
    let rows = store.audit_events(&query).await?;
    let next = rows.last().filter(|_| rows.len() == limit as usize).map(|r| r.seq);
    let events: Vec<Value> = rows.iter().map(event_json).collect();
    Ok(Json(json!({ "events": events, "next": next })))
}

async fn verify(State(state): State<AuditState>, caller: Caller) -> Result<Json<Value>, Problem> {
    let check = store_of(&state, &caller)?.verify_audit().await?;
    Ok(Json(check_json(&check)))
}
