//! Update jobs: one device, one target firmware, and everything until a verdict; with the
//! history of their state changes. At most one active job per device.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UpdateJobs {
    Table,
    Id,
    DeviceId,
    TargetFirmwareId,
    Delivery,
    State,
    Machine,
    Version,
    DueAt,
    DeadlineAt,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum UpdateJobHistory {
    Table,
    Id,
    JobId,
    At,
    FromState,
    ToState,
    Note,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Firmware {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UpdateJobs::Table)
                    .col(big_pk_auto(UpdateJobs::Id))
                    .col(string_len(UpdateJobs::DeviceId, 36))
                    .col(big_integer(UpdateJobs::TargetFirmwareId))
                    .col(string_len(UpdateJobs::Delivery, 8))
                    .col(string_len(UpdateJobs::State, 16))
                    // The sans-IO job (`fumo::Job`) as JSON; the columns beside it index it.
                    .col(text(UpdateJobs::Machine))
                    .col(integer(UpdateJobs::Version))
                    .col(timestamp_with_time_zone_null(UpdateJobs::DueAt))
                    .col(timestamp_with_time_zone_null(UpdateJobs::DeadlineAt))
                    .col(timestamp_with_time_zone(UpdateJobs::CreatedAt))
                    .col(timestamp_with_time_zone(UpdateJobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(UpdateJobs::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(UpdateJobs::Table, UpdateJobs::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UpdateJobs::Table, UpdateJobs::TargetFirmwareId)
                            .to(Firmware::Table, Firmware::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_update_jobs_device")
                    .table(UpdateJobs::Table)
                    .col(UpdateJobs::DeviceId)
                    .col(UpdateJobs::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_update_jobs_due")
                    .table(UpdateJobs::Table)
                    .col(UpdateJobs::DueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_update_jobs_deadline")
                    .table(UpdateJobs::Table)
                    .col(UpdateJobs::DeadlineAt)
                    .to_owned(),
            )
            .await?;
        // One active job per device: a partial unique index (same SQL on both databases).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_update_jobs_one_active ON update_jobs (device_id) \
                 WHERE finished_at IS NULL",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UpdateJobHistory::Table)
                    .col(big_pk_auto(UpdateJobHistory::Id))
                    .col(big_integer(UpdateJobHistory::JobId))
                    .col(timestamp_with_time_zone(UpdateJobHistory::At))
                    .col(string_len(UpdateJobHistory::FromState, 16))
                    .col(string_len(UpdateJobHistory::ToState, 16))
                    .col(text(UpdateJobHistory::Note))
                    .foreign_key(
                        ForeignKey::create()
                            .from(UpdateJobHistory::Table, UpdateJobHistory::JobId)
                            .to(UpdateJobs::Table, UpdateJobs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_update_job_history_job")
                    .table(UpdateJobHistory::Table)
                    .col(UpdateJobHistory::JobId)
                    .col(UpdateJobHistory::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UpdateJobHistory::Table.into_iden(),
            UpdateJobs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
