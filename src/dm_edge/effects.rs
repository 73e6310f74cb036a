//! Applies the engine's effects to the store: nonces, inventory, operation outcomes, alerts,
//! and a device's Large Object results (staged chunk by chunk, published by reference).

use chrono::{DateTime, Utc};

use super::DmError;
use super::objects::{self, StagedObject, parse_op_id};
use crate::blob::BlobStore;
use crate::dm::session::{Effect, NotDelivered, SessionOutcome};
use crate::store::{Device, Outcome, Tx};

/// What the session log keeps of a message's effects, and what the caller finishes once the
/// session row exists.
pub(super) struct Summary {
    pub auth_outcome: Option<String>,
    pub end_reason: Option<String>,
    /// Operations this reply carries: marked `sent` against the session row.
    pub sent: Vec<i64>,
}

pub(super) async fn apply(
    store: &Tx,
    blobs: &BlobStore,
    device: &Device,
    session_id: &str,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> Result<Summary, DmError> {
    let mut summary = Summary {
        auth_outcome: None,
        end_reason: None,
        sent: Vec::new(),
    };
    for effect in effects {
        match effect {
            Effect::StoreClientNonce(nonce) => {
                store
                    .devices()
                    .set_client_nonce(&device.id, &nonce.to_b64())
                    .await?
            }
            Effect::StoreServerNonce(nonce) => {
                store
                    .devices()
                    .set_server_nonce(&device.id, &nonce.to_b64())
                    .await?
            }
            Effect::DeviceAuthenticated { .. } => {
                summary.auth_outcome = Some("authenticated".into())
            }
            Effect::DeviceAuthFailed { status, attempts } => {
                summary.auth_outcome = Some(format!("failed_{}", status.0));
                tracing::warn!(device.id = %device.id, dm.status = status.0, attempts, "device authentication failed");
            }
            Effect::DeviceResyncChallenged { attempts } => {
                summary.auth_outcome = Some("resync_challenged".into());
                tracing::info!(device.id = %device.id, attempts, "device credential over a resynchronisation nonce; challenged with a fresh nonce");
            }
            Effect::InvalidNextNonce => {
                tracing::error!(device.id = %device.id, "device issued a NextNonce that is not base64; not adopted, our credentials keep the previous nonce");
            }
            Effect::OperationRequeued { op_id, status } => {
                // Not executed: back to queued; this very reply carries it again.
                store
                    .operations()
                    .put_back(parse_op_id(op_id)?, status.0, now)
                    .await?;
                tracing::info!(device.id = %device.id, operation.id = %op_id, dm.status = status.0, "operation refused with our credentials, not executed; sent again");
            }
            Effect::ServerAuthRejected { status } => {
                summary.auth_outcome = Some(format!("server_rejected_{}", status.0));
                tracing::warn!(device.id = %device.id, dm.status = status.0, "the device rejected our credentials");
            }
            Effect::Inventory { uri, value } => {
                store
                    .devices()
                    .record_node(&device.id, uri, value, now)
                    .await?
            }
            Effect::DeviceLimits {
                max_msg_size,
                max_obj_size,
            } => {
                store
                    .devices()
                    .set_limits(&device.id, *max_msg_size, *max_obj_size)
                    .await?
            }
            Effect::OperationSent { op_id } => summary.sent.push(parse_op_id(op_id)?),
            Effect::OperationStatus { op_id, status } => {
                let id = parse_op_id(op_id)?;
                let outcome = store.operations().record_status(id, status.0, now).await?;
                note(device, id, "status", outcome);
            }
            Effect::OperationResults { op_id, items } => {
                let id = parse_op_id(op_id)?;
                let json = serde_json::to_value(items).expect("results serialise");
                let outcome = store.operations().record_results(id, &json, now).await?;
                note(device, id, "results", outcome);
            }
            Effect::OperationResultsRejected { op_id, reason } => {
                let id = parse_op_id(op_id)?;
                tracing::error!(device.id = %device.id, operation.id = id, reason = %reason, "device results unreadable; operation failed");
                let outcome = store.operations().fail(id, reason, None, now).await?;
                note(device, id, "results rejected", outcome);
            }
            Effect::ResultChunk { op_id, seq, bytes } => {
                let id = parse_op_id(op_id)?;
                store.operations().stage_chunk(id, *seq, bytes).await?;
            }
            Effect::ResultObject {
                op_id,
                uri,
                format,
                mime_type,
                b64,
                transmitted_len,
                chunks,
                chain,
            } => {
                let id = parse_op_id(op_id)?;
                let staged = StagedObject {
                    op_id: id,
                    b64: *b64,
                    transmitted_len: *transmitted_len,
                    chunks: *chunks,
                    chain,
                };
                match objects::publish(store, blobs, &staged).await {
                    Ok(published) => {
                        let json = serde_json::json!([{
                            "uri": uri,
                            "format": if *b64 { Some("bin") } else { format.as_deref() },
                            "mime_type": mime_type,
                            "blob": published.key,
                            "size": published.size,
                            "sha256": published.sha256,
                        }]);
                        store.operations().drop_staged(id).await?;
                        let outcome = store.operations().record_results(id, &json, now).await?;
                        tracing::info!(device.id = %device.id, operation.id = id, size_bytes = published.size, "Large Object result published");
                        note(device, id, "results", outcome);
                    }
                    Err(objects::PublishError::Store(e)) => return Err(e.into()),
                    Err(objects::PublishError::Blob(e)) => return Err(DmError::Blob(e)),
                    Err(e) => {
                        let reason = format!("Large Object result unusable: {e}");
                        tracing::error!(device.id = %device.id, operation.id = id, error = %e, "Large Object result unusable; operation failed");
                        let outcome = store.operations().fail(id, &reason, None, now).await?;
                        note(device, id, "results rejected", outcome);
                    }
                }
            }
            Effect::ResultAbandoned { op_id } => {
                let id = parse_op_id(op_id)?;
                store.operations().drop_staged(id).await?;
            }
            Effect::OperationNotDelivered { op_id, reason, .. } => {
                let id = parse_op_id(op_id)?;
                let text = not_delivered_reason(reason);
                let ops = store.operations();
                let outcome = match reason {
                    // Sent, and no status will come: whether it goes again is for its owner.
                    NotDelivered::NoStatus
                    | NotDelivered::SessionAborted
                    | NotDelivered::LargeObjectFailed { status: None } => {
                        ops.expire(id, &text, now).await?
                    }
                    NotDelivered::LargeObjectFailed { status: Some(s) } => {
                        ops.fail(id, &text, Some(s.0), now).await?
                    }
                    NotDelivered::TooLargeForDevice
                    | NotDelivered::LargeObjectsUnsupported
                    | NotDelivered::MessageTooSmall
                    | NotDelivered::GroupInterrupted { .. } => {
                        ops.fail(id, &text, None, now).await?
                    }
                };
                note(device, id, "not delivered", outcome);
            }
            Effect::Alert(alert) => {
                store
                    .alerts()
                    .record(&device.id, session_id, alert, now)
                    .await?;
                tracing::info!(
                    device.id = %device.id,
                    dm.alert = alert.code,
                    dm.alert_type = alert.alert_type.as_deref().unwrap_or(""),
                    dm.correlator = alert.correlator.as_deref().unwrap_or(""),
                    dm.result_code = alert.result_code,
                    "device alert recorded"
                );
                // A Generic Alert settles the accepted Execs that carried its Correlator.
                if alert.code == 1226
                    && let Some(correlator) = &alert.correlator
                {
                    for (id, state) in store
                        .operations()
                        .record_report(&device.id, correlator, alert.result_code, now)
                        .await?
                    {
                        tracing::info!(device.id = %device.id, operation.id = id, operation.state = state.as_str(), "accepted operation settled by the device's report");
                    }
                }
            }
            Effect::SessionLog(_) => {}
            Effect::SessionEnded { outcome } => {
                summary.end_reason = Some(
                    match outcome {
                        SessionOutcome::Completed => "completed",
                        SessionOutcome::AbortedByDevice => "aborted_by_device",
                        SessionOutcome::AuthenticationFailed => "authentication_failed",
                        SessionOutcome::ServerAuthenticationRejected => "server_auth_rejected",
                    }
                    .to_owned(),
                );
            }
        }
    }
    Ok(summary)
}

/// An outcome that did not apply (the operation had moved on, e.g. cancelled or expired) is
/// worth a warning: the device and the store disagree.
fn note(device: &Device, id: i64, what: &str, outcome: Outcome) {
    match outcome {
        Outcome::Applied(state) => {
            tracing::debug!(device.id = %device.id, operation.id = id, operation.state = state.as_str(), "operation {what} recorded")
        }
        Outcome::Ignored(state) => {
            tracing::warn!(device.id = %device.id, operation.id = id, operation.state = state.as_str(), "device {what} for an operation not awaiting it; ignored")
        }
    }
}

fn not_delivered_reason(reason: &NotDelivered) -> String {
    match reason {
        NotDelivered::TooLargeForDevice => "object larger than the device's MaxObjSize".into(),
        NotDelivered::LargeObjectsUnsupported => "device does not support Large Objects".into(),
        NotDelivered::MessageTooSmall => "device MaxMsgSize too small for the command".into(),
        NotDelivered::LargeObjectFailed { status } => match status {
            Some(s) => format!("Large Object transfer failed with status {}", s.0),
            None => "Large Object transfer interrupted without a status".into(),
        },
        NotDelivered::NoStatus => "device sent no status".into(),
        NotDelivered::SessionAborted => "session aborted".into(),
        NotDelivered::GroupInterrupted { after } => {
            format!("held back: Large Object {after} earlier in its sequence group failed")
        }
    }
}
