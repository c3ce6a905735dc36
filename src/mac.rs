//! MAC addresses as `u64`: parsed once at ingest, rendered as lowercase colon form at the edge.
//!
//! Integer keys make every group-by and join on devices cheaper than string keys.

/// Parses `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` (either case, one separator kind) or
/// `aabbccddeeff`. Surrounding whitespace is ignored. Returns `None` for anything else.
/// (Two MACs per probe record: a table lookup per digit, no branch per character class.)
pub fn parse_mac(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let b = match b {
        [first, .., last] if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() => s.trim().as_bytes(),
        _ => b,
    };
    let mut bad = 0u8;
    let mut v: u64 = 0;
    match b.len() {
        12 => {
            for &c in b {
                let d = HEX[c as usize];
                bad |= d;
                v = (v << 4) | (d & 0x0f) as u64;
            }
        }
        17 => {
            let sep = b[2];
            if sep != b':' && sep != b'-' {
                return None;
            }
            for i in 0..6 {
                let (hi, lo) = (HEX[b[3 * i] as usize], HEX[b[3 * i + 1] as usize]);
                bad |= hi | lo;
                v = (v << 8) | ((hi & 0x0f) << 4 | (lo & 0x0f)) as u64;
                if i < 5 && b[3 * i + 2] != sep {
                    return None;
                }
            }
        }
        _ => return None,
    }
    (bad & 0x80 == 0).then_some(v)
}

/// Hex digit values; 0x80 marks a byte that is not a hex digit.
const HEX: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Lowercase colon form.
pub fn format_mac(v: u64) -> String {
    let mut buf = [0u8; 17];
    write_mac(v, &mut buf).to_owned()
}

/// [`format_mac`] into a caller's buffer (no allocation: tables render millions of MACs).
pub fn write_mac(v: u64, buf: &mut [u8; 17]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in 0..6 {
        let byte = (v >> ((5 - i) * 8)) as u8;
        buf[3 * i] = HEX[(byte >> 4) as usize];
        buf[3 * i + 1] = HEX[(byte & 15) as usize];
        if i < 5 {
            buf[3 * i + 2] = b':';
        }
    }
    std::str::from_utf8(buf).expect("hex digits and colons are ASCII")
}

/// Locally administered (randomised) MAC: bit 0x02 of the first octet.
pub fn is_randomized(v: u64) -> bool {
    (v >> 40) & 0x02 != 0
}

/// MAC pseudonymisation (docs/tables.md, "Device"): the published pseudonym is the first 32 hex characters
/// of HMAC-SHA256(key, normalised MAC).
///
/// Inside the engine a pseudonymised device travels as a `u64` id: the pseudonym's first 64
/// bits with the lowest bit replaced by "was randomised" (decided before hashing, so
/// `randomized_share` needs no raw MAC). The id → pseudonym dictionary is kept in the state;
/// two pseudonyms sharing an id (a 63-bit collision) are detected there and fail the run.
#[derive(Clone)]
pub struct MacKey(Vec<u8>);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)") // never print the key
    }
}

impl MacKey {
    pub fn new(key: &str) -> Self {
        MacKey(key.as_bytes().to_vec())
    }

    /// The 32-character pseudonym of a MAC.
    pub fn pseudonym(&self, mac: u64) -> String {
        use hmac::{Hmac, Mac};
        let mut h = Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        h.update(format_mac(mac).as_bytes());
        let digest = h.finalize().into_bytes();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The internal id of a MAC and its pseudonym.
    pub fn id(&self, mac: u64) -> (u64, String) {
        let p = self.pseudonym(mac);
        let hi = u64::from_str_radix(&p[..16], 16).expect("hex");
        ((hi & !1) | is_randomized(mac) as u64, p)
    }

    /// A short fingerprint of the key (for the state's settings check; not the key).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(&self.0).iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

/// Whether an internal device id stands for a randomised MAC (raw MAC, or keyed id).
pub fn device_randomized(id: u64, keyed: bool) -> bool {
    if keyed {
        id & 1 == 1
    } else {
        is_randomized(id)
    }
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

    /// The parser as first written (a match per character), kept as the reference.
    fn parse_mac_reference(s: &str) -> Option<u64> {
        let hex = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        };
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

    #[test]
    fn table_parser_equals_the_reference_on_mutated_macs() {
        // Valid MACs in every form, then each with one byte replaced by an interesting one.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let subs = [b'0', b'9', b'a', b'f', b'A', b'F', b'g', b'G', b':', b'-', b' ', b'.', 0xff, b'/', b'@', b'`'];
        let mut checked = 0;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = x & 0xffff_ffff_ffff;
            let colon = format_mac(m);
            for form in [
                colon.clone(),
                colon.replace(':', "-").to_uppercase(),
                colon.replace(':', ""),
                format!(" {colon}\t"),
                format!("\u{3000}{colon}\u{a0}"),
            ] {
                assert_eq!(parse_mac(&form), Some(m), "{form}");
                let bytes = form.as_bytes().to_vec();
                for i in 0..bytes.len() {
                    for &c in &subs {
                        let mut b = bytes.clone();
                        b[i] = c;
                        let t = String::from_utf8_lossy(&b).into_owned();
                        assert_eq!(parse_mac(&t), parse_mac_reference(&t), "{t:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50_000);
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
    fn pseudonym_is_hmac_sha256_prefix() {
        // Reference value from Python: hmac.new(b"secret", b"aa:bb:cc:dd:ee:ff", sha256).hexdigest()[:32]
        let k = MacKey::new("secret");
        let p = k.pseudonym(0xaabbccddeeff);
        assert_eq!(p, "330505e2170baff8890002ceee43e4bc");
        let (id, p2) = k.id(0xaabbccddeeff);
        assert_eq!(p2, p);
        assert_eq!(id >> 1, u64::from_str_radix(&p[..16], 16).unwrap() >> 1);
        assert!(device_randomized(id, true), "0xaa has the locally-administered bit");
        let (gid, _) = k.id(0x0cbbccddeeff);
        assert!(!device_randomized(gid, true));
    }

    #[test]
    fn randomized_bit() {
        assert!(is_randomized(parse_mac("02:00:00:00:00:01").unwrap()));
        assert!(is_randomized(parse_mac("da:00:00:00:00:01").unwrap()));
        assert!(!is_randomized(parse_mac("00:00:00:00:00:01").unwrap()));
        assert!(!is_randomized(parse_mac("01:00:00:00:00:01").unwrap()));
    }
}
