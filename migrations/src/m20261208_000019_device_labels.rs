//! Devices at fleet scale: a time zone per device, tags (key=value labels), static groups,
//! and the indexes that selectors over a million devices need.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    Timezone,
    Manufacturer,
    FwVersion,
}

#[derive(DeriveIden)]
enum DeviceTags {
    Table,
    DeviceId,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum DeviceGroups {
    Table,
    DeviceId,
    Name,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // An IANA zone name (`Europe/Paris`); the longest today is 32 characters.
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(string_len_null(Devices::Timezone, 64))
                    .to_owned(),
            )
            .await?;
        // `(model, fw_version)` exists since the devices migration; these serve selectors by
        // manufacturer alone and by version alone.
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_manufacturer")
                    .table(Devices::Table)
                    .col(Devices::Manufacturer)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_fw_version")
                    .table(Devices::Table)
                    .col(Devices::FwVersion)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeviceTags::Table)
                    .col(string_len(DeviceTags::DeviceId, 36))
                    .col(string_len(DeviceTags::Key, 64))
                    .col(string_len(DeviceTags::Value, 256))
                    .primary_key(
                        Index::create()
                            .col(DeviceTags::DeviceId)
                            .col(DeviceTags::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeviceTags::Table, DeviceTags::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // (key, value) finds the devices carrying a tag; the device id last makes the index
        // cover the selector's EXISTS, so the table itself is not read.
        manager
            .create_index(
                Index::create()
                    .name("idx_device_tags_key_value")
                    .table(DeviceTags::Table)
                    .col(DeviceTags::Key)
                    .col(DeviceTags::Value)
                    .col(DeviceTags::DeviceId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeviceGroups::Table)
                    .col(string_len(DeviceGroups::DeviceId, 36))
                    .col(string_len(DeviceGroups::Name, 64))
                    .primary_key(
                        Index::create()
                            .col(DeviceGroups::DeviceId)
                            .col(DeviceGroups::Name),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeviceGroups::Table, DeviceGroups::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_device_groups_name")
                    .table(DeviceGroups::Table)
                    .col(DeviceGroups::Name)
                    .col(DeviceGroups::DeviceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DeviceGroups::Table.into_iden(),
            DeviceTags::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for index in ["idx_devices_fw_version", "idx_devices_manufacturer"] {
            manager
                .drop_index(Index::drop().name(index).table(Devices::Table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .drop_column(Devices::Timezone)
                    .to_owned(),
            )
            .await
    }
}
