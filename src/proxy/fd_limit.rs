//! The process's open-file limit. A proxy needs descriptors in proportion to its
//! connections; a soft limit left at a distribution's default (often 1024) makes it
//! refuse clients long before `max_connections`, so it is raised to the hard limit at
//! start, and a `max_connections` that still cannot fit is said out loud.

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

/// Warns when `max_connections` cannot fit in the open-file limit: the connections
/// beyond what fits are then refused.
pub fn check(proxy: &str, max_connections: usize, limit: Option<u64>) {
    let Some(limit) = limit else { return };
    let fit = connections_that_fit(limit);
    if max_connections as u64 > fit {
        tracing::warn!(
            proxy,
            max_connections,
            open_file_limit = limit,
            fit,
            "the open-file limit cannot hold max_connections connections ({PER_CONNECTION} descriptors each); clients beyond what fits are refused; raise the limit (LimitNOFILE=, ulimit -n) or lower max_connections"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_after_the_descriptors_kept_for_others() {
        assert_eq!(connections_that_fit(1024), (1024 - 64) / 6);
        assert_eq!(connections_that_fit(10), 0);
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
