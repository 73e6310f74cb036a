//! One atomic step per DM message: a per-device message sequence (the optimistic lock every
//! replica takes before it writes a message's effects), the RespURI opt-out for devices that
//! ignore it, and at most one open session per (device, SessionID).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    MessageSeq,
    IgnoresRespUri,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(big_integer(Devices::MessageSeq).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(boolean(Devices::IgnoresRespUri).default(false))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Sessions left open twice under one id by the old edge: keep the newest open.
        db.execute_unprepared(
            "UPDATE dm_sessions SET ended_at = updated_at, end_reason = 'superseded' \
             WHERE ended_at IS NULL AND id NOT IN \
             (SELECT MAX(id) FROM dm_sessions WHERE ended_at IS NULL GROUP BY device_id, session_id)",
        )
        .await?;
        // A partial unique index: the same statement on SQLite and PostgreSQL. The schema
        // builder cannot express the WHERE clause.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX idx_dm_sessions_one_open \
             ON dm_sessions (device_id, session_id) WHERE ended_at IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_dm_sessions_one_open")
            .await?;
        for column in [Devices::IgnoresRespUri, Devices::MessageSeq] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
