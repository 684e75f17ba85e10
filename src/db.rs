//! What a database error means for the row that caused it.

/// Returns the SQLSTATE when Postgres refused the *data* of a statement (a data
/// exception, an integrity or a program-limit violation): the same rows would be
/// refused again, while other rows would not. `None` for everything else
/// (connection lost, timeouts, the server shutting down), which may pass on retry.
pub fn refused_data(e: &sqlx::Error) -> Option<String> {
    let code = e.as_database_error()?.code()?;
    matches!(&code[..2], "22" | "23" | "54").then(|| code.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_database_answers_about_data_count() {
        assert_eq!(refused_data(&sqlx::Error::PoolTimedOut), None);
        assert_eq!(refused_data(&sqlx::Error::RowNotFound), None);
    }
}
