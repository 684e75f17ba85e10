//! Domain types: everything past the HTTP edge works with these, never with raw strings.

mod job_state;
mod kind;
mod merchants;
mod payment_id;
mod status;

pub use job_state::JobState;
pub use kind::PaymentKind;
pub use merchants::Merchants;
pub use payment_id::{PaymentId, PaymentIdError};
pub use status::PaymentStatus;

/// The largest callback body the platform may send us and we keep (64 KiB): larger
/// ones are refused at the edge, and pages of callbacks are sized by it.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// Lets a domain type with `FromStr` and `as_str` be read straight from a `text`
/// column (and a `text[]` one, as a `Vec`), and bound as one, so rows decode into
/// domain types rather than strings compared by hand.
///
/// A stored value the type refuses (an id that no longer parses) fails the read with
/// sqlx's `ColumnDecode` error naming the column, never a panic: the request or job
/// reading it fails visibly (an opaque 500, the cause logged) rather than the row
/// being skipped, since a list or feed that silently drops rows would lie.
macro_rules! text_column {
    ($t:ty) => {
        impl sqlx::Type<sqlx::Postgres> for $t {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }
        impl sqlx::postgres::PgHasArrayType for $t {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
            fn array_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::postgres::PgHasArrayType>::array_compatible(ty)
            }
        }
        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $t {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                raw.parse::<$t>().map_err(Into::into)
            }
        }
        impl sqlx::Encode<'_, sqlx::Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}
pub(crate) use text_column;

text_column!(PaymentKind);
text_column!(PaymentStatus);

/// The OpenAPI schema of a string that takes one of `values`.
pub(crate) fn string_enum(
    values: &[&str],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .into()
}
