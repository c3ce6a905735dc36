//! `footfall sql "SELECT …"`: Polars SQL over the result tables, dimensions and `probes`.

use anyhow::Result;
use polars::prelude::*;
use polars::sql::SQLContext;

use super::Ctx;
use crate::cli::SqlArgs;
use crate::error::{usage, EXIT_OK};
use crate::print::{check_binary, resolve, write_frame};

pub fn run(ctx: &Ctx, a: SqlArgs) -> Result<i32> {
    let f = resolve(ctx.format);
    check_binary(f)?;
    let ov = a.plan.overrides(ctx.config.as_ref());
    let chain = crate::config::chain_ids(ov.config.as_deref())?;
    if !chain.is_empty() && ov.malls.is_empty() && ov.mall_index.is_none() {
        // The whole chain: its result tables with a `mall` column, and the chain tables.
        let sql = SQLContext::new();
        for (name, lf) in crate::sql::chain_tables(&crate::config::plans(&ov)?)? {
            sql.register(&name, lf);
        }
        return execute(sql, &a.query, f);
    }
    let crate::config::ReadPlan { out, settings, probes, dims: dims_loc, .. } = crate::config::read_plan(&ov)?;
    let tz = settings.tz_name.as_str();
    let sql = SQLContext::new();
    for s in crate::schema::results() {
        sql.register(&s.name, crate::sql::result_table(&out, s, tz)?);
    }
    let dims = crate::dims::load(dims_loc.as_ref(), settings.mac_key.as_ref())?;
    for (name, lf) in crate::sql::dimension_frames(&dims)? {
        sql.register(name, lf);
    }
    // Parsing every probe file is costly: only when the query names the table.
    if a.query.to_lowercase().contains("probes") {
        if let Some(p) = &probes {
            sql.register("probes", crate::sql::probes(p, &dims, &settings)?);
        }
    }
    execute(sql, &a.query, f)
}

fn execute(mut sql: SQLContext, query: &str, f: crate::print::Format) -> Result<i32> {
    let lf = sql.execute(query).map_err(|e| usage(format!("SQL: {e}")))?;
    let mut df = lf.collect().map_err(|e| match e {
        PolarsError::SQLInterface(_)
        | PolarsError::SQLSyntax(_)
        | PolarsError::ColumnNotFound(_)
        | PolarsError::InvalidOperation(_)
        | PolarsError::SchemaMismatch(_) => usage(format!("SQL: {e}")),
        other => anyhow::Error::from(other),
    })?;
    write_frame(&mut crate::print::stdout(), &mut df, f)?;
    Ok(EXIT_OK)
}
