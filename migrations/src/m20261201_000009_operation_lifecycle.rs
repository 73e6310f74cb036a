//! The operation lifecycle: owners, the session row an operation went out in, Generic Alert
//! result codes, the outcome log owners read, staged Large Object results, and the queue index.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DmOperations {
    Table,
    Id,
    DeviceId,
    State,
    Owner,
    SessionRow,
    ResultCode,
    Correlator,
}

#[derive(DeriveIden)]
enum DmOperationEvents {
    Table,
    Id,
    OperationId,
    Owner,
    State,
    StatusCode,
    Detail,
    At,
}

#[derive(DeriveIden)]
enum DmResultChunks {
    Table,
    OperationId,
    Seq,
    Data,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string_len_null(DmOperations::Owner, 128),
            big_integer_null(DmOperations::SessionRow),
            integer_null(DmOperations::ResultCode),
            string_len_null(DmOperations::Correlator, 128),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(DmOperations::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        // The state vocabulary of the lifecycle: a 2xx outcome is `done`.
        db.execute_unprepared("UPDATE dm_operations SET state = 'done' WHERE state = 'succeeded'")
            .await?;
        // The per-message queue read: queued operations of one device, oldest first.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_dm_operations_device_state")
                    .table(DmOperations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dm_operations_queue")
                    .table(DmOperations::Table)
                    .col(DmOperations::DeviceId)
                    .col(DmOperations::State)
                    .col(DmOperations::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dm_operations_session_row")
                    .table(DmOperations::Table)
                    .col(DmOperations::SessionRow)
                    .col(DmOperations::State)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DmOperationEvents::Table)
                    .col(big_pk_auto(DmOperationEvents::Id))
                    .col(big_integer(DmOperationEvents::OperationId))
                    .col(string_len_null(DmOperationEvents::Owner, 128))
                    .col(string_len(DmOperationEvents::State, 16))
                    .col(integer_null(DmOperationEvents::StatusCode))
                    .col(text_null(DmOperationEvents::Detail))
                    .col(timestamp_with_time_zone(DmOperationEvents::At))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DmOperationEvents::Table, DmOperationEvents::OperationId)
                            .to(DmOperations::Table, DmOperations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dm_operation_events_owner")
                    .table(DmOperationEvents::Table)
                    .col(DmOperationEvents::Owner)
                    .col(DmOperationEvents::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DmResultChunks::Table)
                    .col(big_integer(DmResultChunks::OperationId))
                    .col(integer(DmResultChunks::Seq))
                    .col(blob(DmResultChunks::Data))
                    .primary_key(
                        Index::create()
                            .col(DmResultChunks::OperationId)
                            .col(DmResultChunks::Seq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DmResultChunks::Table, DmResultChunks::OperationId)
                            .to(DmOperations::Table, DmOperations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DmResultChunks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DmOperationEvents::Table).to_owned())
            .await?;
        for name in ["idx_dm_operations_session_row", "idx_dm_operations_queue"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(DmOperations::Table)
                        .to_owned(),
                )
                .await?;
        }
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
        let db = manager.get_connection();
        db.execute_unprepared("UPDATE dm_operations SET state = 'succeeded' WHERE state = 'done'")
            .await?;
        for column in [
            DmOperations::Correlator,
            DmOperations::ResultCode,
            DmOperations::SessionRow,
            DmOperations::Owner,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DmOperations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
