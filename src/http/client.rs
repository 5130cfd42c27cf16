//! What the node keeps about a shopper's client: the address anonymised at
//! ingestion and a coarse browser/device class. The raw address and the
//! user agent string are never stored.

use std::net::IpAddr;

use mikabot_actors::log::ClientClass;

/// IPv4 keeps its /24 (last octet zeroed); IPv6 keeps its /48.
pub fn anonymise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return anonymise(IpAddr::V4(v4));
            }
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

/// A coarse class from a User-Agent header.
pub fn classify(user_agent: &str) -> ClientClass {
    let ua = user_agent.to_ascii_lowercase();
    let browser = if ua.contains("edg/") {
        "edge"
    } else if ua.contains("firefox/") {
        "firefox"
    } else if ua.contains("chrome/") || ua.contains("chromium/") {
        "chrome"
    } else if ua.contains("safari/") {
        "safari"
    } else {
        "other"
    };
    let device = if ua.contains("bot") || ua.contains("crawler") || ua.contains("spider") {
        "bot"
    } else if ua.contains("ipad") || ua.contains("tablet") {
        "tablet"
    } else if ua.contains("mobi") || ua.contains("iphone") || ua.contains("android") {
        "mobile"
    } else if ua.contains("windows") || ua.contains("macintosh") || ua.contains("x11") {
        "desktop"
    } else {
        "other"
    };
    ClientClass {
        browser: browser.to_owned(),
        device: device.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_their_host_part() {
        let v4: IpAddr = "203.0.113.77".parse().expect("valid");
        assert_eq!(anonymise(v4).to_string(), "203.0.113.0");
        let v6: IpAddr = "2001:db8:abcd:12:34:56:78:9".parse().expect("valid");
        assert_eq!(anonymise(v6).to_string(), "2001:db8:abcd::");
        let mapped: IpAddr = "::ffff:198.51.100.9".parse().expect("valid");
        assert_eq!(anonymise(mapped).to_string(), "198.51.100.0");
    }

    #[test]
    fn user_agents_map_to_coarse_classes() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(
            classify(iphone),
            ClientClass {
                browser: "safari".into(),
                device: "mobile".into()
            }
        );
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(
            classify(edge),
            ClientClass {
                browser: "edge".into(),
                device: "desktop".into()
            }
        );
        assert_eq!(classify("").browser, "other");
    }
}
