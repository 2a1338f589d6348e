//! The JSON API (placeholder while it is written).

use std::sync::Arc;

use axum::Router;

use super::Served;

/// The API's routes.
pub fn router(served: Arc<Served>) -> Router {
    Router::new().with_state(served)
}
