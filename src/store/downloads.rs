//! Download accounting per job key: bytes served (one upsert per response) and the
//! OMA Download install status a device reported.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set};

use super::StoreError;
use super::entity::download_stat::{self, Column, Entity};

/// What a device said in its install notification (OMA-DL 1.0 section 5.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct InstallReport {
    /// The status code, e.g. 900 (success), 902 (user cancelled), 905 (attribute mismatch).
    pub status: u16,
    /// The text after the code, as sent (at most 128 characters).
    pub message: String,
    pub reported_at: DateTime<Utc>,
}

/// The download counters of one job key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DownloadStats {
    pub job_key: String,
    /// The package of the latest response or report.
    pub package_id: i64,
    /// Body bytes sent, over every response (resumed ranges add up).
    pub bytes_served: u64,
    /// Responses that carried body bytes.
    pub responses: u64,
    pub first_served_at: Option<DateTime<Utc>>,
    pub last_served_at: Option<DateTime<Utc>>,
    pub install: Option<InstallReport>,
}

fn to_stats(m: download_stat::Model) -> DownloadStats {
    let install = match (m.install_status, m.install_reported_at) {
        (Some(status), Some(reported_at)) => Some(InstallReport {
            status: u16::try_from(status).unwrap_or(0),
            message: m.install_message.unwrap_or_default(),
            reported_at,
        }),
        _ => None,
    };
    DownloadStats {
        job_key: m.job_key,
        package_id: m.package_id,
        bytes_served: u64::try_from(m.bytes_served).unwrap_or(0),
        responses: u64::try_from(m.responses).unwrap_or(0),
        first_served_at: m.first_served_at,
        last_served_at: m.last_served_at,
        install,
    }
}

pub struct DownloadStore<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> DownloadStore<'a> {
    pub(super) fn new(db: &'a DatabaseConnection) -> Self {
        DownloadStore { db }
    }

    /// Adds one response's body bytes to the job key's counters: a single upsert, so
    /// concurrent responses on any replica add up without a read.
    pub async fn add_served(
        &self,
        job_key: &str,
        package_id: i64,
        bytes: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let row = download_stat::ActiveModel {
            job_key: Set(job_key.to_owned()),
            package_id: Set(package_id),
            bytes_served: Set(bytes),
            responses: Set(1),
            first_served_at: Set(Some(now)),
            last_served_at: Set(Some(now)),
            install_status: Set(None),
            install_message: Set(None),
            install_reported_at: Set(None),
        };
        let on_conflict = OnConflict::column(Column::JobKey)
            .value(Column::PackageId, package_id)
            .value(
                Column::BytesServed,
                Expr::col((Entity, Column::BytesServed)).add(bytes),
            )
            .value(
                Column::Responses,
                Expr::col((Entity, Column::Responses)).add(1),
            )
            .value(
                Column::FirstServedAt,
                Func::coalesce([Expr::col((Entity, Column::FirstServedAt)), Expr::val(now)]),
            )
            .value(Column::LastServedAt, now)
            .to_owned();
        Entity::insert(row)
            .on_conflict(on_conflict)
            .exec_without_returning(self.db)
            .await?;
        Ok(())
    }

    /// Records the latest install notification of a job key (a later one replaces it).
    pub async fn record_install(
        &self,
        job_key: &str,
        package_id: i64,
        status: u16,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let message: String = message.chars().take(128).collect();
        let row = download_stat::ActiveModel {
            job_key: Set(job_key.to_owned()),
            package_id: Set(package_id),
            bytes_served: Set(0),
            responses: Set(0),
            first_served_at: Set(None),
            last_served_at: Set(None),
            install_status: Set(Some(i32::from(status))),
            install_message: Set(Some(message.clone())),
            install_reported_at: Set(Some(now)),
        };
        let on_conflict = OnConflict::column(Column::JobKey)
            .value(Column::PackageId, package_id)
            .value(Column::InstallStatus, i32::from(status))
            .value(Column::InstallMessage, message)
            .value(Column::InstallReportedAt, now)
            .to_owned();
        Entity::insert(row)
            .on_conflict(on_conflict)
            .exec_without_returning(self.db)
            .await?;
        Ok(())
    }

    pub async fn get(&self, job_key: &str) -> Result<Option<DownloadStats>, StoreError> {
        Ok(Entity::find_by_id(job_key)
            .one(self.db)
            .await?
            .map(to_stats))
    }

    /// Bytes served for every update job a campaign started (retried attempts included).
    pub async fn bytes_for_campaign(&self, campaign_id: i64) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(d.bytes_served), 0) AS BIGINT) FROM download_stats d \
             JOIN update_jobs j ON d.job_key = 'update-' || CAST(j.id AS TEXT) \
             WHERE j.campaign_id = {campaign_id}"
        );
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                sql,
            ))
            .await?;
        let total: i64 = match row {
            Some(r) => r.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0),
            None => 0,
        };
        Ok(u64::try_from(total).unwrap_or(0))
    }
}
