//! MAC addresses as `u64`: parsed once at ingest, rendered as lowercase colon form at the edge.
//!
//! Integer keys make every group-by and join on devices cheaper than string keys.

/// Parses `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` (either case, one separator kind) or
/// `aabbccddeeff`. Surrounding whitespace is ignored. Returns `None` for anything else.
pub fn parse_mac(s: &str) -> Option<u64> {
    let s = s.trim().as_bytes();
    let mut v: u64 = 0;
    match s.len() {
        12 => {
            for &b in s {
                v = (v << 4) | hex(b)? as u64;
            }
        }
        17 => {
            let sep = s[2];
            if sep != b':' && sep != b'-' {
                return None;
            }
            for (i, &b) in s.iter().enumerate() {
                if i % 3 == 2 {
                    if b != sep {
                        return None;
                    }
                } else {
                    v = (v << 4) | hex(b)? as u64;
                }
            }
        }
        _ => return None,
    }
    Some(v)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lowercase colon form.
pub fn format_mac(v: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(17);
    for i in (0..6).rev() {
        let byte = (v >> (i * 8)) as u8;
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 15) as usize] as char);
        if i > 0 {
            out.push(':');
        }
    }
    out
}

/// Locally administered (randomised) MAC: bit 0x02 of the first octet.
pub fn is_randomized(v: u64) -> bool {
    (v >> 40) & 0x02 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        let want = 0xaabbccddeeff;
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff"), Some(want));
        assert_eq!(parse_mac("AA-BB-CC-DD-EE-FF"), Some(want));
        assert_eq!(parse_mac("aabbccddeeff"), Some(want));
        assert_eq!(parse_mac(" AABBCCDDEEFF "), Some(want));
        assert_eq!(format_mac(want), "aa:bb:cc:dd:ee:ff");
        assert_eq!(format_mac(0x0102030405), "00:01:02:03:04:05");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb-cc:dd:ee:ff",
            "gg:bb:cc:dd:ee:ff",
            "aabbccddeef",
            "aa.bb.cc.dd.ee.ff",
            "aabbccddeeff00",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn randomized_bit() {
        assert!(is_randomized(parse_mac("02:00:00:00:00:01").unwrap()));
        assert!(is_randomized(parse_mac("da:00:00:00:00:01").unwrap()));
        assert!(!is_randomized(parse_mac("00:00:00:00:00:01").unwrap()));
        assert!(!is_randomized(parse_mac("01:00:00:00:00:01").unwrap()));
    }
}
