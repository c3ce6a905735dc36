//! One writer-generic printer for every command that prints rows: a readable table,
//! CSV, JSON, NDJSON or Parquet. Formatting is configured per call, never through
//! process-wide environment variables.
//!
//! Data goes to [`stdout`], which marks a write to a closed pipe (`footfall show … | head`) so
//! that `main` can tell it from any other broken connection: only a closed stdout is success.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Result};
use polars::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

/// The default: a table on a terminal, CSV when piped.
pub fn resolve(f: Option<Format>) -> Format {
    f.unwrap_or(if std::io::stdout().is_terminal() { Format::Table } else { Format::Csv })
}

/// Writes a frame in the chosen format.
pub fn write_frame<W: Write>(w: &mut W, df: &mut DataFrame, format: Format) -> Result<()> {
    match format {
        Format::Table => write_table(w, df)?,
        Format::Csv => CsvWriter::new(&mut *w).include_header(true).finish(df)?,
        Format::Json => JsonWriter::new(&mut *w).with_json_format(JsonFormat::Json).finish(df)?,
        Format::Ndjson => JsonWriter::new(&mut *w).with_json_format(JsonFormat::JsonLines).finish(df)?,
        Format::Parquet => {
            ParquetWriter::new(&mut *w).finish(df)?;
        }
    }
    if format == Format::Json {
        writeln!(w)?;
    }
    w.flush()?;
    Ok(())
}

/// The error a write to a closed stdout returns (inside an `io::Error` of kind `BrokenPipe`).
#[derive(Debug)]
pub struct StdoutClosed;

/// How [`StdoutClosed`] reads; `main` also looks for it in messages of libraries (Polars) that
/// wrap the `io::Error` without keeping it as a source.
pub const STDOUT_CLOSED: &str = "standard output was closed by its reader";

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(STDOUT_CLOSED)
    }
}

impl std::error::Error for StdoutClosed {}

/// Standard output for data, locked for the command's lifetime.
pub struct Stdout(std::io::StdoutLock<'static>);

/// Where every command writes its data.
pub fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

fn mark_closed(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(mark_closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(mark_closed)
    }
}

/// Refuses binary output to a terminal.
pub fn check_binary(format: Format) -> Result<()> {
    if format == Format::Parquet && std::io::stdout().is_terminal() {
        bail!("refusing to write Parquet to a terminal; redirect stdout to a file");
    }
    Ok(())
}

fn cell(av: AnyValue) -> String {
    match av {
        AnyValue::Null => "null".into(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// An aligned text table with a header rule; numbers right-aligned.
fn write_table<W: Write>(w: &mut W, df: &DataFrame) -> Result<()> {
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let numeric: Vec<bool> =
        df.columns().iter().map(|c| c.dtype().is_primitive_numeric() || c.dtype().is_decimal()).collect();
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        rows.push(df.columns().iter().map(|c| cell(c.get(i).unwrap_or(AnyValue::Null))).collect());
    }
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in &rows {
        for (j, v) in r.iter().enumerate() {
            widths[j] = widths[j].max(v.chars().count());
        }
    }
    let line = |cells: &[String], w: &mut W| -> std::io::Result<()> {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(j, v)| {
                if numeric[j] {
                    format!("{v:>width$}", width = widths[j])
                } else {
                    format!("{v:<width$}", width = widths[j])
                }
            })
            .collect();
        writeln!(w, "{}", parts.join("  ").trim_end())
    };
    line(&names, w)?;
    writeln!(w, "{}", widths.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>().join("  "))?;
    for r in &rows {
        line(r, w)?;
    }
    if rows.is_empty() {
        writeln!(w, "(no rows)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataFrame {
        df!("shop_code" => ["S1", "S22"], "visitors" => [5i64, 123]).unwrap()
    }

    fn render(df: &mut DataFrame, f: Format) -> String {
        let mut buf = Vec::new();
        write_frame(&mut buf, df, f).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn table_is_aligned() {
        assert_eq!(
            render(&mut sample(), Format::Table),
            "shop_code  visitors\n---------  --------\nS1                5\nS22             123\n"
        );
    }

    #[test]
    fn csv_json_ndjson() {
        assert_eq!(render(&mut sample(), Format::Csv), "shop_code,visitors\nS1,5\nS22,123\n");
        assert_eq!(
            render(&mut sample(), Format::Json),
            "[{\"shop_code\":\"S1\",\"visitors\":5},{\"shop_code\":\"S22\",\"visitors\":123}]\n"
        );
        assert_eq!(
            render(&mut sample(), Format::Ndjson),
            "{\"shop_code\":\"S1\",\"visitors\":5}\n{\"shop_code\":\"S22\",\"visitors\":123}\n"
        );
    }

    #[test]
    fn empty_results() {
        let mut empty = sample().head(Some(0));
        assert_eq!(render(&mut empty, Format::Table), "shop_code  visitors\n---------  --------\n(no rows)\n");
        assert_eq!(render(&mut empty, Format::Csv), "shop_code,visitors\n");
        assert_eq!(render(&mut empty, Format::Ndjson), "");
        let pq = render_bytes(&mut empty);
        assert_eq!(&pq[..4], b"PAR1");
    }

    fn render_bytes(df: &mut DataFrame) -> Vec<u8> {
        let mut buf = Vec::new();
        write_frame(&mut buf, df, Format::Parquet).unwrap();
        buf
    }
}
