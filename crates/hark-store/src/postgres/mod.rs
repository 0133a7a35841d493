//! PostgreSQL behind the repository traits.
