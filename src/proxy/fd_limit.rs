//! The process's open-file limit. A proxy needs descriptors in proportion to its
//! connections; a soft limit left at a distribution's default (often 1024) makes it
//! refuse clients long before `max_connections`, so it is raised to the hard limit at
//! start. A `max_connections` that still cannot fit is lowered to what fits, and said
//! out loud: clients beyond it are then refused at once, as at `max_connections`,
//! rather than left waiting in the listen backlog once `accept` has no descriptor.

/// Descriptors one proxied connection may take: its two sockets, and a pipe (two
/// descriptors) for each direction once it splices a large frame.
pub const PER_CONNECTION: u64 = 6;
/// Descriptors kept for everything else: listeners, the metrics endpoint, the
/// proxy's own connections to the cluster, the runtime.
const OTHERS: u64 = 64;

/// Raises the soft open-file limit to the hard one; the soft limit in force after,
/// `None` when there is none or it cannot be read.
#[cfg(target_os = "linux")]
pub fn raise() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else {
        return limit.current;
    };
    if soft >= hard {
        return Some(soft);
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "open-file limit raised to the hard limit");
            Some(hard)
        }
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn raise() -> Option<u64> {
    None
}

/// How many connections fit in `limit` descriptors.
pub fn connections_that_fit(limit: u64) -> u64 {
    limit.saturating_sub(OTHERS) / PER_CONNECTION
}

/// The connections the proxy holds at once: `max_connections`, or what fits in the
/// open-file limit when that is fewer (at least one), with a warning.
pub fn connection_cap(proxy: &str, max_connections: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return max_connections;
    };
    let fit = usize::try_from(connections_that_fit(limit))
        .unwrap_or(usize::MAX)
        .max(1);
    if max_connections > fit {
        tracing::warn!(
            proxy,
            max_connections,
            open_file_limit = limit,
            serving_at_most = fit,
            "the open-file limit cannot hold max_connections connections ({PER_CONNECTION} descriptors each); serving at most what fits and refusing the rest; raise the limit (LimitNOFILE=, ulimit -n) or lower max_connections"
        );
        return fit;
    }
    max_connections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_after_the_descriptors_kept_for_others() {
        assert_eq!(connections_that_fit(1024), (1024 - 64) / 6);
        assert_eq!(connections_that_fit(10), 0);
    }

    #[test]
    fn max_connections_is_lowered_to_what_the_limit_holds() {
        assert_eq!(connection_cap("p", 10_000, Some(128)), 10);
        assert_eq!(connection_cap("p", 5, Some(128)), 5);
        assert_eq!(connection_cap("p", 100, Some(10)), 1);
        assert_eq!(connection_cap("p", 100, None), 100);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{getrlimit, Resource};
        let raised = raise();
        let now = getrlimit(Resource::Nofile);
        assert_eq!(raised, now.current);
        assert_eq!(now.current, now.maximum.or(now.current));
    }
}
