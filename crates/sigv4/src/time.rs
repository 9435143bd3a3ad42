//! `YYYYMMDDTHHMMSSZ` dates to and from unix seconds (proleptic Gregorian, UTC).

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date `(year, month, day)` of a count of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Parses `YYYYMMDD` into days since the epoch.
pub(crate) fn parse_ymd(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 8 {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[4..6])?, digits(&b[6..8])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `YYYYMMDDTHHMMSSZ` into unix seconds.
pub(crate) fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let days = parse_ymd(s.get(0..8)?)?;
    let (h, mi, se) = (digits(&b[9..11])?, digits(&b[11..13])?, digits(&b[13..15])?);
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Formats unix seconds as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (s, unix) in [
            ("19700101T000000Z", 0),
            ("20150830T123600Z", 1_440_938_160),
            ("20000229T235959Z", 951_868_799),
            ("20261122T090551Z", 1_795_338_351),
            ("21000301T000000Z", 4_107_542_400),
        ] {
            assert_eq!(parse_amz_date(s), Some(unix), "{s}");
            assert_eq!(format_amz_date(unix), s);
        }
    }

    #[test]
    fn rejects_bad_dates() {
        for s in [
            "",
            "20150830",
            "20150830T123600",
            "20150830t123600Z",
            "20150830T123600z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20190229T000000Z",
            "21000229T000000Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "2015-08-30T12:36:00Z",
        ] {
            assert_eq!(parse_amz_date(s), None, "{s}");
        }
        assert_eq!(parse_ymd("20240229"), Some(19_782));
        assert_eq!(parse_ymd("2024022"), None);
    }
}
