//! RESP2 (placeholder while it is written).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Served;

/// Serves RESP2 on `listener` until `stop` turns true.
///
/// # Errors
/// An accept error.
pub async fn serve(
    listener: TcpListener,
    served: Arc<Served>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = (listener, served);
    let _ = stop.wait_for(|&s| s).await;
    Ok(())
}
