//! Address ranges (`10.0.0.0/8`, `2001:db8::/32`, or one address) for sources verified by the
//! sender's IP address.

use std::net::IpAddr;

/// A parsed range: its base address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    base: IpAddr,
    prefix: u8,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, String> {
        let invalid = || {
            format!(
                "`{}` is not an IP address or range such as 192.0.2.0/24",
                crate::excerpt::excerpt(text)
            )
        };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let base: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(invalid)?,
            None => max,
        };
        Ok(Range { base, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        // An IPv4 sender may arrive as an IPv4-mapped IPv6 address.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let (base, address, bits) = match (self.base, address) {
            (IpAddr::V4(base), IpAddr::V4(address)) => {
                (u128::from(u32::from(base)), u128::from(u32::from(address)), 32)
            }
            (IpAddr::V6(base), IpAddr::V6(address)) => (u128::from(base), u128::from(address), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (base >> shift) == (address >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_their_addresses() {
        let lan = Range::parse("10.0.0.0/8").unwrap();
        assert!(lan.contains("10.1.2.3".parse().unwrap()));
        assert!(!lan.contains("11.0.0.1".parse().unwrap()));
        assert!(lan.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(
            Range::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        assert!(
            !Range::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.2".parse().unwrap())
        );
        assert!(
            Range::parse("0.0.0.0/0")
                .unwrap()
                .contains("203.0.113.9".parse().unwrap())
        );
        assert!(
            Range::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8:1::5".parse().unwrap())
        );
        assert_eq!(
            Range::parse("10.0.0.0/33").unwrap_err(),
            "`10.0.0.0/33` is not an IP address or range such as 192.0.2.0/24"
        );
    }
}
