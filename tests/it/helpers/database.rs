//! A fresh database per test: a SQLite file, or a new PostgreSQL database (`UPDRAFT_TEST_DB=postgres`).
//!
//! Every database is built through the migrations by the code under test, never from entities.

use sea_orm::{ConnectionTrait, Database};

use super::under_ci;

pub fn postgres_admin_url() -> String {
    std::env::var("UPDRAFT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub fn testing_postgres() -> bool {
    std::env::var("UPDRAFT_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// A database that exists for one test; PostgreSQL ones are dropped on drop.
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn fresh_database() -> TestDatabase {
    if testing_postgres() {
        fresh_postgres().await
    } else {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        TestDatabase {
            url,
            postgres_name: None,
            _dir: Some(dir),
        }
    }
}

/// A new PostgreSQL database regardless of `UPDRAFT_TEST_DB` (for PostgreSQL-only checks).
pub async fn fresh_postgres() -> TestDatabase {
    let admin_url = postgres_admin_url();
    let admin = match Database::connect(&admin_url).await {
        Ok(db) => db,
        Err(err) => panic!(
            "PostgreSQL is required for this test but {admin_url} is unreachable: {err}{}",
            if under_ci() {
                " (CI=true: a missing service fails the run)"
            } else {
                ""
            }
        ),
    };
    let name = format!("updraft_t_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database part");
    TestDatabase {
        url: format!("{base}/{name}"),
        postgres_name: Some(name),
        _dir: None,
    }
}

impl TestDatabase {
    /// Drops a PostgreSQL test database now, killing its connections (to test outages).
    pub async fn drop_now(&self) {
        if let Some(name) = &self.postgres_name {
            let admin = Database::connect(&postgres_admin_url()).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin.close().await.ok();
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&postgres_admin_url()).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        admin.close().await.ok();
                    }
                });
            })
            .join();
        }
    }
}
