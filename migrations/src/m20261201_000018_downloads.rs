//! Device-facing downloads: bytes served and the OMA Download install status, per job key.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DownloadStats {
    Table,
    JobKey,
    PackageId,
    BytesServed,
    Responses,
    FirstServedAt,
    LastServedAt,
    InstallStatus,
    InstallMessage,
    InstallReportedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign keys: the job key is the future update job's id or an operator
        // link's own key, and the row must outlive a deleted package for the audit.
        manager
            .create_table(
                Table::create()
                    .table(DownloadStats::Table)
                    .col(string_len(DownloadStats::JobKey, 64).primary_key())
                    .col(big_integer(DownloadStats::PackageId))
                    .col(big_integer(DownloadStats::BytesServed))
                    .col(big_integer(DownloadStats::Responses))
                    .col(timestamp_with_time_zone_null(DownloadStats::FirstServedAt))
                    .col(timestamp_with_time_zone_null(DownloadStats::LastServedAt))
                    .col(integer_null(DownloadStats::InstallStatus))
                    .col(string_len_null(DownloadStats::InstallMessage, 128))
                    .col(timestamp_with_time_zone_null(
                        DownloadStats::InstallReportedAt,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DownloadStats::Table).to_owned())
            .await
    }
}
