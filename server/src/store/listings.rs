//! The `listings` table: each project's last listing of build folders (see
//! [`crate::artifacts::ListingMemory`]), kept so that a restarted deployer serves its first
//! page at once.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// The project's last listing from `source` (the bucket and prefix), as it was saved.
    pub async fn listing(&self, project: &str, source: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT files FROM listings WHERE project = ? AND source = ?"))
                .bind(project)
                .bind(source)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("files")).transpose()?)
    }

    /// Keeps the project's listing (replacing the one before).
    pub async fn save_listing(
        &self,
        project: &str,
        source: &str,
        files: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "INSERT INTO listings (project, source, files, listed_at) VALUES (?, ?, ?, {now})
             ON CONFLICT (project) DO UPDATE SET source = excluded.source, files = excluded.files,
             listed_at = excluded.listed_at",
        ))
        .bind(project)
        .bind(source)
        .bind(files)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::artifacts::ListingMemory for Store {
    async fn recall(&self, project: &str, source: &str) -> Option<String> {
        match self.listing(project, source).await {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(project, error = %e, "could not read the last listing");
                None
            }
        }
    }

    async fn remember(&self, project: &str, source: &str, files: String) {
        if let Err(e) = self.save_listing(project, source, &files).await {
            tracing::warn!(project, error = %e, "could not keep the listing");
        }
    }
}
