//! Firmware images, signing keys, packages and the package build queue.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Firmware {
    Table,
    Id,
    Manufacturer,
    Model,
    Version,
    Hardware,
    Notes,
    Sha256,
    Size,
    BlobKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Id,
    PublicKey,
    State,
    Origin,
    CreatedAt,
    RetiredAt,
}

#[derive(DeriveIden)]
enum Packages {
    Table,
    Id,
    Kind,
    Origin,
    TargetFirmwareId,
    SourceFirmwareId,
    Manufacturer,
    Model,
    TargetVersion,
    TargetSha256,
    SourceVersion,
    SourceSha256,
    Encoding,
    Manifest,
    BlobKey,
    Size,
    Sha256,
    KeyId,
    JobId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PackageJobs {
    Table,
    Id,
    TargetFirmwareId,
    SourceFirmwareId,
    TargetSha256,
    SourceSha256,
    Format,
    State,
    Attempts,
    Progress,
    Error,
    Outcome,
    LeaseOwner,
    LeaseUntil,
    NextAttemptAt,
    FullPackageId,
    DeltaPackageId,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Firmware::Table)
                    .col(big_pk_auto(Firmware::Id))
                    .col(string_len(Firmware::Manufacturer, 128))
                    .col(string_len(Firmware::Model, 128))
                    .col(string_len(Firmware::Version, 128))
                    .col(text_null(Firmware::Hardware))
                    .col(text_null(Firmware::Notes))
                    .col(string_len(Firmware::Sha256, 64))
                    .col(big_integer(Firmware::Size))
                    .col(string_len(Firmware::BlobKey, 128))
                    .col(timestamp_with_time_zone(Firmware::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_firmware_identity")
                    .table(Firmware::Table)
                    .col(Firmware::Manufacturer)
                    .col(Firmware::Model)
                    .col(Firmware::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_firmware_sha256")
                    .table(Firmware::Table)
                    .col(Firmware::Sha256)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string_len(SigningKeys::Id, 16).primary_key())
                    .col(string_len(SigningKeys::PublicKey, 64))
                    .col(string_len(SigningKeys::State, 16))
                    .col(string_len(SigningKeys::Origin, 16))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await?;
        // At most one key signs new builds. Partial indexes read the same on both databases.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_signing_keys_one_active ON signing_keys (state) \
                 WHERE state = 'active'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PackageJobs::Table)
                    .col(big_pk_auto(PackageJobs::Id))
                    .col(big_integer(PackageJobs::TargetFirmwareId))
                    .col(big_integer_null(PackageJobs::SourceFirmwareId))
                    .col(string_len(PackageJobs::TargetSha256, 64))
                    // '' for a full-image job, so that the idempotency index covers it.
                    .col(string_len(PackageJobs::SourceSha256, 64))
                    .col(string_len(PackageJobs::Format, 16))
                    .col(string_len(PackageJobs::State, 16))
                    .col(integer(PackageJobs::Attempts))
                    .col(integer(PackageJobs::Progress))
                    .col(text_null(PackageJobs::Error))
                    .col(text_null(PackageJobs::Outcome))
                    .col(string_len_null(PackageJobs::LeaseOwner, 64))
                    .col(timestamp_with_time_zone_null(PackageJobs::LeaseUntil))
                    .col(timestamp_with_time_zone(PackageJobs::NextAttemptAt))
                    .col(big_integer_null(PackageJobs::FullPackageId))
                    .col(big_integer_null(PackageJobs::DeltaPackageId))
                    .col(timestamp_with_time_zone(PackageJobs::CreatedAt))
                    .col(timestamp_with_time_zone(PackageJobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(PackageJobs::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PackageJobs::Table, PackageJobs::TargetFirmwareId)
                            .to(Firmware::Table, Firmware::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PackageJobs::Table, PackageJobs::SourceFirmwareId)
                            .to(Firmware::Table, Firmware::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_package_jobs_identity")
                    .table(PackageJobs::Table)
                    .col(PackageJobs::SourceSha256)
                    .col(PackageJobs::TargetSha256)
                    .col(PackageJobs::Format)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_package_jobs_due")
                    .table(PackageJobs::Table)
                    .col(PackageJobs::State)
                    .col(PackageJobs::NextAttemptAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Packages::Table)
                    .col(big_pk_auto(Packages::Id))
                    .col(string_len(Packages::Kind, 8))
                    .col(string_len(Packages::Origin, 8))
                    .col(big_integer_null(Packages::TargetFirmwareId))
                    .col(big_integer_null(Packages::SourceFirmwareId))
                    .col(string_len(Packages::Manufacturer, 128))
                    .col(string_len(Packages::Model, 128))
                    .col(string_len(Packages::TargetVersion, 128))
                    .col(string_len(Packages::TargetSha256, 64))
                    .col(string_len_null(Packages::SourceVersion, 128))
                    .col(string_len_null(Packages::SourceSha256, 64))
                    .col(string_len(Packages::Encoding, 32))
                    .col(text(Packages::Manifest))
                    .col(string_len(Packages::BlobKey, 128))
                    .col(big_integer(Packages::Size))
                    .col(string_len_uniq(Packages::Sha256, 64))
                    .col(string_len(Packages::KeyId, 16))
                    .col(big_integer_null(Packages::JobId))
                    .col(timestamp_with_time_zone(Packages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Packages::Table, Packages::TargetFirmwareId)
                            .to(Firmware::Table, Firmware::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Packages::Table, Packages::SourceFirmwareId)
                            .to(Firmware::Table, Firmware::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_packages_target")
                    .table(Packages::Table)
                    .col(Packages::TargetSha256)
                    .col(Packages::Encoding)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Packages::Table.into_iden(),
            PackageJobs::Table.into_iden(),
            SigningKeys::Table.into_iden(),
            Firmware::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
