//! The page (placeholder while it is written).

use std::sync::Arc;

use axum::Router;

use super::Served;

/// The page's routes.
pub fn router(served: Arc<Served>) -> Router {
    Router::new().with_state(served)
}
