//! A Tahoe node's `tahoe.cfg`, as far as a storage server reads it: where it
//! listens and what it advertises (`[node] tub.port`, `tub.location`) and the
//! `[storage]` options, mapped to ours; what we cannot honour is refused.

use ini::Ini;

/// How the crawler expires leases, from `[storage] expire.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiration {
    /// `expire.enabled` false (Tahoe's default): leases are never removed.
    Disabled,
    /// `expire.mode = age`: leases past their expiry or, with
    /// `expire.override_lease_duration`, renewed longer ago than that.
    Age {
        /// The override as written (e.g. `60 days`).
        override_duration: Option<String>,
    },
    /// `expire.mode = cutoff-date`: leases renewed before `expire.cutoff_date`.
    CutoffDate {
        /// `YYYY-MM-DD`.
        date: String,
    },
}

/// What `tahoe.cfg` says about the storage server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `HOST:PORT` to listen on, from `tub.port` (`tcp:PORT[:interface=IP]`).
    pub listen: Option<String>,
    /// `HOST:PORT` clients were told, from the first `tcp:` hint of `tub.location`.
    pub location: Option<String>,
    /// `[storage] storage_dir`, relative to the node directory unless absolute.
    pub storage_dir: Option<String>,
    /// `[storage] reserved_space` in bytes.
    pub reserved_space: u64,
    /// `[storage] readonly`.
    pub readonly: bool,
    /// `[storage] expire.*`.
    pub expiration: Expiration,
}

fn get<'a>(ini: &'a Ini, section: &str, key: &str) -> Option<&'a str> {
    ini.get_from(Some(section), key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Tahoe's booleans (`true`/`yes`/`on`/`1` and their opposites).
fn boolean(key: &str, value: Option<&str>, default: bool) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "yes" | "on" | "1") => Ok(true),
        Some("false" | "no" | "off" | "0") => Ok(false),
        Some(other) => Err(format!("{key} = {other:?} is not a boolean")),
    }
}

/// A size as Tahoe writes it: `1G`, `100MB`, `1.5GiB`, `500k`, `1000000`
/// (decimal units; `i` makes them binary, as Tahoe's `parse_abbreviated_size`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (t, base) = match t.strip_suffix('i') {
        Some(rest) => (rest, 1024f64),
        None => (t, 1000f64),
    };
    let (number, power) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1),
        Some('m') => (&t[..t.len() - 1], 2),
        Some('g') => (&t[..t.len() - 1], 3),
        Some('t') => (&t[..t.len() - 1], 4),
        _ => (t, 0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a size such as 1G, 500MB or 1000000"))?;
    Ok((value * base.powi(power)).round() as u64)
}

/// `tcp:PORT[:interface=IP]` as `IP:PORT` (every interface without one).
fn listen_of(tub_port: &str) -> Result<String, String> {
    let mut parts = tub_port.split(':');
    let (kind, port) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if kind != "tcp" || port.parse::<u16>().is_err() {
        return Err(format!(
            "tub.port = {tub_port:?}: only tcp:PORT[:interface=IP] can be served here"
        ));
    }
    let interface = parts
        .find_map(|p| p.strip_prefix("interface="))
        .unwrap_or("0.0.0.0");
    Ok(if interface.contains(':') {
        format!("[{interface}]:{port}")
    } else {
        format!("{interface}:{port}")
    })
}

/// The first `tcp:HOST:PORT` hint of `tub.location` as `HOST:PORT`.
fn location_of(tub_location: &str) -> Option<String> {
    tub_location.split(',').find_map(|hint| {
        let (host, port) = hint.trim().strip_prefix("tcp:")?.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        Some(format!("{host}:{port}"))
    })
}

impl NodeConfig {
    /// Parses `tahoe.cfg`; the error names the option that cannot be honoured.
    pub fn parse(text: &str) -> Result<NodeConfig, String> {
        let ini = Ini::load_from_str(text).map_err(|e| e.to_string())?;
        if !boolean("[storage] enabled", get(&ini, "storage", "enabled"), false)? {
            return Err("[storage] enabled is not true: this node serves no storage".into());
        }
        let listen = match get(&ini, "node", "tub.port") {
            None => None,
            Some(p) if p == "disabled" => {
                return Err("tub.port = disabled: the node accepts no connections".into())
            }
            Some(p) => Some(listen_of(p)?),
        };
        let location = get(&ini, "node", "tub.location").and_then(location_of);
        let reserved_space = match get(&ini, "storage", "reserved_space") {
            None => 0,
            Some(s) => parse_size(s).map_err(|e| format!("[storage] reserved_space: {e}"))?,
        };
        let readonly = boolean(
            "[storage] readonly",
            get(&ini, "storage", "readonly"),
            false,
        )?;
        for kind in ["immutable", "mutable"] {
            let key = format!("expire.{kind}");
            if !boolean(
                &format!("[storage] {key}"),
                get(&ini, "storage", &key),
                true,
            )? {
                return Err(format!(
                    "[storage] {key} = false: leases of only one share type cannot be \
                     exempted from expiry here; remove the option or set expire.enabled = false"
                ));
            }
        }
        let expiration = if !boolean(
            "[storage] expire.enabled",
            get(&ini, "storage", "expire.enabled"),
            false,
        )? {
            Expiration::Disabled
        } else {
            match get(&ini, "storage", "expire.mode").unwrap_or("age") {
                "age" => Expiration::Age {
                    override_duration: get(&ini, "storage", "expire.override_lease_duration")
                        .map(str::to_owned),
                },
                "cutoff-date" => Expiration::CutoffDate {
                    date: get(&ini, "storage", "expire.cutoff_date")
                        .ok_or("expire.mode = cutoff-date needs expire.cutoff_date")?
                        .to_owned(),
                },
                other => return Err(format!("[storage] expire.mode = {other:?} is unknown")),
            }
        };
        Ok(NodeConfig {
            listen,
            location,
            storage_dir: get(&ini, "storage", "storage_dir").map(str::to_owned),
            reserved_space,
            readonly,
            expiration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_tahoe_reads_them() {
        assert_eq!(parse_size("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1500);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("12345").unwrap(), 12345);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1G").is_err());
    }

    const STOCK: &str = "[node]\nnickname = x\ntub.port = tcp:34567:interface=127.0.0.1\n\
        tub.location = tcp:127.0.0.1:34567\n\n[storage]\n# Shall this node provide storage service?\n\
        enabled = true\n#readonly =\nreserved_space = 1G\n#storage_dir =\n#expire.enabled =\n";

    #[test]
    fn a_stock_storage_node_maps_to_our_options() {
        let c = NodeConfig::parse(STOCK).unwrap();
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:34567"));
        assert_eq!(c.location.as_deref(), Some("127.0.0.1:34567"));
        assert_eq!(c.reserved_space, 1_000_000_000);
        assert!(!c.readonly);
        assert_eq!(c.expiration, Expiration::Disabled);
        assert_eq!(c.storage_dir, None);
    }

    #[test]
    fn expiry_and_readonly_options_map_or_are_refused() {
        let with = |extra: &str| NodeConfig::parse(&format!("{STOCK}{extra}\n"));
        let c = with("readonly = yes\nexpire.enabled = true\nexpire.mode = age\nexpire.override_lease_duration = 60 days").unwrap();
        assert!(c.readonly);
        assert_eq!(
            c.expiration,
            Expiration::Age {
                override_duration: Some("60 days".into())
            }
        );
        let c = with(
            "expire.enabled = true\nexpire.mode = cutoff-date\nexpire.cutoff_date = 2025-01-01",
        )
        .unwrap();
        assert_eq!(
            c.expiration,
            Expiration::CutoffDate {
                date: "2025-01-01".into()
            }
        );
        let refused = with("expire.enabled = true\nexpire.immutable = false").unwrap_err();
        assert!(refused.contains("expire.immutable"), "{refused}");
        assert!(with("expire.enabled = true\nexpire.mode = cutoff-date")
            .unwrap_err()
            .contains("expire.cutoff_date"));
        assert!(NodeConfig::parse("[node]\n[storage]\nenabled = false\n").is_err());
        assert!(
            NodeConfig::parse("[node]\ntub.port = tor:80\n[storage]\nenabled = true\n")
                .unwrap_err()
                .contains("tub.port")
        );
    }
}
