//! Devices and their OMA DM state: credentials and nonces, inventory, tree snapshot,
//! sessions (state and log), the management-operation queue, alerts and Package 0 notifications.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    DevId,
    Msisdn,
    ClientAuthType,
    ClientName,
    ClientSecretHash,
    ClientNonce,
    ServerAuthType,
    ServerName,
    ServerSecretHash,
    ServerSecretSealed,
    ServerNonce,
    PushUrl,
    LargeObjects,
    MaxObjSize,
    MaxMsgSize,
    Manufacturer,
    Model,
    FwVersion,
    SwVersion,
    HwVersion,
    Lang,
    DmVersion,
    CreatedAt,
    UpdatedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum DeviceNodes {
    Table,
    DeviceId,
    Uri,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DmSessions {
    Table,
    Id,
    DeviceId,
    SessionId,
    State,
    Version,
    Encoding,
    AuthOutcome,
    Messages,
    BytesIn,
    BytesOut,
    EndReason,
    StartedAt,
    UpdatedAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum DmOperations {
    Table,
    Id,
    DeviceId,
    Operation,
    SequenceGroup,
    State,
    StatusCode,
    Results,
    Failure,
    SessionId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeviceAlerts {
    Table,
    Id,
    DeviceId,
    ReceivedAt,
    SessionId,
    Code,
    AlertType,
    Source,
    Correlator,
    Format,
    Mark,
    Data,
    ResultCode,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    DeviceId,
    SessionId,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(string_len(Devices::Id, 36).primary_key())
                    .col(string_len_uniq(Devices::DevId, 256))
                    .col(string_len_null(Devices::Msisdn, 32))
                    .col(string_len(Devices::ClientAuthType, 8))
                    .col(string_len(Devices::ClientName, 256))
                    .col(string_len(Devices::ClientSecretHash, 64))
                    .col(string_len_null(Devices::ClientNonce, 128))
                    .col(string_len(Devices::ServerAuthType, 8))
                    .col(string_len(Devices::ServerName, 256))
                    .col(string_len(Devices::ServerSecretHash, 64))
                    .col(text_null(Devices::ServerSecretSealed))
                    .col(string_len_null(Devices::ServerNonce, 128))
                    .col(text_null(Devices::PushUrl))
                    .col(boolean_null(Devices::LargeObjects))
                    .col(big_integer_null(Devices::MaxObjSize))
                    .col(big_integer_null(Devices::MaxMsgSize))
                    .col(text_null(Devices::Manufacturer))
                    .col(text_null(Devices::Model))
                    .col(text_null(Devices::FwVersion))
                    .col(text_null(Devices::SwVersion))
                    .col(text_null(Devices::HwVersion))
                    .col(text_null(Devices::Lang))
                    .col(text_null(Devices::DmVersion))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone(Devices::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Devices::LastSeenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_model_fw")
                    .table(Devices::Table)
                    .col(Devices::Model)
                    .col(Devices::FwVersion)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeviceNodes::Table)
                    .col(string_len(DeviceNodes::DeviceId, 36))
                    .col(string_len(DeviceNodes::Uri, 1024))
                    .col(text(DeviceNodes::Value))
                    .col(timestamp_with_time_zone(DeviceNodes::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(DeviceNodes::DeviceId)
                            .col(DeviceNodes::Uri),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeviceNodes::Table, DeviceNodes::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DmSessions::Table)
                    .col(big_pk_auto(DmSessions::Id))
                    .col(string_len(DmSessions::DeviceId, 36))
                    .col(string_len(DmSessions::SessionId, 64))
                    .col(text(DmSessions::State))
                    .col(integer(DmSessions::Version))
                    .col(string_len(DmSessions::Encoding, 8))
                    .col(string_len(DmSessions::AuthOutcome, 32))
                    .col(integer(DmSessions::Messages))
                    .col(big_integer(DmSessions::BytesIn))
                    .col(big_integer(DmSessions::BytesOut))
                    .col(string_len_null(DmSessions::EndReason, 64))
                    .col(timestamp_with_time_zone(DmSessions::StartedAt))
                    .col(timestamp_with_time_zone(DmSessions::UpdatedAt))
                    .col(timestamp_with_time_zone_null(DmSessions::EndedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DmSessions::Table, DmSessions::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dm_sessions_device_session")
                    .table(DmSessions::Table)
                    .col(DmSessions::DeviceId)
                    .col(DmSessions::SessionId)
                    .col(DmSessions::StartedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DmOperations::Table)
                    .col(big_pk_auto(DmOperations::Id))
                    .col(string_len(DmOperations::DeviceId, 36))
                    .col(text(DmOperations::Operation))
                    .col(string_len_null(DmOperations::SequenceGroup, 64))
                    .col(string_len(DmOperations::State, 16))
                    .col(integer_null(DmOperations::StatusCode))
                    .col(text_null(DmOperations::Results))
                    .col(text_null(DmOperations::Failure))
                    .col(string_len_null(DmOperations::SessionId, 64))
                    .col(timestamp_with_time_zone(DmOperations::CreatedAt))
                    .col(timestamp_with_time_zone(DmOperations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DmOperations::Table, DmOperations::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dm_operations_device_state")
                    .table(DmOperations::Table)
                    .col(DmOperations::DeviceId)
                    .col(DmOperations::State)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeviceAlerts::Table)
                    .col(big_pk_auto(DeviceAlerts::Id))
                    .col(string_len(DeviceAlerts::DeviceId, 36))
                    .col(timestamp_with_time_zone(DeviceAlerts::ReceivedAt))
                    .col(string_len_null(DeviceAlerts::SessionId, 64))
                    .col(integer(DeviceAlerts::Code))
                    .col(text_null(DeviceAlerts::AlertType))
                    .col(text_null(DeviceAlerts::Source))
                    .col(text_null(DeviceAlerts::Correlator))
                    .col(text_null(DeviceAlerts::Format))
                    .col(text_null(DeviceAlerts::Mark))
                    .col(text_null(DeviceAlerts::Data))
                    .col(integer_null(DeviceAlerts::ResultCode))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeviceAlerts::Table, DeviceAlerts::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_device_alerts_device")
                    .table(DeviceAlerts::Table)
                    .col(DeviceAlerts::DeviceId)
                    .col(DeviceAlerts::ReceivedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(big_pk_auto(Notifications::Id))
                    .col(string_len(Notifications::DeviceId, 36))
                    .col(integer(Notifications::SessionId))
                    .col(string_len(Notifications::State, 16))
                    .col(integer(Notifications::Attempts))
                    .col(timestamp_with_time_zone(Notifications::NextAttemptAt))
                    .col(text_null(Notifications::LastError))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone(Notifications::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_due")
                    .table(Notifications::Table)
                    .col(Notifications::State)
                    .col(Notifications::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notifications::Table.into_iden(),
            DeviceAlerts::Table.into_iden(),
            DmOperations::Table.into_iden(),
            DmSessions::Table.into_iden(),
            DeviceNodes::Table.into_iden(),
            Devices::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
