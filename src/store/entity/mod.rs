//! sea-orm entities, one file per table; they mirror `migrations/` and never create schema.

pub mod api_token;
