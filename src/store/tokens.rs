//! Admin API tokens in the database: insert, look up by digest, bootstrap, revoke.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};

use super::StoreError;
use super::entity::api_token;
use crate::access::Role;
use sea_orm::{ConnectionTrait, TransactionTrait};

/// A token as the rest of the service sees it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<api_token::Model> for ApiToken {
    type Error = StoreError;

    fn try_from(m: api_token::Model) -> Result<Self, StoreError> {
        let role = m.role.parse().map_err(|e: crate::access::UnknownRole| {
            StoreError::Database(sea_orm::DbErr::Type(e.to_string()))
        })?;
        Ok(ApiToken {
            id: m.id,
            name: m.name,
            role,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        })
    }
}

pub struct TokenStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> TokenStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        TokenStore { db }
    }

    /// Stores a new token; `Conflict` when the name or the digest is taken.
    pub async fn insert(
        &self,
        name: &str,
        role: Role,
        sha256_hex: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiToken, StoreError> {
        let model = api_token::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name.to_owned()),
            role: Set(role.as_str().to_owned()),
            token_sha256: Set(sha256_hex.to_owned()),
            created_at: Set(now),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(self.db)
        .await?;
        model.try_into()
    }

    /// Makes the token named `name` carry this digest and role (the bootstrap token
    /// from `UPDRAFT_ADMIN_TOKEN`: changing the variable replaces the old value).
    pub async fn upsert_named(
        &self,
        name: &str,
        role: Role,
        sha256_hex: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiToken, StoreError> {
        let existing = api_token::Entity::find()
            .filter(api_token::Column::Name.eq(name))
            .one(self.db)
            .await?;
        match existing {
            None => self.insert(name, role, sha256_hex, now).await,
            Some(m)
                if m.token_sha256 == sha256_hex
                    && m.role == role.as_str()
                    && m.revoked_at.is_none() =>
            {
                m.try_into()
            }
            Some(m) => {
                let mut active: api_token::ActiveModel = m.into();
                active.role = Set(role.as_str().to_owned());
                active.token_sha256 = Set(sha256_hex.to_owned());
                active.revoked_at = Set(None);
                active.update(self.db).await?.try_into()
            }
        }
    }

    /// The live (not revoked) token with this digest.
    pub async fn find_active(&self, sha256_hex: &str) -> Result<Option<ApiToken>, StoreError> {
        api_token::Entity::find()
            .filter(api_token::Column::TokenSha256.eq(sha256_hex))
            .filter(api_token::Column::RevokedAt.is_null())
            .one(self.db)
            .await?
            .map(TryInto::try_into)
            .transpose()
    }

    pub async fn touch(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        api_token::Entity::update_many()
            .col_expr(
                api_token::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_token::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }

    pub async fn revoke(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let result = api_token::Entity::update_many()
            .col_expr(
                api_token::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_token::Column::Id.eq(id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every token, newest first.
    pub async fn list(&self) -> Result<Vec<ApiToken>, StoreError> {
        api_token::Entity::find()
            .order_by_desc(api_token::Column::CreatedAt)
            .all(self.db)
            .await?
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }

    pub async fn count(&self) -> Result<u64, StoreError> {
        Ok(api_token::Entity::find().count(self.db).await?)
    }
}
