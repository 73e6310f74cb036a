//! Firmware records carry a security version (anti-rollback), set at upload and signed into
//! every package built for them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Firmware {
    Table,
    SecurityVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Firmware::Table)
                    .add_column(big_integer(Firmware::SecurityVersion).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Firmware::Table)
                    .drop_column(Firmware::SecurityVersion)
                    .to_owned(),
            )
            .await
    }
}
