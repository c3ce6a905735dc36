//! `footfall serve`: the live big screen ([`crate::serve`]).

use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::bail_usage;
use crate::cli::ServeArgs;
use crate::error::EXIT_OK;
use crate::serve::ServePlan;

pub fn run(ctx: &Ctx, a: ServeArgs) -> Result<i32> {
    let ov = a.plan.overrides(ctx.config.as_ref());
    let token = match &a.token_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(t) if !t.is_empty() => Some(t),
            _ => bail_usage!("--token-env {var}: the environment variable is not set or empty"),
        },
    };
    let update = match a.update_every {
        Some(s) => Some((Duration::from_secs(s), crate::config::plan(&ov)?)),
        None => None,
    };
    let plan = ServePlan {
        listen: a.listen,
        token,
        stale_after: Duration::from_secs(a.stale_after),
        read: crate::config::read_plan(&ov)?,
        update,
    };
    crate::serve::serve(plan, |addr| {
        // The address on stdout (a port of 0 picks one): what a script or test waits for.
        println!("footfall serve: listening on http://{addr}/");
        ctx.say(format!("serve: the page is http://{addr}/ and the data http://{addr}/api/live"));
    })?;
    Ok(EXIT_OK)
}
