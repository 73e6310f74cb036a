//! Alerts devices sent (Generic Alert 1226 with FUMO results, and the others), kept raw.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::StoreError;
use super::entity::device_alert;
use crate::dm::session::AlertRecord;
use sea_orm::{ConnectionTrait, TransactionTrait};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredAlert {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub session_id: Option<String>,
    pub code: i32,
    pub alert_type: Option<String>,
    pub source: Option<String>,
    pub correlator: Option<String>,
    pub format: Option<String>,
    pub mark: Option<String>,
    pub data: Option<String>,
    pub result_code: Option<i32>,
}

pub struct AlertStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> AlertStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        AlertStore { db }
    }

    pub async fn record(
        &self,
        device_id: &str,
        session_id: &str,
        alert: &AlertRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        device_alert::ActiveModel {
            device_id: Set(device_id.to_owned()),
            received_at: Set(now),
            session_id: Set(Some(session_id.to_owned())),
            code: Set(i32::from(alert.code)),
            alert_type: Set(alert.alert_type.clone()),
            source: Set(alert.source.clone()),
            correlator: Set(alert.correlator.clone()),
            format: Set(alert.format.clone()),
            mark: Set(alert.mark.clone()),
            data: Set(alert.data.clone()),
            result_code: Set(alert.result_code.map(|c| c as i32)),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        Ok(())
    }

    /// The device's alerts, newest first, optionally only those with a correlator.
    pub async fn for_device(
        &self,
        device_id: &str,
        correlator: Option<&str>,
        limit: u64,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let mut query = device_alert::Entity::find()
            .filter(device_alert::Column::DeviceId.eq(device_id))
            .order_by_desc(device_alert::Column::Id)
            .limit(limit);
        if let Some(c) = correlator {
            query = query.filter(device_alert::Column::Correlator.eq(c));
        }
        Ok(query
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| StoredAlert {
                id: m.id,
                received_at: m.received_at,
                session_id: m.session_id,
                code: m.code,
                alert_type: m.alert_type,
                source: m.source,
                correlator: m.correlator,
                format: m.format,
                mark: m.mark,
                data: m.data,
                result_code: m.result_code,
            })
            .collect())
    }
}
