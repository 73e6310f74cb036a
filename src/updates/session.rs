//! The DM-session side of update jobs. For each device message the edge asks [`Updates::plan`]
//! what the message told the device's active job (its FwV, the FUMO node, Statuses of the
//! job's commands, its Generic Alert report); the job steps on those facts, and
//! [`Updates::commit_plan`] stores the step and queues its commands inside the message's
//! transaction, so that the reply being built can already carry them.

use chrono::{DateTime, Utc};

use super::Updates;
use crate::dm::message::Format;
use crate::dm::session::{
    BlobRef, Effect, NotDelivered, Operation, QueuedOperation, Value, ValueData,
};
use crate::fumo::job::parse_correlator;
use crate::fumo::{Action, Event, Job, Mode, Purpose, Reported, Step, commands, discover};
use crate::store::{Device, NewOperation, OperationState, StoreError, Tx, UpdateJobRecord};

/// A job's step decided on one message, to commit with it.
pub struct Plan {
    pub record: UpdateJobRecord,
    pub job: Job,
    pub step: Step,
}

/// The owner tag of a job's operation: `update_job:<id>:<attempt>:<purpose>`.
pub fn owner(job: &Job, purpose: Purpose) -> String {
    format!(
        "update_job:{}:{}:{}",
        job.id,
        job.attempt,
        purpose_name(purpose)
    )
}

fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::ReadFwV => "fwv",
        Purpose::Discover => "discover",
        Purpose::ReadState => "state",
        Purpose::PkgUrl => "pkgurl",
        Purpose::PkgData => "pkgdata",
        Purpose::Exec => "exec",
    }
}

fn parse_owner(owner: &str) -> Option<(i64, u32, Purpose)> {
    let mut parts = owner.strip_prefix("update_job:")?.split(':');
    let id = parts.next()?.parse().ok()?;
    let attempt = parts.next()?.parse().ok()?;
    let purpose = match parts.next()? {
        "fwv" => Purpose::ReadFwV,
        "discover" => Purpose::Discover,
        "state" => Purpose::ReadState,
        "pkgurl" => Purpose::PkgUrl,
        "pkgdata" => Purpose::PkgData,
        "exec" => Purpose::Exec,
        _ => return None,
    };
    Some((id, attempt, purpose))
}

/// Steps `job` on one event and gathers what it did into `step`.
fn absorb(
    step: &mut Step,
    job: &mut Job,
    now_ms: i64,
    policy: &crate::fumo::Policy,
    event: Event<'_>,
) {
    let s = job.on(event, now_ms, policy);
    step.actions.extend(s.actions);
    step.transitions.extend(s.transitions);
}

fn is_firmware_alert(alert_type: Option<&str>) -> bool {
    // Lenient (brief 5.5): with or without `.dm`, any of the three result types.
    alert_type.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("firmwareupdate.")
            && (t.ends_with(".download")
                || t.ends_with(".update")
                || t.ends_with(".downloadandupdate"))
    })
}

impl Updates {
    /// The device's active job, if any.
    pub async fn active_job(&self, device_id: &str) -> Result<Option<UpdateJobRecord>, StoreError> {
        self.store.update_jobs().active_for_device(device_id).await
    }

    /// Steps `record`'s job on the facts of one message (reads only; nothing is written).
    pub async fn plan(
        &self,
        device: &Device,
        record: UpdateJobRecord,
        first_message: bool,
        effects: &[Effect],
        session_over: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Plan>, StoreError> {
        let mut job = record.job.clone();
        let policy = self.policy();
        let now_ms = now.timestamp_millis();
        let mut step = Step::default();
        if first_message {
            absorb(&mut step, &mut job, now_ms, &policy, Event::SessionOpened);
        }
        // DevInfo of this message, if it came (Package 1 carries it).
        let mut man = device.inventory.manufacturer.clone();
        let mut model = device.inventory.model.clone();
        for e in effects {
            if let Effect::Inventory { uri, value } = e {
                match uri.as_str() {
                    "./DevInfo/Man" => man = Some(value.clone()),
                    "./DevInfo/Mod" => model = Some(value.clone()),
                    _ => {}
                }
            }
        }
        let mut discovery_answered = 0usize;
        let mut discovered = None;
        for e in effects {
            match e {
                Effect::Alert(a) if a.code == 1226 => {
                    let ours = match a.correlator.as_deref() {
                        // Another Correlator (an operator's own Exec, an earlier attempt) is
                        // not this attempt's report.
                        Some(c) => parse_correlator(c)
                            .is_some_and(|(id, attempt)| id == job.id && attempt == job.attempt),
                        // No Correlator: a FUMO result alert while one is awaited is ours.
                        None => is_firmware_alert(a.alert_type.as_deref()),
                    };
                    if ours {
                        absorb(
                            &mut step,
                            &mut job,
                            now_ms,
                            &policy,
                            Event::Report {
                                code: a.result_code,
                                alert_type: a.alert_type.as_deref(),
                            },
                        );
                    }
                }
                Effect::OperationStatus { op_id, status } => {
                    if let Some(purpose) = self.our_purpose(&job, op_id).await? {
                        if purpose == Purpose::Discover {
                            if !(200..300).contains(&status.0) {
                                discovery_answered += 1;
                            }
                            continue;
                        }
                        absorb(
                            &mut step,
                            &mut job,
                            now_ms,
                            &policy,
                            Event::Status {
                                purpose,
                                code: status.0,
                            },
                        );
                    }
                }
                Effect::OperationResults { op_id, items } => {
                    match self.our_purpose(&job, op_id).await? {
                        Some(Purpose::ReadFwV) => {
                            let version = items
                                .first()
                                .map(|i| String::from_utf8_lossy(&i.data).trim().to_owned())
                                .unwrap_or_default();
                            let choice = self
                                .choose_package(
                                    &record,
                                    &job,
                                    man.as_deref(),
                                    model.as_deref(),
                                    &version,
                                )
                                .await?;
                            absorb(
                                &mut step,
                                &mut job,
                                now_ms,
                                &policy,
                                Event::FwV {
                                    version: &version,
                                    choice,
                                },
                            );
                        }
                        Some(Purpose::Discover) => {
                            discovery_answered += 1;
                            let uris = discover::uris_from_results(items.iter().map(|i| {
                                (
                                    i.uri.as_str(),
                                    std::str::from_utf8(&i.data).ok().filter(|t| !t.is_empty()),
                                )
                            }));
                            if discovered.is_none() {
                                discovered = discover::find_fumo_node(&uris);
                            }
                        }
                        Some(Purpose::ReadState) => {
                            let text = items
                                .first()
                                .map(|i| String::from_utf8_lossy(&i.data).trim().to_owned())
                                .unwrap_or_default();
                            if let Ok(code) = text.parse() {
                                absorb(&mut step, &mut job, now_ms, &policy, Event::State(code));
                            }
                        }
                        _ => {}
                    }
                }
                Effect::OperationNotDelivered { op_id, reason, .. } => {
                    if let Some(purpose) = self.our_purpose(&job, op_id).await? {
                        let maybe_executed = matches!(
                            reason,
                            NotDelivered::NoStatus | NotDelivered::SessionAborted
                        );
                        let why = format!("{reason:?}");
                        absorb(
                            &mut step,
                            &mut job,
                            now_ms,
                            &policy,
                            Event::NotDelivered {
                                purpose,
                                reason: &why,
                                maybe_executed,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        if let Some(node) = discovered {
            absorb(
                &mut step,
                &mut job,
                now_ms,
                &policy,
                Event::Discovered(Some(node)),
            );
        } else if discovery_answered > 0 && discovery_answered >= self.config.fumo_roots.len() {
            absorb(
                &mut step,
                &mut job,
                now_ms,
                &policy,
                Event::Discovered(None),
            );
        }
        // The session ends with this reply unless the job just queued more for it; then the
        // job's commands sent in this session and not answered in this message expire with it.
        let queues_more = step.actions.iter().any(|a| {
            matches!(
                a,
                Action::Read { .. }
                    | Action::Discover
                    | Action::Deliver { .. }
                    | Action::ExecUpdate { .. }
            )
        });
        if session_over && !queues_more {
            let answered: Vec<&str> = effects
                .iter()
                .filter_map(|e| match e {
                    Effect::OperationStatus { op_id, .. }
                    | Effect::OperationResults { op_id, .. }
                    | Effect::OperationNotDelivered { op_id, .. } => Some(op_id.as_str()),
                    _ => None,
                })
                .collect();
            for op in self.owned(&job).await? {
                if op.state == OperationState::Sent
                    && !answered.contains(&op.id.to_string().as_str())
                    && let Some((_, _, purpose)) = op.owner.as_deref().and_then(parse_owner)
                {
                    absorb(
                        &mut step,
                        &mut job,
                        now_ms,
                        &policy,
                        Event::NotDelivered {
                            purpose,
                            reason: "the session ended without a Status",
                            maybe_executed: true,
                        },
                    );
                }
            }
        }
        if step.transitions.is_empty() && step.actions.is_empty() && job == record.job {
            return Ok(None);
        }
        Ok(Some(Plan { record, job, step }))
    }

    /// Stores the step in the message's transaction and queues its commands; returns them as
    /// the engine takes them, so the reply being built can carry them.
    pub async fn commit_plan(
        &self,
        tx: &Tx,
        device: &Device,
        plan: Plan,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        tx.update_jobs()
            .save(
                plan.record.id,
                plan.record.version,
                &plan.job,
                &plan.step.transitions,
                now,
            )
            .await?;
        for t in &plan.step.transitions {
            tracing::info!(update.id = plan.record.id, device.id = %device.id, from = t.from.as_str(), to = t.to.as_str(), note = %t.note, "update job step");
        }
        let mut queued = Vec::new();
        let record = UpdateJobRecord {
            job: plan.job.clone(),
            ..plan.record
        };
        for action in &plan.step.actions {
            match action {
                Action::Notify => {
                    self.notifier.queue_in(tx, device, now).await?;
                }
                other => queued.extend(self.queue(tx, &record, other, now).await?),
            }
        }
        Ok(queued)
    }

    /// Queues the DM operations of one action; returns them as queue entries.
    pub(crate) async fn queue(
        &self,
        tx: &Tx,
        record: &UpdateJobRecord,
        action: &Action,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        let job = &record.job;
        let group = Some(job.correlator());
        let ops: Vec<(Operation, Purpose, Option<String>)> = match action {
            Action::Read { purpose, uri } => {
                vec![(Operation::Get { uri: uri.clone() }, *purpose, None)]
            }
            Action::Discover => self
                .config
                .fumo_roots
                .iter()
                .map(|root| {
                    (
                        Operation::Get {
                            uri: discover::list_struct_uri(root),
                        },
                        Purpose::Discover,
                        None,
                    )
                })
                .collect(),
            Action::Deliver {
                node,
                mode,
                package_id,
                correlator,
            } => match mode {
                Mode::Url | Mode::UrlTwoStep => {
                    let ttl = job
                        .deadline_ms
                        .map(|d| (d - now.timestamp_millis()).max(60_000) as u64)
                        .map(|ms| {
                            std::time::Duration::from_millis(
                                ms.min(self.downloads.max_link_ttl_ms()),
                            )
                        });
                    let link = self
                        .downloads
                        .mint(&super::download_job_key(record.id), *package_id, ttl, now)
                        .map_err(|e| StoreError::Conflict(format!("download link: {e}")))?;
                    let mut ops = commands::url_delivery(node, *mode, &link.url, correlator);
                    let exec = ops.pop().expect("an Exec");
                    let replace = ops.pop().expect("a Replace");
                    vec![
                        (replace, Purpose::PkgUrl, group.clone()),
                        (exec, Purpose::Exec, group.clone()),
                    ]
                }
                Mode::Inline => {
                    let package = tx
                        .packages()
                        .get(*package_id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let replace = Operation::Replace {
                        uri: commands::pkg_data_uri(node),
                        value: Value {
                            format: Format::Bin,
                            mime_type: Some("application/octet-stream".into()),
                            data: ValueData::Blob(BlobRef {
                                key: package.blob_key.clone(),
                                size: package.size,
                            }),
                        },
                    };
                    vec![
                        (replace, Purpose::PkgData, group.clone()),
                        (
                            commands::exec_update(node, correlator),
                            Purpose::Exec,
                            group.clone(),
                        ),
                    ]
                }
            },
            Action::ExecUpdate { node, correlator } => {
                vec![(commands::exec_update(node, correlator), Purpose::Exec, None)]
            }
            Action::CancelQueued => {
                for op in self.owned_in(tx, job).await? {
                    if op.state == OperationState::Queued {
                        let _ = tx.operations().cancel(op.id, now).await?;
                    }
                }
                Vec::new()
            }
            Action::Notify => Vec::new(),
        };
        let mut out = Vec::new();
        for (operation, purpose, sequence_group) in ops {
            let rec = tx
                .operations()
                .enqueue_new(
                    NewOperation {
                        device_id: &record.device_id,
                        operation: &operation,
                        sequence_group: sequence_group.clone(),
                        owner: Some(owner(job, purpose)),
                    },
                    now,
                )
                .await?;
            out.push(QueuedOperation {
                id: rec.id.to_string(),
                operation,
                sequence_group,
            });
        }
        Ok(out)
    }

    async fn our_purpose(&self, job: &Job, op_id: &str) -> Result<Option<Purpose>, StoreError> {
        let Ok(id) = op_id.parse::<i64>() else {
            return Ok(None);
        };
        let Some(op) = self.store.operations().get(id).await? else {
            return Ok(None);
        };
        Ok(op
            .owner
            .as_deref()
            .and_then(parse_owner)
            .filter(|(jid, attempt, _)| *jid == job.id && *attempt == job.attempt)
            .map(|(_, _, p)| p))
    }

    async fn owned(&self, job: &Job) -> Result<Vec<crate::store::OperationRecord>, StoreError> {
        self.store
            .operations()
            .owned_by(&format!("update_job:{}:{}:", job.id, job.attempt))
            .await
    }

    async fn owned_in(
        &self,
        tx: &Tx,
        job: &Job,
    ) -> Result<Vec<crate::store::OperationRecord>, StoreError> {
        tx.operations()
            .owned_by(&format!("update_job:{}:", job.id))
            .await
    }

    async fn choose_package(
        &self,
        record: &UpdateJobRecord,
        job: &Job,
        man: Option<&str>,
        model: Option<&str>,
        version: &str,
    ) -> Result<crate::fumo::Choice, StoreError> {
        let firmware = self
            .store
            .firmware()
            .get(record.target_firmware_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        super::choose_package(
            &self.store,
            &firmware,
            &job.target_version,
            Reported {
                manufacturer: man,
                model,
                fw_version: version,
            },
        )
        .await
    }
}
