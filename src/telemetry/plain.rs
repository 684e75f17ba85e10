//! Text log lines without colours, byte for byte as tracing-subscriber's default text
//! format writes them (`Format<Full>` with `DefaultFields`), minus its styling calls.
//!
//! Without colours, the default format still passes the span names, the target, the
//! braces, the colons and every field name through `nu_ansi_term`'s `Display` with a
//! plain style: about 5,000 instructions of each callback's 80,000 in paymirror's
//! process (`scripts/callback-instructions.sh`, BENCHMARKS.md stop 30), spent writing
//! nothing but the text itself. These write the same text directly, and take the
//! cheap way where the text allows it: a message escaped a piece at a time rather than
//! a character at a time, text fields of plain ASCII and latencies in milliseconds
//! written as they are. What is not plain — errors, `r#` field names, and any line for
//! a coloured writer (a terminal) — is left to tracing's own formatter, so one format
//! serves both. The tests compare the two formats byte for byte.

use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::{RecordFields, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields as `DefaultFields` writes them: `name=value` by `Debug`, space-separated.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

thread_local! {
    /// Where fields are written before they are copied out in one piece.
    static SCRATCH: RefCell<String> = RefCell::new(String::with_capacity(256));
}

impl<'writer> FormatFields<'writer> for PlainFields {
    /// A span's fields go to a string of their own, which tracing starts empty: written
    /// a field at a time it grew, and moved, five times for a request's span. They are
    /// written to a buffer kept by the thread and copied out at once. A writer that
    /// colours or does not sanitize is written to directly, as are fields met while
    /// the buffer is in use (a `Debug` that formats fields of its own).
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        if writer.has_ansi_escapes() || !writer.sanitizes_ansi_escapes() {
            return write_fields(writer, fields);
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                write_fields(Writer::new(&mut *text), fields)?;
                writer.write_str(&text)
            }
            Err(_) => write_fields(writer, fields),
        })
    }
}

/// Writes `fields` as [`PlainFields`] does, to `writer`.
fn write_fields<R: RecordFields>(writer: Writer<'_>, fields: R) -> fmt::Result {
    let mut visitor = PlainVisitor {
        writer,
        is_empty: true,
        result: Ok(()),
    };
    fields.record(&mut visitor);
    visitor.finish()
}

/// The visitor of [`PlainFields`].
pub struct PlainVisitor<'a> {
    writer: Writer<'a>,
    /// No field written yet: the next needs no separating space.
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Whether this visitor writes the field itself; any other is written by tracing's
    /// own visitor.
    fn writes_itself(&self, name: &str) -> bool {
        !self.writer.has_ansi_escapes() && !name.starts_with("r#")
    }

    /// The message: its text without quotes, terminal controls escaped as tracing
    /// escapes them, after a space unless it is the first field.
    fn write_message(&mut self, value: &dyn fmt::Debug) {
        self.separate();
        if self.result.is_ok() {
            let sanitize = self.writer.sanitizes_ansi_escapes();
            let mut escaping = Escaping {
                inner: &mut self.writer,
                sanitize,
            };
            self.result = write!(escaping, "{value:?}");
        }
    }

    /// `name=value`, after a space unless it is the first field.
    fn write_field(&mut self, name: &str, value: &dyn fmt::Debug) {
        self.write_name(name);
        if self.result.is_ok() {
            self.result = write!(self.writer, "{value:?}");
        }
    }

    /// `name="text"` as `Debug` quotes it. Text of printable ASCII without quotes or
    /// backslashes (routes, request ids, codes) is written as it is, which is what
    /// `Debug` writes for it, without looking at every character for an escape.
    fn write_text_field(&mut self, name: &str, text: &str) {
        if !text
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            return self.write_field(name, &text);
        }
        self.write_name(name);
        if self.result.is_ok() {
            self.result = self
                .writer
                .write_char('"')
                .and_then(|()| self.writer.write_str(text))
                .and_then(|()| self.writer.write_char('"'));
        }
    }

    /// `name=`, after a space unless it is the first field.
    fn write_name(&mut self, name: &str) {
        self.separate();
        if self.result.is_ok() {
            self.result = self
                .writer
                .write_str(name)
                .and_then(|()| self.writer.write_char('='));
        }
    }

    /// The space before a field, unless it is the first.
    fn separate(&mut self) {
        if !self.is_empty {
            self.result = self.writer.write_char(' ');
        }
        self.is_empty = false;
    }

    /// Lets tracing's own visitor write the field, where this one left off.
    fn delegate(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut inner = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut inner);
        self.result = inner.finish();
        self.is_empty = false;
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || is_log_metadata(field) {
            return;
        }
        if !self.writes_itself(field.name()) {
            self.delegate(|inner| inner.record_str(field, value));
        } else if field.name() == "message" {
            self.write_message(&format_args!("{value}"));
        } else {
            self.write_text_field(field.name(), value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() || is_log_metadata(field) {
            return;
        }
        self.delegate(|inner| inner.record_error(field, value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.result.is_err() || is_log_metadata(field) {
            return;
        }
        if !self.writes_itself(field.name()) {
            return self.delegate(|inner| inner.record_f64(field, value));
        }
        match thousandths(value) {
            Some(n) => {
                self.write_name(field.name());
                if self.result.is_ok() {
                    self.result = write_thousandths(&mut self.writer, n);
                }
            }
            None => self.write_field(field.name(), &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() || is_log_metadata(field) {
            return;
        }
        if !self.writes_itself(field.name()) {
            self.delegate(|inner| inner.record_debug(field, value));
        } else if field.name() == "message" {
            self.write_message(value);
        } else {
            self.write_field(field.name(), value);
        }
    }
}

/// A message's text as tracing-subscriber's `EscapeGuard` writes it when the writer
/// sanitizes: ESC, BEL, BS, FF, DEL and the C1 controls escaped, so that a message
/// cannot drive a terminal. A piece with none of them (almost every one) is written
/// whole rather than a character at a time.
struct Escaping<'w, 'a> {
    inner: &'w mut Writer<'a>,
    sanitize: bool,
}

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !self.sanitize || !s.chars().any(is_terminal_control) {
            return self.inner.write_str(s);
        }
        for ch in s.chars() {
            match ch {
                _ if !is_terminal_control(ch) => self.inner.write_char(ch)?,
                '\u{80}'..='\u{9f}' => write!(self.inner, "\\u{{{:x}}}", u32::from(ch))?,
                _ => write!(self.inner, "\\x{:02x}", u32::from(ch))?,
            }
        }
        Ok(())
    }
}

/// The characters tracing escapes in a message: the C0 ones as `\x1b`, the C1 ones as
/// `\u{85}`.
fn is_terminal_control(ch: char) -> bool {
    matches!(
        ch,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
    )
}

/// `value` as a whole number of thousandths, when it is the double nearest to one
/// (latencies in milliseconds, to the microsecond) below 10^15. `Debug` then writes that
/// decimal: it writes the shortest digits that read back as `value`, and decimals of
/// at most 15 significant digits read back as different doubles, so no shorter one
/// reads back as `value`.
fn thousandths(value: f64) -> Option<u64> {
    if !value.is_sign_positive() || value.is_nan() || value >= 1e12 {
        return None;
    }
    let n = (value * 1000.0).round();
    // Below 10^15, `n` is a whole number a u64 holds exactly.
    (n / 1000.0 == value).then_some(n as u64)
}

/// Writes `n` thousandths as `Debug` writes the double nearest to them: the whole
/// part, a point, the fraction without trailing zeros, or `0` when there is none.
fn write_thousandths(writer: &mut impl fmt::Write, n: u64) -> fmt::Result {
    let mut digits = [0u8; 24];
    let mut at = digits.len();
    let (whole, mut fraction) = (n / 1000, n % 1000);
    let mut places = 3;
    while fraction != 0 && fraction % 10 == 0 {
        fraction /= 10;
        places -= 1;
    }
    if fraction == 0 {
        places = 1;
    }
    for _ in 0..places {
        at -= 1;
        digits[at] = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    at -= 1;
    digits[at] = b'.';
    let mut whole = whole;
    loop {
        at -= 1;
        digits[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    // Only ASCII digits and a point were written.
    writer.write_str(std::str::from_utf8(&digits[at..]).map_err(|_| fmt::Error)?)
}

/// The `log.` fields of a record from the `log` crate, which tracing's formatter
/// skips (it shows their target as the line's).
fn is_log_metadata(field: &Field) -> bool {
    field.name().starts_with("log.")
}

impl VisitOutput<fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for PlainVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// A line as `Format<Full>` writes it without colours (timestamp, level, spans with
/// their fields, target, fields); for a coloured writer, tracing's own format.
pub struct PlainLine<T> {
    timer: T,
    coloured: Format<Full, T>,
}

impl<T: FormatTime + Clone> PlainLine<T> {
    pub fn new(timer: T) -> Self {
        PlainLine {
            coloured: Format::default().with_timer(timer.clone()),
            timer,
        }
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if writer.has_ansi_escapes() {
            return self.coloured.format_event(ctx, writer, event);
        }
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level_text(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The level as the default format pads it.
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A fixed time, so that two formatters' lines can be compared whole.
    #[derive(Clone)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-12-07T04:11:04.740455Z")
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut kept) = self.0.lock() {
                kept.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            self.0
                .lock()
                .map(|kept| String::from_utf8_lossy(&kept).into_owned())
                .unwrap_or_default()
        }
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("could not store")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// Every kind of line the service writes, and some it might.
    fn emit() {
        tracing::info!("paymirror listening");
        tracing::warn!(target: "paymirror::ops::requests", status = 200u16, latency_ms = 11.603, "answered");
        let request = tracing::info_span!(
            "request",
            method = %"POST",
            route = "/callbacks/payins",
            request_id = "927ce4fd-6804-45ab-ae55-3e33b654ece4",
        );
        let _entered = request.enter();
        tracing::info!(target: "paymirror::ops::requests", status = 200u16, latency_ms = 0.5, "answered");
        tracing::error!(
            status = 503u16,
            latency_ms = 5000.0,
            "answered with a server error"
        );
        let empty = tracing::debug_span!("sync");
        let _inner = empty.enter();
        let with_later =
            tracing::info_span!("fetch", kind = "payin", attempt = tracing::field::Empty);
        with_later.record("attempt", 3u32);
        let _fetch = with_later.enter();
        tracing::debug!(n = -4i64, big = u64::MAX, flag = true, f = 1e21, list = ?[1, 2], "nested \"quoted\" \u{1b}[31mred");
        tracing::info!(
            "controls: bell \u{7} back \u{8} feed \u{c} del \u{7f} c1 \u{85}\u{9b}31m tab \t newline \n nul \0 {} end",
            "in an argument \u{1b}[0m \u{9f} é"
        );
        tracing::info!(
            message = "a message as text \u{1b}[2J \u{90}",
            text = "beside"
        );
        tracing::info!(message = ?"a message as a debug value \u{1b}", n = 1);
        tracing::info!("only a C1 control \u{9b}31m, nothing else to escape");
        tracing::trace!(
            text = "tab\there \"q\" é \u{1b}",
            r#type = "r#-named",
            "escapes"
        );
        tracing::debug!(
            plain = "/v1/{kinds}/{id}",
            spaced = " a b ~",
            empty = "",
            backslash = "a\\b",
            quote = "\"",
            del = "\u{7f}",
            newline = "a\nb",
            accent = "\u{301}e",
            wide = "\u{200b}",
            "texts"
        );
        let error = Outer(std::io::Error::other("disk full"));
        tracing::warn!(
            error = &error as &(dyn std::error::Error + 'static),
            "with a source"
        );
        tracing::warn!(error = %error, "as display");
        tracing::info!(message = "message as a field", extra = 1);
        tracing::info!(
            "log.target" = "sqlx::query",
            "log.line" = 12u32,
            "from the log crate"
        );
        tracing::info!(only = "fields, no message");
        tracing::info!(
            zero = 0.0,
            negative_zero = -0.0,
            whole = 9.0,
            tenth = 0.1,
            micro = 0.001,
            tiny = 0.00005,
            sum = 0.1 + 0.2,
            big = 123_456_789.25,
            huge = 1e16,
            negative = -3.25,
            nan = f64::NAN,
            infinite = f64::INFINITY,
            "floats"
        );
    }

    /// The lines of [`emit`] as tracing's default text format writes them.
    fn default_lines(ansi: bool) -> String {
        let written = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(ansi)
            .with_timer(Fixed)
            .with_writer(written.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        written.text()
    }

    /// The lines of [`emit`] as [`PlainLine`] and [`PlainFields`] write them.
    fn plain_lines(ansi: bool) -> String {
        let written = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(ansi)
            .fmt_fields(PlainFields)
            .event_format(PlainLine::new(Fixed))
            .with_writer(written.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        written.text()
    }

    #[test]
    fn lines_are_the_default_formats_byte_for_byte() {
        let (stock, plain) = (default_lines(false), plain_lines(false));
        assert_eq!(stock.lines().count(), 18, "{stock}");
        for (expected, written) in stock.lines().zip(plain.lines()) {
            assert_eq!(written, expected);
        }
        assert_eq!(plain, stock);
    }

    #[test]
    fn thousandths_are_written_as_debug_writes_them() {
        let mut values: Vec<u64> = (0..20_000).collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            // xorshift: thousandths of every size up to 10^15
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x % 10u64.pow(1 + u32::try_from(x % 15).unwrap_or(0)));
        }
        for n in values {
            let value = n as f64 / 1000.0;
            let found = thousandths(value);
            assert_eq!(found, Some(n), "{value:?}");
            let Some(found) = found else { continue };
            let mut written = String::new();
            write_thousandths(&mut written, found).expect("written");
            assert_eq!(written, format!("{value:?}"), "{n}");
        }
        for value in [
            -0.0,
            -1.5,
            0.00005,
            1e12,
            1e16,
            f64::NAN,
            f64::INFINITY,
            0.1 + 0.2,
        ] {
            assert_eq!(thousandths(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_coloured_writer_gets_the_default_format() {
        let (stock, plain) = (default_lines(true), plain_lines(true));
        assert!(stock.contains('\u{1b}'));
        assert_eq!(plain, stock);
    }
}
