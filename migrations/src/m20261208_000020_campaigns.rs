//! Campaigns: the campaign (its spec and the planner's state as JSON, beside the columns the
//! scheduler claims it by), its cohorts and their builds, its members (one row per selected
//! device, with its wave, rank, cohort, exclusion and update job), the counts per (wave,
//! cohort, state) kept incrementally, the event log, and update jobs' link to their campaign.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    Name,
    State,
    Spec,
    Machine,
    Version,
    NextDueAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum CampaignCohorts {
    Table,
    CampaignId,
    Manufacturer,
    Model,
    Version,
    TargetFirmwareId,
    SourceFirmwareId,
    FullJobId,
    DeltaJobId,
    PackageId,
    Devices,
}

#[derive(DeriveIden)]
enum CampaignMembers {
    Table,
    CampaignId,
    DeviceId,
    Wave,
    Rank,
    Manufacturer,
    Model,
    Version,
    Timezone,
    TargetFirmwareId,
    State,
    Exclusion,
    Active,
    JobId,
    ResultCode,
    Failure,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum CampaignCounts {
    Table,
    CampaignId,
    Wave,
    Manufacturer,
    Model,
    Version,
    State,
    N,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    At,
    Kind,
    CampaignId,
    DeviceId,
    Message,
    Data,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UpdateJobs {
    Table,
    CampaignId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Campaigns::Table)
                    .col(big_pk_auto(Campaigns::Id))
                    .col(string_len(Campaigns::Name, 200))
                    .col(string_len(Campaigns::State, 16))
                    // `campaign::Spec` and `campaign::Machine` as JSON.
                    .col(text(Campaigns::Spec))
                    .col(text(Campaigns::Machine))
                    .col(integer(Campaigns::Version))
                    .col(timestamp_with_time_zone_null(Campaigns::NextDueAt))
                    .col(string_len_null(Campaigns::CreatedBy, 128))
                    .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                    .col(timestamp_with_time_zone(Campaigns::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Campaigns::FinishedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_campaigns_due", vec![Campaigns::NextDueAt]),
            ("idx_campaigns_state", vec![Campaigns::State, Campaigns::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Campaigns::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(CampaignCohorts::Table)
                    .col(big_integer(CampaignCohorts::CampaignId))
                    .col(string_len(CampaignCohorts::Manufacturer, 255))
                    .col(string_len(CampaignCohorts::Model, 255))
                    .col(string_len(CampaignCohorts::Version, 255))
                    .col(big_integer_null(CampaignCohorts::TargetFirmwareId))
                    .col(big_integer_null(CampaignCohorts::SourceFirmwareId))
                    .col(big_integer_null(CampaignCohorts::FullJobId))
                    .col(big_integer_null(CampaignCohorts::DeltaJobId))
                    // The package its devices get, once it exists (their start waits for it).
                    .col(big_integer_null(CampaignCohorts::PackageId))
                    .col(big_integer(CampaignCohorts::Devices))
                    .primary_key(
                        Index::create()
                            .col(CampaignCohorts::CampaignId)
                            .col(CampaignCohorts::Manufacturer)
                            .col(CampaignCohorts::Model)
                            .col(CampaignCohorts::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CampaignCohorts::Table, CampaignCohorts::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // No foreign key to devices: a member row is the campaign's record of what happened
        // to a device, and outlives the device.
        manager
            .create_table(
                Table::create()
                    .table(CampaignMembers::Table)
                    .col(big_integer(CampaignMembers::CampaignId))
                    .col(string_len(CampaignMembers::DeviceId, 36))
                    .col(integer_null(CampaignMembers::Wave))
                    .col(big_integer(CampaignMembers::Rank))
                    .col(string_len(CampaignMembers::Manufacturer, 255))
                    .col(string_len(CampaignMembers::Model, 255))
                    .col(string_len(CampaignMembers::Version, 255))
                    .col(string_len_null(CampaignMembers::Timezone, 64))
                    .col(big_integer_null(CampaignMembers::TargetFirmwareId))
                    .col(string_len(CampaignMembers::State, 16))
                    .col(string_len_null(CampaignMembers::Exclusion, 32))
                    .col(boolean(CampaignMembers::Active))
                    .col(big_integer_null(CampaignMembers::JobId))
                    .col(integer_null(CampaignMembers::ResultCode))
                    .col(text_null(CampaignMembers::Failure))
                    .col(timestamp_with_time_zone_null(CampaignMembers::StartedAt))
                    .col(timestamp_with_time_zone_null(CampaignMembers::FinishedAt))
                    .primary_key(
                        Index::create()
                            .col(CampaignMembers::CampaignId)
                            .col(CampaignMembers::DeviceId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CampaignMembers::Table, CampaignMembers::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            // The scheduler's candidates: planned members of a wave, in rank order.
            (
                "idx_campaign_members_plan",
                vec![
                    CampaignMembers::CampaignId,
                    CampaignMembers::State,
                    CampaignMembers::Wave,
                    CampaignMembers::Rank,
                ],
            ),
            // Starts in the trailing minute (per campaign) and second (server-wide).
            (
                "idx_campaign_members_started",
                vec![CampaignMembers::CampaignId, CampaignMembers::StartedAt],
            ),
            (
                "idx_campaign_members_started_any",
                vec![CampaignMembers::StartedAt],
            ),
            ("idx_campaign_members_job", vec![CampaignMembers::JobId]),
            (
                "idx_campaign_members_device",
                vec![CampaignMembers::DeviceId],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(CampaignMembers::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        // A device is in at most one active campaign (same SQL on both databases).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_campaign_members_one_active \
                 ON campaign_members (device_id) WHERE active",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CampaignCounts::Table)
                    .col(big_integer(CampaignCounts::CampaignId))
                    // -1: members excluded at creation, in no wave.
                    .col(integer(CampaignCounts::Wave))
                    .col(string_len(CampaignCounts::Manufacturer, 255))
                    .col(string_len(CampaignCounts::Model, 255))
                    .col(string_len(CampaignCounts::Version, 255))
                    .col(string_len(CampaignCounts::State, 16))
                    .col(big_integer(CampaignCounts::N))
                    .primary_key(
                        Index::create()
                            .col(CampaignCounts::CampaignId)
                            .col(CampaignCounts::Wave)
                            .col(CampaignCounts::Manufacturer)
                            .col(CampaignCounts::Model)
                            .col(CampaignCounts::Version)
                            .col(CampaignCounts::State),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CampaignCounts::Table, CampaignCounts::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // The event log: ordered by id, never updated.
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Id))
                    .col(timestamp_with_time_zone(Events::At))
                    .col(string_len(Events::Kind, 48))
                    .col(big_integer_null(Events::CampaignId))
                    .col(string_len_null(Events::DeviceId, 36))
                    .col(text(Events::Message))
                    .col(text(Events::Data))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_campaign")
                    .table(Events::Table)
                    .col(Events::CampaignId)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;

        // Dynamic campaigns scan the devices changed since their cursor.
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_updated")
                    .table(Devices::Table)
                    .col(Devices::UpdatedAt)
                    .col(Devices::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UpdateJobs::Table)
                    .add_column(big_integer_null(UpdateJobs::CampaignId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_update_jobs_campaign")
                    .table(UpdateJobs::Table)
                    .col(UpdateJobs::CampaignId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_devices_updated")
                    .table(Devices::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_update_jobs_campaign")
                    .table(UpdateJobs::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UpdateJobs::Table)
                    .drop_column(UpdateJobs::CampaignId)
                    .to_owned(),
            )
            .await?;
        for table in [
            Events::Table.into_iden(),
            CampaignCounts::Table.into_iden(),
            CampaignMembers::Table.into_iden(),
            CampaignCohorts::Table.into_iden(),
            Campaigns::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
