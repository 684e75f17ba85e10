//! Where a callback stands among those on record: the order pages of callbacks follow,
//! and the opaque cursor that names a position in it.

use chrono::{DateTime, Utc};

/// Where a callback stands among those on record, the order of every page: by time
/// received, then the older one-row-per-callback table before the batches, then by
/// row, then by element of a batch's arrays. Two positions never tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct CallbackPosition {
    pub(super) received_at: DateTime<Utc>,
    /// 0: a row of `callbacks`; 1: an element of a `callback_batches` row; -1 only in
    /// [`CallbackPosition::before_time`], before both.
    pub(super) source: i16,
    pub(super) row_id: i64,
    /// The element's place in the batch's arrays, from 1; 0 in `callbacks`.
    pub(super) element: i64,
}

/// The text of a cursor: [`CallbackPosition::cursor`] writes it, and any text of
/// this shape names a position a page may start from (the OpenAPI document's pattern).
pub const CURSOR_PATTERN: &str = r"^cb[0-9]{1,17}\.[01]\.[0-9]{1,18}\.[0-9]{1,18}$";

impl CallbackPosition {
    /// Returns the position just before every callback received at or after `time`.
    pub fn before_time(time: DateTime<Utc>) -> CallbackPosition {
        CallbackPosition {
            received_at: time,
            source: -1,
            row_id: 0,
            element: 0,
        }
    }

    /// Returns the position as an opaque cursor: `cb<micros>.<source>.<row>.<element>`.
    pub fn cursor(&self) -> String {
        format!(
            "cb{}.{}.{}.{}",
            self.received_at.timestamp_micros(),
            self.source,
            self.row_id,
            self.element
        )
    }

    /// Returns the position a cursor names, or `None` for any text not of the shape
    /// [`CURSOR_PATTERN`] describes (whatever its origin: it is request input). Any
    /// position of that shape is a place a page may start from; the counts of digits
    /// keep each number within what Postgres and `i64` hold (17 for the time: year 5138).
    pub fn from_cursor(cursor: &str) -> Option<CallbackPosition> {
        let number = |text: &str, digits: usize| {
            (text.len() <= digits && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<i64>().ok())
                .flatten()
        };
        let mut fields = cursor.strip_prefix("cb")?.split('.');
        let micros = number(fields.next()?, 17)?;
        let source = match fields.next()? {
            "0" => 0,
            "1" => 1,
            _ => return None,
        };
        let row_id = number(fields.next()?, 18)?;
        let element = number(fields.next()?, 18)?;
        if fields.next().is_some() {
            return None;
        }
        Some(CallbackPosition {
            received_at: DateTime::from_timestamp_micros(micros)?,
            source,
            row_id,
            element,
        })
    }
}

/// Which way a page goes from its starting position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Towards {
    /// Oldest first, the callbacks after the position.
    Newer,
    /// Newest first, the callbacks before the position.
    Older,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("a time");
        for position in [
            CallbackPosition {
                received_at: at,
                source: 1,
                row_id: 42,
                element: 3,
            },
            CallbackPosition {
                received_at: at,
                source: 0,
                row_id: 7,
                element: 0,
            },
        ] {
            assert_eq!(
                CallbackPosition::from_cursor(&position.cursor()),
                Some(position)
            );
        }
        let pattern = regex::Regex::new(CURSOR_PATTERN).expect("a pattern");
        for fine in ["cb0.0.0.0", "cb99999999999999999.1.999999999999999999.7"] {
            assert!(pattern.is_match(fine) && CallbackPosition::from_cursor(fine).is_some());
        }
        for bad in [
            "",
            "cb",
            "p12",
            "cb1764000000123456.1.42",
            "cb1764000000123456.1.42.3.4",
            "cb1764000000123456.2.42.3",
            "cb1764000000123456.-1.0.0",
            "cb1764000000123456.01.42.3",
            "cb-1.1.42.3",
            "cb+1.1.42.3",
            "cb1.1. 42.3",
            "cb1.1..3",
            "cb999999999999999999.1.42.3",
            "cb1764000000123456.1.9223372036854775807.3",
            "cb1764000000123456.1.42.3\n",
        ] {
            assert!(!pattern.is_match(bad), "{bad}");
            assert_eq!(CallbackPosition::from_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn positions_order_by_time_then_table_then_row_then_element() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_000_000).expect("a time");
        let position = |source, row_id, element| CallbackPosition {
            received_at: at,
            source,
            row_id,
            element,
        };
        let later = CallbackPosition {
            received_at: at + chrono::Duration::microseconds(1),
            ..position(0, 1, 0)
        };
        let mut positions = vec![
            later,
            position(1, 2, 1),
            position(1, 1, 2),
            position(0, 9, 0),
            CallbackPosition::before_time(at),
        ];
        positions.sort();
        assert_eq!(
            positions,
            [
                CallbackPosition::before_time(at),
                position(0, 9, 0),
                position(1, 1, 2),
                position(1, 2, 1),
                later
            ]
        );
    }
}
