//! rpm version comparison: `rpmvercmp` and epoch:version-release.

use std::cmp::Ordering;

/// Compares two version (or release) strings as rpm's `rpmvercmp` does: alternating runs of
/// ASCII digits and ASCII letters compared segment by segment (numbers numerically, letters
/// in byte order, a number beats letters), other characters only separating segments, `~`
/// sorting before anything (even the end: `1.0~rc1 < 1.0`) and `^` after the end but before
/// anything else (`1.0 < 1.0^git1 < 1.0.1`).
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // A tilde sorts before everything else, the end of the string included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // A caret is like a tilde, except that the end of the string sorts before it.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let class = |c: u8| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        let (si, sj) = (i, j);
        while i < a.len() && class(a[i]) {
            i += 1;
        }
        while j < b.len() && class(b[j]) {
            j += 1;
        }
        let (mut sa, mut sb) = (&a[si..i], &b[sj..j]);
        // Segments of different types: a number is newer than letters.
        if sb.is_empty() {
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        if numeric {
            while sa.first() == Some(&b'0') {
                sa = &sa[1..];
            }
            while sb.first() == Some(&b'0') {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// An epoch:version-release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Evr {
    /// Empty means 0.
    pub epoch: String,
    pub version: String,
    pub release: String,
}

impl Evr {
    /// Parses `[epoch:]version[-release]`.
    pub fn parse(s: &str) -> Evr {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.to_string(), r),
            _ => (String::new(), s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v.to_string(), r.to_string()),
            None => (rest.to_string(), String::new()),
        };
        Evr { epoch, version, release }
    }

    /// Compares as rpm does: epochs as numbers (missing is 0), then versions, then releases
    /// with `rpmvercmp`.
    pub fn compare(&self, other: &Evr) -> Ordering {
        let epoch = |e: &str| {
            let t = e.trim_start_matches('0');
            if t.is_empty() { "0".to_string() } else { t.to_string() }
        };
        let (ea, eb) = (epoch(&self.epoch), epoch(&other.epoch));
        let by_epoch = if ea.bytes().all(|c| c.is_ascii_digit()) && eb.bytes().all(|c| c.is_ascii_digit()) {
            ea.len().cmp(&eb.len()).then_with(|| ea.cmp(&eb))
        } else {
            rpmvercmp(&ea, &eb)
        };
        by_epoch.then_with(|| rpmvercmp(&self.version, &other.version)).then_with(|| rpmvercmp(&self.release, &other.release))
    }
}

impl std::fmt::Display for Evr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.epoch.is_empty() && self.epoch.bytes().any(|c| c != b'0') {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}-{}", self.version, self.release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// rpm's own cases (tests/rpmvercmp.at), checked against rpm 4.18's `rpm.vercmp`.
    const RPMVERCMP_CASES: &str = "
1.0 1.0 0
1.0 2.0 -1
2.0 1.0 1
2.0.1 2.0.1 0
2.0 2.0.1 -1
2.0.1 2.0 1
2.0.1a 2.0.1a 0
2.0.1a 2.0.1 1
2.0.1 2.0.1a -1
5.5p1 5.5p1 0
5.5p1 5.5p2 -1
5.5p2 5.5p1 1
5.5p10 5.5p10 0
5.5p1 5.5p10 -1
5.5p10 5.5p1 1
10xyz 10.1xyz -1
10.1xyz 10xyz 1
xyz10 xyz10 0
xyz10 xyz10.1 -1
xyz10.1 xyz10 1
xyz.4 xyz.4 0
xyz.4 8 -1
8 xyz.4 1
xyz.4 2 -1
2 xyz.4 1
5.5p2 5.6p1 -1
5.6p1 5.5p2 1
5.6p1 6.5p1 -1
6.5p1 5.6p1 1
6.0.rc1 6.0 1
6.0 6.0.rc1 -1
10b2 10a1 1
10a2 10b2 -1
1.0aa 1.0aa 0
1.0a 1.0aa -1
1.0aa 1.0a 1
10.0001 10.0001 0
10.0001 10.1 0
10.1 10.0001 0
10.0001 10.0039 -1
10.0039 10.0001 1
4.999.9 5.0 -1
5.0 4.999.9 1
20101121 20101121 0
20101121 20101122 -1
20101122 20101121 1
2_0 2_0 0
2.0 2_0 0
2_0 2.0 0
a a 0
a+ a+ 0
a+ a_ 0
a_ a+ 0
+a +a 0
+a _a 0
_a +a 0
+_ +_ 0
_+ +_ 0
_+ _ 0
+ _ 0
+ +_ 0
1.0~rc1 1.0~rc1 0
1.0~rc1 1.0 -1
1.0 1.0~rc1 1
1.0~rc1 1.0~rc2 -1
1.0~rc2 1.0~rc1 1
1.0~rc1~git123 1.0~rc1~git123 0
1.0~rc1~git123 1.0~rc1 -1
1.0~rc1 1.0~rc1~git123 1
1.0^ 1.0^ 0
1.0^ 1.0 1
1.0 1.0^ -1
1.0^git1 1.0^git1 0
1.0^git1 1.0 1
1.0 1.0^git1 -1
1.0^git1 1.0^git2 -1
1.0^git2 1.0^git1 1
1.0^git1 1.01 -1
1.01 1.0^git1 1
1.0^20160101 1.0^20160101 0
1.0^20160101 1.0.1 -1
1.0.1 1.0^20160101 1
1.0^20160101^git1 1.0^20160101^git1 0
1.0^20160102 1.0^20160101^git1 1
1.0^20160101^git1 1.0^20160102 -1
1.0~rc1^git1 1.0~rc1^git1 0
1.0~rc1^git1 1.0~rc1 1
1.0~rc1 1.0~rc1^git1 -1
1.0^git1~pre 1.0^git1~pre 0
1.0^git1 1.0^git1~pre 1
1.0^git1~pre 1.0^git1 -1
1b.fc17 1b.fc17 0
1b.fc17 1.fc17 -1
1.fc17 1b.fc17 1
1g.fc17 1g.fc17 0
1g.fc17 1.fc17 1
1.fc17 1g.fc17 -1
1.1.α 1.1.α 0
1.1.α 1.1.β 0
1.1.β 1.1.α 0
1.1.αα 1.1.α 0
1.1.α 1.1.ββ 0
1.1.ββ 1.1.αα 0
";

    #[test]
    fn rpmvercmp_matches_rpm_test_suite() {
        let mut n = 0;
        for line in RPMVERCMP_CASES.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let want = match f[2] {
                "-1" => Ordering::Less,
                "0" => Ordering::Equal,
                _ => Ordering::Greater,
            };
            assert_eq!(rpmvercmp(f[0], f[1]), want, "rpmvercmp({}, {})", f[0], f[1]);
            n += 1;
        }
        assert_eq!(n, 103);
    }

    #[test]
    fn rpmvercmp_edge_cases() {
        assert_eq!(rpmvercmp("", ""), Ordering::Equal);
        assert_eq!(rpmvercmp("", "1"), Ordering::Less);
        assert_eq!(rpmvercmp("1", ""), Ordering::Greater);
        assert_eq!(rpmvercmp("~", ""), Ordering::Less);
        // Numbers longer than any integer type.
        assert_eq!(rpmvercmp("1.123456789012345678901234567890", "1.123456789012345678901234567891"), Ordering::Less);
        assert_eq!(rpmvercmp("1.0.0", "1.0"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.el8", "1.el8_5"), Ordering::Less);
        assert_eq!(rpmvercmp("2.el9", "10.el9"), Ordering::Less);
    }

    #[test]
    fn evr_compare_and_display() {
        let e = Evr::parse;
        assert_eq!(e("1:1.0-1").compare(&e("2.0-1")), Ordering::Greater);
        assert_eq!(e("0:1.0-1").compare(&e("1.0-1")), Ordering::Equal);
        assert_eq!(e("1.0-2").compare(&e("1.0-10")), Ordering::Less);
        assert_eq!(e("10:1-1").compare(&e("9:2-1")), Ordering::Greater);
        assert_eq!(e("1.0-1.el8").compare(&e("1.0~rc1-1.el8")), Ordering::Greater);
        assert_eq!(e("2:1.0-1").to_string(), "2:1.0-1");
        assert_eq!(e("0:1.0-1").to_string(), "1.0-1");
        assert_eq!(e("1.2.3-4.el9_1").version, "1.2.3");
        assert_eq!(e("1.2.3-4.el9_1").release, "4.el9_1");
    }
}
