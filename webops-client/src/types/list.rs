//! Listing deployments: pagination and the query of `GET deployments/`.

use super::*;

/// Pagination block of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pagination {
    /// This page, from 1.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
    /// Items in all pages.
    pub total: u64,
    /// Number of pages.
    pub total_pages: u32,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where this page is.
    pub pagination: Pagination,
}

impl Pagination {
    /// A pagination block (for tests and alternative [`crate::WebOpsApi`] implementations).
    pub fn new(page: u32, per_page: u32, total: u64) -> Self {
        let total_pages = if per_page == 0 {
            0
        } else {
            u32::try_from(total.div_ceil(u64::from(per_page))).unwrap_or(u32::MAX)
        };
        Pagination {
            page,
            per_page,
            total,
            total_pages,
        }
    }
}

impl<T> Page<T> {
    /// A page of `items` (for tests and alternative [`crate::WebOpsApi`] implementations).
    pub fn new(items: Vec<T>, pagination: Pagination) -> Self {
        Page { items, pagination }
    }
}

/// Query of `GET deployments/`. Every field is optional; `Default` lists the first page.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DeploymentFilter {
    /// Only this status.
    pub status: Option<DeploymentStatus>,
    /// Only this environment.
    pub environment: Option<Environment>,
    /// Only this project type.
    pub project_type: Option<String>,
    /// Substring search on names.
    pub search: Option<String>,
    /// Page number, from 1.
    pub page: Option<u32>,
    /// Items per page, 1..=100 (server default 20).
    pub per_page: Option<u32>,
}

impl DeploymentFilter {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only deployments in `status`.
    pub fn status(mut self, status: DeploymentStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Only deployments in `environment`.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }
    /// Only deployments of `project_type`.
    pub fn project_type(mut self, project_type: impl Into<String>) -> Self {
        self.project_type = Some(project_type.into());
        self
    }
    /// Names containing `search`.
    pub fn search(mut self, search: impl Into<String>) -> Self {
        self.search = Some(search.into());
        self
    }
    /// Page number, from 1.
    pub fn page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }
    /// Items per page, 1..=100.
    pub fn per_page(mut self, per_page: u32) -> Self {
        self.per_page = Some(per_page);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_counts_pages() {
        assert_eq!(Pagination::new(1, 100, 250).total_pages, 3);
        assert_eq!(Pagination::new(1, 20, 0).total_pages, 0);
        assert_eq!(Pagination::new(1, 0, 5).total_pages, 0);
    }
}
